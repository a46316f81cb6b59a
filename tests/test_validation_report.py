"""Validation (format, comparison, quality check), accuracy against the truth, the report."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles.dq import dq_def_records, flag_value
from jwst_reffiles.reffile import save_reference
from jwst_reffiles.report import write_report
from jwst_reffiles.simulate import simulate_dataset
from jwst_reffiles.simulate.accuracy import accuracy, find_truth
from jwst_reffiles.validation import (check_format, compare_arrays, compare_reffiles,
                                      quality_check, validate_run, verdict_line)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate_dataset(tmp_path_factory.mktemp("val"), subarray="SUB64P", ngroups=5,
                            nints=1, ndarks=1, nflats=0, seed=2)


def _gain_file(path, sim, factor=1.0):
    from jwst_reffiles.simulate import get_subarray
    data = sim.truth.cutout("gain", get_subarray("NIRCAM", "SUB64P")) * factor
    return save_reference(dm.GainModel(data=data.astype(np.float32)), path, reftype="GAIN",
                          input_files=[sim.files()[0]])


def test_compare_arrays_statistics_and_dq_flags():
    a = np.ones((10, 10))
    b = a.copy()
    b[0, 0] = 2.0
    r = compare_arrays(b, a)
    assert r["changed_fraction"] == pytest.approx(0.01)
    assert r["ratio"]["median"] == 1.0 and r["difference"]["p99"] >= 0
    old = np.zeros((4, 4), np.uint32)
    new = old.copy()
    new[0, :2] = flag_value("HOT")
    old[3, 3] = flag_value("DEAD")
    d = compare_arrays(new, old, dq=True)
    assert d["flags_set"] == {"HOT": 2} and d["flags_cleared"] == {"DEAD": 1}
    assert not compare_arrays(np.ones(3), np.ones(4))["comparable"]


def test_compare_reffiles_verdicts(sim, tmp_path):
    a = _gain_file(tmp_path / "a.fits", sim)
    b = _gain_file(tmp_path / "b.fits", sim, 1.0)
    c = _gain_file(tmp_path / "c.fits", sim, 1.05)
    assert compare_reffiles(a, b)["verdict"] == "identical"
    r = compare_reffiles(c, a)
    assert r["verdict"] == "changed"
    assert r["extensions"]["SCI"]["ratio"]["median"] == pytest.approx(1.05, rel=1e-5)
    assert "CHANGED" in verdict_line(r) and "1.05" in verdict_line(r)
    # another detector: not comparable
    dq = np.zeros((64, 64), np.uint32)
    m = save_reference(dm.MaskModel(dq=dq, dq_def=dq_def_records(dq)), tmp_path / "m.fits",
                       reftype="MASK", input_files=[sim.files()[0]])
    assert compare_reffiles(m, a)["verdict"] == "incompatible"


def test_format_check_records_validity_and_certify(sim, tmp_path):
    a = _gain_file(tmp_path / "a.fits", sim)
    r = check_format(a, "gain")
    assert r["model"] == "GainModel" and r["valid"] and r["certify"]["status"]
    bad = check_format(a, "linearity")      # a gain file is no LinearityModel
    assert not bad["valid"] and bad["errors"]


def test_quality_check_runs_the_step_in_its_own_process(sim, tmp_path):
    raw = sim.files()[0]
    r = quality_check(sim.reffiles["saturation"], "saturation", raw,
                      {"superbias": sim.reffiles["superbias"]}, tmp_path / "crds")
    assert r["status"] == "ran" and r["step"] == "SaturationStep", r
    assert "saturation=COMPLETE" in r["cal_step"]
    # a step that fails is a recorded failure, not an exception
    r = quality_check(tmp_path / "missing.fits", "superbias", raw, {}, tmp_path / "crds")
    assert r["status"] == "failed" and r["error"]
    # a step that needs a reference file nobody gave: skipped, with the reason
    r = quality_check(sim.reffiles["gain"], "gain", raw, {}, tmp_path / "crds")
    assert r["status"] == "skipped" and "readnoise" in r["reason"]


def test_accuracy_against_the_truth(sim):
    truth = find_truth(sim.files())
    assert truth is not None
    rows = accuracy(sim.reffiles["gain"], "gain", truth)
    assert rows[0]["ok"] and rows[0]["value"] == pytest.approx(1.0, abs=1e-6)
    rows = accuracy(sim.reffiles["mask"], "mask", truth)
    assert rows and all(r["ok"] for r in rows)       # the truth mask recovers the truth


def test_superbias_accuracy_counts_the_drift_in_the_zero_frames(tmp_path):
    """The zero frames' mean drift is in any superbias; counted as truth, what is left is noise."""
    from astropy.io import fits
    from jwst_reffiles.simulate import get_subarray
    from jwst_reffiles.simulate.accuracy import zero_frame_drift
    from jwst_reffiles.superbias.superbias import make_superbias
    ds = simulate_dataset(tmp_path / "sim", subarray="SUB64P", ngroups=2, nints=40, ndarks=2,
                          nflats=0, seed=11, cosmic_rays=False, write_reffiles=False)
    files = [str(p) for p in ds.files()]
    sub = get_subarray("NIRCAM", "SUB64P")
    offset, n = zero_frame_drift(files, sub.xstart, sub.xsize)
    drift = np.concatenate([fits.getdata(ds.outdir / r["truth_file"], "DRIFT")[:, 0]
                            for r in ds.manifest])                 # (80, namps, 2)
    assert n == 80 and drift.shape[1] == 1
    parity = (np.arange(sub.xstart - 1, sub.xstart - 1 + sub.xsize)) % 2
    np.testing.assert_allclose(offset, drift.mean(axis=0)[0][parity], rtol=1e-6)
    out = tmp_path / "sb.fits"
    make_superbias(files, outfile=str(out))
    tframe = float(ds.manifest["tframe"][0])
    plain = accuracy(out, "superbias", ds.truth_maps, tframe=tframe)[0]
    row = accuracy(out, "superbias", ds.truth_maps, tframe=tframe, inputs=files)[0]
    # what is left is the read noise averaged over 80 frames: median |N(0, rn/sqrt(80))|
    rn = np.median(ds.truth.cutout("read_noise", sub))
    assert row["value"] == pytest.approx(0.6745 * rn / np.sqrt(80), rel=0.15)
    assert "80 zero frames" in row["detail"] and f"{plain['value']:.3f}" in row["detail"]
    assert row["value"] <= plain["value"] + 0.02


def test_report_renders_with_its_images(sim, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    out = shutil.copy(sim.reffiles["gain"], run / "gain_001.gain.fits")
    v = validate_run(run, [{"reflabel": "gain", "reftype": "gain", "output": str(out)}],
                     {"gain": str(sim.reffiles["gain"])}, [], {}, quality=False)
    assert json.loads((run / "validation" / "validation.json").read_text())["files"]
    assert v["files"][0]["comparison"]["verdict"] == "identical"
    page = write_report(run, v, {str(out): accuracy(out, "gain", find_truth(sim.files()))})
    text = page.read_text()
    assert "gain_001.gain_image.png" in text and "met" in text
    for png in ("gain_001.gain_image.png", "gain_001.gain_hist.png"):
        assert (page.parent / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no headless Chromium here to render the report")
    shot = tmp_path / "shot.png"
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                          "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert "gain_001.gain_hist.png" in dom.stdout
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                    f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 10000

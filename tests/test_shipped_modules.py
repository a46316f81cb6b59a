"""Every shipped module on its shipped defaults (like cp_pipe's tests/test_pipelines.py).

One small simulated NIRCam campaign -- darks, and flats at two illuminations
interleaved in time that saturate -- through one mkrefs call of every reflabel
``mkrefs --print-config`` ships, offline through the real pipeline.  The user's
configuration sets only where outputs go and where the pipeline's reference
files are: every module section is the shipped one.  Every final file must be
made and valid.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits
from astropy.table import Table
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles import cli
from jwst_reffiles.config import default_config_text
from jwst_reffiles.simulate import simulate_dataset

SHIPPED = yaml.safe_load(default_config_text())["reflabels"]
MODELS = {"readnoise": "ReadnoiseModel", "rdnoise": "ReadnoiseModel",
          "superbias": "SuperBiasModel", "dark": "DarkModel", "mask": "MaskModel",
          "gain": "GainModel", "linearity": "LinearityModel", "saturation": "SaturationModel",
          "ipc": "IPCModel"}


#: (instrument, detector, subarray, flat illuminations [e-/s]: the brighter saturates)
CAMPAIGNS = {"nircam": ("NIRCAM", "NRCA1", "SUB64P", [100000.0, 300000.0]),
             "miri": ("MIRI", "MIRIMAGE", "SUB128", [100000.0, 300000.0])}


def run_campaign(tmp, name, labels=SHIPPED, **sim_kw):
    instrument, detector, subarray, flux = CAMPAIGNS[name]
    subarray = sim_kw.pop("subarray", subarray)
    kw = dict(ngroups=20, nints=2, ndarks=4, nflats=4, flat_flux=flux, seed=3)
    kw.update(sim_kw)
    sim = simulate_dataset(tmp / "sim", detector=detector, subarray=subarray,
                           readpatt="FAST" if instrument == "MIRI" else "RAPID", **kw)
    cfg = tmp / "user.cfg"
    cfg.write_text(f"instrument: {instrument}\n"
                   f"output: {{outrootdir: {tmp / 'out'}, runID: AUTO}}\n"
                   f"reffile4ssb: {{default: '{sim.outdir / 'reffiles'}/*.fits'}}\n")
    rc = cli.main(["--strict-config", "--no-quality-check", "--cfgfile", str(cfg),
                   ",".join(labels), str(sim.outdir)])
    return rc, sim, tmp / "out" / "001"


@pytest.fixture(scope="module", params=list(CAMPAIGNS))
def campaign(request, tmp_path_factory):
    return (*run_campaign(tmp_path_factory.mktemp(request.param), request.param),
            CAMPAIGNS[request.param])


def test_every_shipped_module_makes_a_valid_final_file(campaign, capsys):
    rc, sim, rundir, (instrument, _, subarray, _) = campaign
    assert rc == 0
    finals = Table.read(rundir / "final_reffiles.ecsv")
    assert sorted(finals["reflabel"]) == sorted(SHIPPED)
    assert set(finals["status"]) == {"made"}
    models = {**MODELS, "dark": "DarkMIRIModel" if instrument == "MIRI" else "DarkModel"}
    for row in finals:
        with dm.open(row["output"]) as model:
            assert type(model).__name__ == models[row["reftype"]], row["reflabel"]
            model.validate()
            if row["reftype"] != "ipc":     # an IPC kernel serves every subarray: it has none
                assert model.meta.subarray.name == subarray
    entries = json.loads((rundir / "validation" / "validation.json").read_text())["files"]
    assert sorted(e["reflabel"] for e in entries) == sorted(SHIPPED)
    assert all(e["format"]["valid"] for e in entries), [e["format"] for e in entries]
    individual = Table.read(rundir / "reffiles.ecsv")
    assert set(individual["status"]) == {"made"}
    # each task's peak memory is in the tables: measured, and bounded at this size
    runs = Table.read(rundir / "pipeline_runs.ecsv")
    for table in (finals, individual, runs):
        assert all(0.05 < p < 2.0 for p in table["peak_GiB"]), list(table["peak_GiB"])


def test_photon_transfer_pairs_are_of_one_illumination(campaign):
    rc, sim, rundir, _ = campaign
    groups = Table.read(rundir / "groups.ecsv")
    for label in ("gain_bryan", "gain_armin"):
        mine = groups[(groups["reflabel"] == label) & [str(x).startswith("F")
                                                       for x in groups["label"]]]
        assert len(set(mine["cmdID"])) == 2, label      # both illuminations paired
        for cmd in set(mine["cmdID"]):
            names = mine[mine["cmdID"] == cmd]["basename"]
            levels = {fits.getheader(sim.outdir / n)["SIMFLUX"] for n in names}
            assert len(levels) == 1, (label, list(names), levels)


def test_mask_finals_say_they_are_a_flag_vote_of_their_individual_files(campaign):
    rc, sim, rundir, _ = campaign
    for label in ("bad_pixel_mask", "badpix_from_flats", "badpix_from_darks"):
        path = rundir / "final" / f"{label}_001.mask.fits"
        text = "".join(str(h) for h in fits.getheader(path)["HISTORY"]).replace(" ", "")
        assert text.startswith("Finalreferencefilemadebyjwst_reffiles:aflagvote"), text[:200]
        assert f"{label}_001." in text and "sigma_clipped_mean" not in text
        assert "flag vote" in fits.getheader(path)["DESCRIP"]


def test_miri_dark_holds_the_dark_signal_without_the_pedestal(campaign):
    rc, sim, rundir, (instrument, *_) = campaign
    if instrument != "MIRI":
        pytest.skip("the MIRI campaign's dark")
    with dm.open(str(rundir / "final" / "dark_001.dark.fits")) as m:
        assert m.data.shape[:2] == (2, 20)          # first integration, and the others
        inner = m.data[:, :, 8:-8, 8:-8]
    # raw MIRI ramps sit ~10^4 DN above zero; the dark is the signal from the reset on
    assert np.all(np.abs(np.median(inner, axis=(2, 3))) < 5.0)
    truth = sim.truth
    assert np.median(truth.bias) > 1000


def test_miri_full_frame_dark_from_one_group(tmp_path):
    rc, sim, rundir = run_campaign(tmp_path, "miri", labels=["dark"], subarray="FULL",
                                   ngroups=3, ndarks=1, nflats=0)
    assert rc == 0
    with dm.open(str(rundir / "final" / "dark_001.dark.fits")) as m:
        assert type(m).__name__ == "DarkMIRIModel" and m.data.shape == (2, 3, 1024, 1032)
        assert m.dq.shape == (2, 1, 1024, 1032)


def test_gain_uncertainties_are_those_of_science_pixels(campaign):
    rc, sim, rundir, _ = campaign
    for label in ("gain_armin", "gain_bryan"):
        for path in sorted((rundir / label).glob("*_ptc.ecsv")):
            t = Table.read(path)
            fitted = np.isfinite(t["gain"])
            assert fitted.any()
            rel = np.asarray(t["gain_err"][fitted]) / np.asarray(t["gain"][fitted])
            # reference pixels are no part of a box: no box's scatter runs away (a box
            # mostly of them had 1e6); FF boxes of two integrations scatter by tens of %
            assert np.all(np.isfinite(rel)) and rel.max() < 1.0, (path.name, rel.max())


def test_every_final_file_records_its_provenance(campaign):
    import hashlib
    from importlib import metadata

    from jwst_reffiles.io import file_checksum
    from jwst_reffiles.provenance import KEYWORDS, digest
    rc, sim, rundir, (instrument, *_) = campaign
    prov = json.loads((rundir / "provenance.json").read_text())
    for name in ("jwst", "stcal", "stdatamodels", "numpy"):
        assert prov["software"][name] == metadata.version(name)
    cfg = prov["configuration"]
    assert cfg["sha256"] == hashlib.sha256(cfg["text"].encode()).hexdigest()
    assert yaml.safe_load(cfg["text"])["instrument"] == instrument
    assert "--cfgfile" in prov["command_line"] and str(sim.outdir) in prov["command_line"]
    assert prov["crds"]["context"] is None               # offline: reffile4ssb only
    raw = {i["file"]: i["sha256"] for i in prov["inputs"]}
    assert len(raw) == 8 and all(file_checksum(f) == s for f, s in raw.items())
    refs = prov["reference_files"]
    assert {r["reftype"] for r in refs} >= {"mask", "saturation", "linearity"}
    assert all(file_checksum(r["file"]) == r["sha256"] for r in refs)
    finals = Table.read(rundir / "final_reffiles.ecsv")
    entries = {e["reflabel"]: e for e in prov["final_files"]}
    assert sorted(entries) == sorted(finals["reflabel"])
    for row in finals:
        e = entries[row["reflabel"]]
        assert e["file"] == row["output"] and e["status"] == "made"
        assert e["sha256"] == file_checksum(row["output"])
        hdr = fits.getheader(row["output"])
        assert {k: hdr[k] for k in KEYWORDS} == e["keywords"]
        assert hdr["JRCFGSUM"] == cfg["sha256"] and hdr["JRSTCAL"] == metadata.version("stcal")
        mine = {i["file"]: i["sha256"] for i in e["inputs"]}
        assert mine and all(raw[f] == s for f, s in mine.items())       # of the run's inputs
        assert hdr["JRINPSUM"] == digest(mine)
        assert hdr["JRSSBSUM"] == digest({r["file"]: r["sha256"] for r in e["reference_files"]})
        assert e["reference_files"] and all(r in refs for r in e["reference_files"])
        # darks-only reference types read no flat
        exp_types = {fits.getheader(f)["EXP_TYPE"] for f in mine}
        if row["reftype"] in ("superbias", "readnoise", "dark"):
            assert all("DARK" in t for t in exp_types), (row["reflabel"], exp_types)
        history = "".join(str(h) for h in hdr["HISTORY"]).replace(" ", "")
        for f, s in mine.items():
            assert f"DATAUSED:{Path(f).name}sha256{s}" in history


def test_the_final_files_of_a_run_are_consistent(campaign):
    rc, sim, rundir, _ = campaign
    cons = json.loads((rundir / "validation" / "validation.json").read_text())["consistency"]
    assert cons["checked"]["files"] == len(SHIPPED) and cons["checked"]["detectors"] == 1
    npix = fits.getdata(rundir / "final" / "saturation_001.saturation.fits", "SCI").size
    assert cons["checked"]["monotonic_pixels"] > 0.5 * npix      # most pixels are checked
    rules = {v["rule"]: v for v in cons["violations"]}
    # one geometry, every NaN flagged, no zeroed linearity; a correction may turn over
    # below saturation only in a few pixels (defects)
    assert set(rules) <= {"linearity_not_monotonic"}, cons["violations"]
    if rules:
        assert rules["linearity_not_monotonic"]["pixels"] < 1e-3 * cons["checked"][
            "monotonic_pixels"]

"""Bad inputs and bad settings: a clear error naming the file or key, exit status 2, no run.

Each case runs ``mkrefs --dry-run`` (stage 1 checks every input before any work)
and checks what the user sees.
"""

import os
import shutil

import numpy as np
import pytest
from astropy.io import fits

from jwst_reffiles import cli
from jwst_reffiles.simulate import simulate_dataset


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rel")
    ds = simulate_dataset(tmp / "sim", subarray="SUB64P", ngroups=5, nints=1, ndarks=2,
                          nflats=0, seed=1)
    cfg = tmp / "cfg"
    cfg.write_text(f"output: {{outrootdir: {tmp / 'out'}, runID: AUTO}}\n"
                   f"reffile4ssb: {{default: '{ds.outdir / 'reffiles'}/*.fits'}}\n")
    return ds, cfg, tmp


def _bad(sim, name, edit):
    ds, cfg, tmp = sim
    good = ds.files()[0]
    path = tmp / "bad" / f"{name}_DARK_uncal.fits"
    path.parent.mkdir(exist_ok=True)
    edit(good, path)
    return path


def _mkrefs(sim, capsys, *args):
    ds, cfg, tmp = sim
    rc = cli.main(["--cfgfile", str(cfg), "--dry-run", *args])
    out = capsys.readouterr()
    return rc, out.out + out.err


def _header_edit(fn):
    def edit(src, dst):
        with fits.open(src) as h:
            fn(h)
            h.writeto(dst)
    return edit


CASES = {
    "truncated": (lambda s, d: d.write_bytes(s.read_bytes()[: s.stat().st_size // 2]),
                  "truncated"),
    "not_fits": (lambda s, d: d.write_text("not a FITS file"), "cannot read a FITS primary header"),
    "no_detector": (_header_edit(lambda h: h[0].header.remove("DETECTOR")),
                    "required keyword(s) DETECTOR missing"),
    "bad_date": (_header_edit(lambda h: h[0].header.set("DATE-END", "yesterday")),
                 "cannot read a date from DATE-END"),
    "two_d": (_header_edit(lambda h: setattr(h["SCI"], "data", h["SCI"].data[0, 0])),
              "SCI has 2 dimension(s)"),
    "wrong_ngroups": (_header_edit(lambda h: h[0].header.set("NGROUPS", 9)),
                      "does not match NINTS=1, NGROUPS=9"),
    "no_sci": (_header_edit(lambda h: h.pop(h.index_of("SCI"))), "no SCI extension"),
    "all_zero": (_header_edit(lambda h: setattr(h["SCI"], "data", 0 * h["SCI"].data)),
                 "first group of SCI is all zero"),
    "other_instrument": (_header_edit(lambda h: h[0].header.set("INSTRUME", "MIRI")),
                         "are MIRI exposures, but the configuration's instrument is NIRCAM"),
    "ngroups_text": (_header_edit(lambda h: h[0].header.set("NGROUPS", "five")),
                     "NGROUPS='five' must be whole numbers"),
}


def _float_with_nan(src, dst):
    with fits.open(src) as h:
        data = h["SCI"].data.astype("float32")
        data[:, :, 10, 10] = float("nan")
        data[:, :, 11, 11] = float("inf")
        h["SCI"].data = data
        h.writeto(dst)


def test_float_data_with_non_finite_values_is_accepted_and_reported(sim, capsys, caplog):
    path = _bad(sim, "float_nan", _float_with_nan)
    rc, text = _mkrefs(sim, capsys, "superbias", str(path), *map(str, sim[0].files()))
    assert rc == 0, text
    assert "Inputs: 3 files" in text
    assert any("2 non-finite value(s)" in r.getMessage() and str(path) in r.getMessage()
               for r in caplog.records)


def test_float_data_with_non_finite_values_runs_through_the_pipeline(sim, capfd, tmp_path):
    """NaN and Inf reads go through the real pipeline; they never reach a final file."""
    import numpy as np
    from stdatamodels.jwst import datamodels as dm
    from jwst_reffiles.dq import flag_value
    ds, cfg, tmp = sim
    path = _bad(sim, "float_nan_run", _float_with_nan)
    run_cfg = tmp_path / "cfg"
    run_cfg.write_text(cfg.read_text().replace(str(tmp / "out"), str(tmp_path / "out")))
    rc = cli.main(["--cfgfile", str(run_cfg), "--no-quality-check", "superbias,readnoise",
                   str(path), str(ds.files()[1])])
    out, err = capfd.readouterr()
    assert rc == 0, out + err
    assert "RuntimeWarning" not in err and "Traceback" not in err
    rundir = tmp_path / "out" / "001"
    for name, model in (("superbias_001.superbias", dm.SuperBiasModel),
                        ("readnoise_001.readnoise", dm.ReadnoiseModel)):
        with model(str(rundir / "final" / f"{name}.fits")) as m:
            assert np.isfinite(m.data).all(), name        # the other file fills the NaN pixel
    # the individual superbias of the float file flags the pixel that had no data
    own = [p for p in (rundir / "superbias").glob("*.superbias.fits")
           if path.stem.split("_uncal")[0] in "".join(map(str, fits.getheader(p)["HISTORY"]))]
    assert len(own) == 1
    with dm.SuperBiasModel(str(own[0])) as m:
        assert not np.isfinite(m.data[10, 10])
        assert m.dq[10, 10] & flag_value("DO_NOT_USE")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_file_is_named(sim, capsys, case):
    edit, message = CASES[case]
    path = _bad(sim, case, edit)
    rc, text = _mkrefs(sim, capsys, "superbias", str(path), *map(str, sim[0].files()))
    assert rc == 2
    assert str(path) in text and message in text, text
    assert "Traceback" not in text


def test_no_inputs_and_unmatched_glob(sim, capsys):
    rc, text = _mkrefs(sim, capsys, "superbias")
    assert rc == 2 and "no input files given" in text
    rc, text = _mkrefs(sim, capsys, "superbias", str(sim[2] / "nothing*.fits"))
    assert rc == 2 and "matches no file" in text


def test_duplicates_and_symlinks_are_used_once(sim, capsys):
    ds, cfg, tmp = sim
    first = ds.files()[0]
    link = tmp / "LINK_DARK_uncal.fits"
    if not link.exists():
        os.symlink(first, link)
    rc, text = _mkrefs(sim, capsys, "superbias", str(link), *map(str, ds.files()),
                       str(first))
    assert rc == 0
    assert "Inputs: 2 files" in text and "used once" in text


def test_a_hard_link_or_a_copy_of_an_exposure_is_the_same_exposure(sim, capsys, tmp_path):
    ds, cfg, tmp = sim
    first, second = ds.files()[:2]
    os.link(first, tmp_path / "HARD_DARK_uncal.fits")
    shutil.copy(first, tmp_path / "COPY_DARK_uncal.fits")
    shutil.copy(second, tmp_path / "EDITED_DARK_uncal.fits")   # same header, other data
    with fits.open(tmp_path / "EDITED_DARK_uncal.fits", mode="update") as hdul:
        hdul["SCI"].data[0, 0, 5, 5] += 1
    rc, text = _mkrefs(sim, capsys, "superbias", *map(str, ds.files()),
                       str(tmp_path / "HARD_DARK_uncal.fits"),
                       str(tmp_path / "COPY_DARK_uncal.fits"),
                       str(tmp_path / "EDITED_DARK_uncal.fits"))
    assert rc == 0
    assert "Inputs: 3 files" in text, text                 # 2 + the edited one
    assert text.count("is the same exposure as") == 2 and "identical content" in text


def test_unknown_reflabel_and_bad_config_value(sim, capsys, tmp_path):
    rc, text = _mkrefs(sim, capsys, "nosuch", *map(str, sim[0].files()))
    assert rc == 2 and "unknown reflabel or reftype 'nosuch'" in text
    ds, cfg, tmp = sim
    bad = tmp_path / "bad.cfg"
    bad.write_text(cfg.read_text() + "execution: {executor: threads}\n")
    rc = cli.main(["--cfgfile", str(bad), "--dry-run", "superbias", *map(str, ds.files())])
    text = "".join(capsys.readouterr())
    assert rc == 2 and "execution.executor" in text, text


def test_no_group_formable_stops_before_any_work(sim, capsys):
    ds, cfg, tmp = sim
    rc = cli.main(["--cfgfile", str(cfg), "gain_armin", *map(str, ds.files())])
    err = capsys.readouterr().err
    assert rc == 2
    assert "gain_armin: no group of imtypes DDFF can be formed from 2 dark(s) and 0 flat(s)" in err
    assert "nothing was run" in err


def test_mixed_detectors_and_readouts_form_separate_groups(sim, capsys, tmp_path):
    ds, cfg, tmp = sim
    other = simulate_dataset(tmp_path / "b1", detector="NRCB1", subarray="SUB64P", ngroups=5,
                             nints=1, ndarks=2, nflats=0, seed=3)
    longer = simulate_dataset(tmp_path / "long", subarray="SUB64P", ngroups=7, nints=1,
                              ndarks=2, nflats=0, seed=4, write_reffiles=False,
                              truth=ds.truth, start="2026-01-01T03:00:00")
    files = [str(p) for p in ds.files() + other.files() + longer.files()]
    # the reference files the pipeline is given are NRCA1's only: named, before any work
    rc, text = _mkrefs(sim, capsys, "dark", *files)
    assert rc == 2 and "no" in text and "saturation reference file for NRCB1 SUB64P" in text
    extra = tmp_path / "refs"
    extra.mkdir()
    for p in list((ds.outdir / "reffiles").glob("*.fits")) + list(
            (other.outdir / "reffiles").glob("*.fits")):
        shutil.copy(p, extra / p.name)
    both = tmp_path / "both.cfg"
    both.write_text(cfg.read_text().replace(str(ds.outdir / "reffiles"), str(extra)))
    rc = cli.main(["--cfgfile", str(both), "--dry-run", "dark", *files])
    text = "".join(capsys.readouterr())
    assert rc == 0, text
    # one D+ group per detector and readout: never a dark made of mixed inputs
    assert "dark: reftype dark, imtypes D+" in text and ": 3 groups" in text
    groups = [{ln.split()[-1] for ln in block.splitlines() if "MJD" in ln}
              for block in text.split(" span ")[1:]]
    expected = [{p.name for p in d.files()} for d in (ds, other, longer)]
    assert sorted(map(sorted, groups)) == sorted(map(sorted, expected))
    # and one final file per detector and number of groups (a dark's data are per group)
    assert "3 final files, one per detector, subarray and readout" in text
    for part in ("nrca1-sub64p-rapid-5", "nrcb1-sub64p-rapid-5", "nrca1-sub64p-rapid-7"):
        assert f"final/dark_001.{part}.dark.fits" in text, part


DETECTOR_PLUGIN = """
import numpy as np
from astropy.io import fits
from stdatamodels.jwst import datamodels as dm
from jwst_reffiles.plugins import Plugin


class PerDetector(Plugin):
    reflabel = "det_gain"
    reftype = "gain"

    def callalgorithm(self):
        hdr = fits.getheader(self.inputimages["input_name"][0])
        level = {"NRCA1": 1.0, "NRCB1": 2.0}[hdr["DETECTOR"]]
        m = dm.GainModel(data=np.full((4, 4), level, np.float32))
        m.meta.instrument.name = "NIRCAM"
        m.meta.instrument.detector = hdr["DETECTOR"]
        m.meta.subarray.name = hdr["SUBARRAY"]
        m.save(self.args.outputreffilename)
"""


def test_two_detectors_of_one_subarray_make_two_final_files(sim, capsys, tmp_path):
    ds, cfg, tmp = sim
    other = simulate_dataset(tmp_path / "b1", detector="NRCB1", subarray="SUB64P", ngroups=5,
                             nints=1, ndarks=2, nflats=0, seed=3, write_reffiles=False)
    plugdir = tmp_path / "plugins"
    plugdir.mkdir()
    (plugdir / "mkref_det.py").write_text(DETECTOR_PLUGIN)
    mine = tmp_path / "det.cfg"
    mine.write_text(f"output: {{outrootdir: {tmp_path / 'out'}, runID: 1}}\n"
                    f"reflabels: [det_gain]\nreftypes: [gain]\nplugin_dirs: [{plugdir}]\n"
                    "det_gain: {reftype: gain, imtypes: D, ssbsteps: ''}\n")
    files = [str(p) for p in ds.files() + other.files()]
    assert cli.main(["--cfgfile", str(mine), "--no-quality-check", "det_gain", *files]) == 0
    capsys.readouterr()
    final = tmp_path / "out" / "001" / "final"
    from stdatamodels.jwst import datamodels as dm
    for det, level in (("NRCA1", 1.0), ("NRCB1", 2.0)):
        with dm.GainModel(str(final / f"det_gain_001.{det.lower()}-sub64p-rapid.gain.fits")) as m:
            assert m.meta.instrument.detector == det
            assert np.all(m.data == level)          # never an average of both detectors
    assert sorted(p.name for p in final.glob("*.fits")) == [
        "det_gain_001.nrca1-sub64p-rapid.gain.fits", "det_gain_001.nrcb1-sub64p-rapid.gain.fits"]


def test_a_pipeline_step_that_fails_for_one_file(sim, capsys, tmp_path):
    """The pipeline fails on one input (its subarray runs past the edge of the reference
    files' full frame): that run is recorded with its traceback file, the other input's work goes
    on, the exit status is 1 and the summary names what is missing and why."""
    ds, cfg, tmp = sim
    path = _bad(sim, "moved_corner", _header_edit(lambda h: h[0].header.set("SUBSTRT1", 2001)))
    run_cfg = tmp_path / "cfg"
    run_cfg.write_text(cfg.read_text().replace(str(tmp / "out"), str(tmp_path / "out")))
    # (the REFPIX-only mask is made for its window, so dq_init passes; saturation does not)
    rc = cli.main(["--cfgfile", str(run_cfg), "--no-quality-check", "readnoise",
                   str(path), str(ds.files()[1])])
    out = capsys.readouterr()
    text = out.out + out.err
    assert rc == 1, text
    assert "1 failed" in text and path.name.split("_uncal")[0] in text
    assert "Traceback (most recent" not in text
    assert "Bad reference file slice indexes" in text and "in step saturation" in text
    rundir = tmp_path / "out" / "001"
    import sqlite3
    db = sqlite3.connect(rundir / "state.sqlite")
    rows = list(db.execute("select label, status, errorfile from tasks"))
    db.close()
    failed = [r for r in rows if r[1] == "failed"]
    assert len(failed) == 1 and "moved_corner" in failed[0][0]
    # the pipeline's log with the traceback is kept, and named in the summary
    assert os.path.isfile(failed[0][2]) and failed[0][2] in text
    assert "Traceback (most recent" in open(failed[0][2]).read()
    # nothing of the failed run among the products; the other file's work went on
    assert not list((rundir / "ssb").glob("moved_corner*.fits"))
    status = {r[0].split()[0] + (" final" if r[0].endswith("final") else ""): r[1] for r in rows}
    assert status["readnoise final"] == "done"


# ---- errors that came late or raw ----------------------------------------------

def _both(sim, capsys, *args):
    """(dry-run status, real status, the real run's output): they must agree."""
    ds, cfg, tmp = sim
    dry = cli.main(["--cfgfile", str(cfg), "--dry-run", *args])
    capsys.readouterr()
    real = cli.main(["--cfgfile", str(cfg), *args])
    out = capsys.readouterr()
    return dry, real, out.out + out.err


def test_an_empty_list_file_is_an_error_in_a_dry_run_too(sim, capsys, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n")
    dry, real, text = _both(sim, capsys, "superbias", f"@{empty}")
    assert dry == real == 2 and "names no file" in text
    dry, real, text = _both(sim, capsys, "superbias", "@/dev/null")
    assert dry == real == 2 and "names no file" in text and "does not exist" not in text


def test_dangling_links_in_an_input_directory_are_named(sim, capsys, tmp_path):
    ds, cfg, tmp = sim
    d = tmp_path / "in"
    d.mkdir()
    for f in ds.files():
        shutil.copy(f, d / f.name)
    os.symlink(tmp_path / "gone_DARK_uncal.fits", d / "gone_DARK_uncal.fits")
    os.symlink(d / "loop_DARK_uncal.fits", d / "loop_DARK_uncal.fits")
    rc, text = _mkrefs(sim, capsys, "superbias", str(d))
    assert rc == 0 and "Inputs: 2 files" in text
    assert "gone_DARK_uncal.fits: a symbolic link to nothing" in text
    assert "loop_DARK_uncal.fits: a symbolic link to nothing" in text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory")
def test_an_unreadable_input_directory_is_named_as_such(sim, capsys, tmp_path):
    d = tmp_path / "locked"
    d.mkdir()
    d.chmod(0)
    try:
        rc, text = _mkrefs(sim, capsys, "superbias", str(d))
    finally:
        d.chmod(0o755)
    assert rc == 2 and "input directory cannot be read" in text and "outrootdir" not in text


@pytest.mark.parametrize("jobs", ["0", "-3", "two"])
def test_a_number_of_jobs_below_one_is_refused(sim, capsys, jobs):
    ds, cfg, tmp = sim
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--cfgfile", str(cfg), "--dry-run", "-j", jobs, "superbias",
                  str(ds.outdir)])
    assert exit_.value.code == 2 and "-j/--jobs" in capsys.readouterr().err


def test_a_plugin_file_with_a_syntax_error_is_named_with_its_error(sim, capsys, tmp_path):
    ds, cfg, tmp = sim
    plug = tmp_path / "plug"
    plug.mkdir()
    (plug / "mkref_bad.py").write_text("from jwst_reffiles.plugins import Plugin\n"
                                       "class Bad(Plugin:\n    pass\n")
    mine = tmp_path / "plug.cfg"
    mine.write_text(cfg.read_text() + f"reflabels: [bad]\nreftypes: [gain]\n"
                    f"plugin_dirs: [{plug}]\nbad: {{reftype: gain, imtypes: D, ssbsteps: ''}}\n")
    for dry in (["--dry-run"], []):
        assert cli.main(["--cfgfile", str(mine), *dry, "bad", str(ds.outdir)]) == 2
        err = capsys.readouterr().err
        assert "mkref_bad.py: cannot load the plug-in (SyntaxError" in err, err
        assert "no plug-in for reflabel" not in err


@pytest.mark.parametrize("text, words", [
    ("combine: {min_good_fraction: 7}\n", ["combine.min_good_fraction", "<= 1.0"]),
    ("superbias: {combine: {combiner: nosuch}}\n", ["unknown combiner 'nosuch'"]),
])
def test_combine_settings_are_checked_before_any_work(sim, capsys, tmp_path, text, words):
    ds, cfg, tmp = sim
    mine = tmp_path / "c.cfg"
    mine.write_text(cfg.read_text() + text)
    for dry in (["--dry-run"], []):
        assert cli.main(["--cfgfile", str(mine), *dry, "superbias", str(ds.outdir)]) == 2
        err = capsys.readouterr().err
        assert all(w in err for w in words), err


def test_a_full_disk_while_planning_is_one_line(sim, capsys, monkeypatch, tmp_path):
    import errno

    from jwst_reffiles.pipeline import plan

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.fits"))
    monkeypatch.setattr(plan, "refpix_only_mask", full)
    ds, cfg, tmp = sim
    assert cli.main(["--cfgfile", str(cfg), "-p", "output.outrootdir", str(tmp_path / "o"),
                     "superbias", str(ds.outdir)]) == 2
    err = capsys.readouterr().err
    assert err.count("mkrefs: error:") == 1 and "No space left on device" in err
    assert "Traceback" not in err

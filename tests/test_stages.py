"""Stages 2 and 3 through mkrefs: user plug-ins, parameters, failures, combiners."""

import re
import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles import cli

from conftest import USER_PLUGIN, drift_free_darks

TEMPLATE = __import__("jwst_reffiles.templates.plugin_template", fromlist=["x"]).__file__



USER_COMBINER = '''
import numpy as np
from stdatamodels.jwst import datamodels as dm
from jwst_reffiles.plugins.base import Combiner


class Largest(Combiner):
    name = "largest"

    def callalgorithm(self):
        data = [dm.GainModel(f).data for f in self.inputreffiles]
        m = dm.GainModel(data=np.max(data, axis=0) * self.parameters["parameters"]["factor"])
        m.save(self.args.outputreffilename)
'''


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return drift_free_darks(tmp_path_factory.mktemp("tiny"), ngroups=2, nints=1, ndarks=2,
                            seed=2, write_reffiles=False)


def _config(tmp_path, body):
    cfg = tmp_path / "main.cfg"
    cfg.write_text(f"output: {{outrootdir: {tmp_path / 'out'}, runID: 1}}\n" + body)
    return cfg


def _entry_point_package(tmp_path, monkeypatch, label):
    site = tmp_path / "site"
    pkg = site / "otherpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(USER_PLUGIN.format(label=label, fail_on=""))
    dist = site / "otherpkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: otherpkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[jwst_reffiles.plugins]\nother = otherpkg:Fancy\n")
    monkeypatch.syspath_prepend(str(site))


def test_user_plugins_by_directory_and_entry_point_with_a_command_line_parameter(
        tiny, tmp_path, monkeypatch, capsys):
    d = tmp_path / "myplugins"
    d.mkdir()
    (d / "mkref_fancy.py").write_text(USER_PLUGIN.format(label="fancy_gain", fail_on=""))
    _entry_point_package(tmp_path, monkeypatch, "other_gain")
    cfg = _config(tmp_path, f"""
reflabels: [fancy_gain, other_gain]
reftypes: [gain]
plugin_dirs: [{d}]
fancy_gain: {{reftype: gain, imtypes: D, ssbsteps: ''}}
other_gain: {{reftype: gain, imtypes: D, ssbsteps: '', combine: {{combiner: mean}}}}
""")
    # --level is no key of either section: each plug-in's own parser types it
    rc = cli.main(["-j", "1", "--cfgfile", str(cfg), "fancy_gain,other_gain", "--level", "3.5",
                   str(tiny.outdir)])
    out = capsys.readouterr().out
    assert rc == 0, out
    rundir = tmp_path / "out" / "001"
    for label in ("fancy_gain", "other_gain"):
        individual = sorted((rundir / label).glob(f"{label}_001.*.gain.fits"))
        assert len(individual) == 2                                # one per dark (imtypes D)
        final = rundir / "final" / f"{label}_001.gain.fits"
        with dm.GainModel(str(final)) as m:
            assert np.all(m.data == 3.5)
        history = "".join(str(x) for x in fits.getheader(final)["HISTORY"])
        assert all(p.name in history for p in individual)
        assert all(f.name in history for f in tiny.files())     # and their inputs
    table = Table.read(rundir / "reffiles.ecsv")
    assert list(table["status"]) == ["made"] * 4
    assert "sigma_clipped_mean of 2 of 2" in out and "mean of 2 of 2" in out


def test_a_configured_parameter_is_overridden_from_the_command_line(tiny, tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    (d / "mkref_fancy.py").write_text(USER_PLUGIN.format(label="fancy_gain", fail_on=""))
    cfg = _config(tmp_path, f"""
reflabels: [fancy_gain]
reftypes: [gain]
plugin_dirs: [{d}]
fancy_gain: {{reftype: gain, imtypes: D+, ssbsteps: '', level: 2.0}}
""")
    assert cli.main(["--cfgfile", str(cfg), "fancy_gain", str(tiny.outdir)]) == 0
    with dm.GainModel(str(tmp_path / "out" / "001" / "final" / "fancy_gain_001.gain.fits")) as m:
        assert np.all(m.data == 2.0)
    cfg.write_text(cfg.read_text().replace("runID: 1", "runID: 2"))
    assert cli.main(["--cfgfile", str(cfg), "fancy_gain", "--level", "7", str(tiny.outdir)]) == 0
    with dm.GainModel(str(tmp_path / "out" / "002" / "final" / "fancy_gain_002.gain.fits")) as m:
        assert np.all(m.data == 7.0)
    # a value of the wrong type names the option
    assert cli.main(["--cfgfile", str(cfg), "fancy_gain", "--level", "high",
                     str(tiny.outdir)]) == 2


def test_a_failing_group_is_recorded_and_the_rest_is_made(tiny, tmp_path, capsys):
    d = tmp_path / "p"
    d.mkdir()
    cursed = tiny.files()[0].name
    (d / "mkref_fancy.py").write_text(USER_PLUGIN.format(label="fancy_gain", fail_on=cursed))
    cfg = _config(tmp_path, f"""
reflabels: [fancy_gain]
reftypes: [gain]
plugin_dirs: [{d}]
fancy_gain: {{reftype: gain, imtypes: D, ssbsteps: ''}}
""")
    assert cli.main(["-j", "2", "--cfgfile", str(cfg), "fancy_gain", str(tiny.outdir)]) == 1
    captured = capsys.readouterr()
    assert re.search(r"FAILED\s+fancy_gain \w+: RuntimeError: this group is cursed", captured.out)
    rundir = tmp_path / "out" / "001"
    table = Table.read(rundir / "reffiles.ecsv")
    failed = table[table["status"] == "failed"]
    assert len(failed) == 1 and "cursed" in failed["error"][0]
    assert "Traceback" in open(failed["errorfile"][0]).read()
    assert not list((rundir / "fancy_gain").glob(".*tmp"))          # nothing half-made left
    final = rundir / "final" / "fancy_gain_001.gain.fits"
    history = "".join(str(x) for x in fits.getheader(final)["HISTORY"])
    assert "1 group(s) failed" in history


def test_user_combiner_plugin(tiny, tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    (d / "mkref_fancy.py").write_text(USER_PLUGIN.format(label="fancy_gain", fail_on=""))
    (d / "mkref_largest.py").write_text(USER_COMBINER)
    cfg = _config(tmp_path, f"""
reflabels: [fancy_gain]
reftypes: [gain]
plugin_dirs: [{d}]
fancy_gain: {{reftype: gain, imtypes: D, ssbsteps: '', level: 2.0,
             combine: {{combiner: largest, parameters: {{factor: 10}}}}}}
""")
    assert cli.main(["--cfgfile", str(cfg), "fancy_gain", str(tiny.outdir)]) == 0
    with dm.GainModel(str(tmp_path / "out" / "001" / "final" / "fancy_gain_001.gain.fits")) as m:
        assert np.all(m.data == 20.0)
    cfg.write_text(cfg.read_text().replace("combiner: largest", "combiner: smallest"))
    assert cli.main(["--cfgfile", str(cfg), "fancy_gain", str(tiny.outdir)]) == 2


def test_the_template_filled_in_runs_through_mkrefs(tiny, tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    text = open(TEMPLATE).read()
    text = text.replace('        raise NotImplementedError(f"call your module here: {files}, {output}, {params}")',
                        '        from stdatamodels.jwst import datamodels as dm\n'
                        '        import numpy as np\n'
                        '        n = params.get("num_boxes") or 1\n'
                        '        dm.GainModel(data=np.full((8, 8), float(n), np.float32)).save(output)')
    assert "NotImplementedError" not in text
    (d / "mkref_my_module.py").write_text(text)
    cfg = _config(tmp_path, f"""
reflabels: [my_module]
reftypes: [gain]
plugin_dirs: [{d}]
my_module: {{reftype: gain, imtypes: D, ssbsteps: ''}}
""")
    assert cli.main(["--cfgfile", str(cfg), "my_module", "--num_boxes", "4",
                     str(tiny.outdir)]) == 0
    with dm.GainModel(str(tmp_path / "out" / "001" / "final" / "my_module_001.gain.fits")) as m:
        assert np.all(m.data == 4.0)


def test_missing_plugin_and_reftype_resolution(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", str(tmp_path / "o"))
    # a configured reflabel without a plug-in (the spec's example 'bpm' section)
    cfg = tmp_path / "main.cfg"
    cfg.write_text("reflabels: [bpm]\nbpm: {reftype: bpm, imtypes: D, ssbsteps: refpix-}\n")
    assert cli.main(["--cfgfile", str(cfg), "bpm", str(tiny.outdir)]) == 2
    err = capsys.readouterr().err
    assert "no plug-in for reflabel 'bpm'" in err and "readnoise" in err
    assert not (tmp_path / "o").exists()                       # refused before any work
    # gain resolves to gain_armin (default_reflabels); darks alone make no DDFF group,
    # which the dry run says with the status a run would have
    assert cli.main(["--dry-run", "gain", str(tiny.outdir)]) == 2
    captured = capsys.readouterr()
    assert "gain_armin: reftype gain, imtypes DDFF" in captured.out
    assert "gain_armin: no group of imtypes DDFF" in captured.err
    # a reference type runs its default module: mask -> bad_pixel_mask
    assert cli.main(["--dry-run", "mask", str(tiny.outdir)]) == 2
    assert "bad_pixel_mask: reftype mask, imtypes D+F+" in capsys.readouterr().out
    assert cli.main(["--dry-run", "flatfield", str(tiny.outdir)]) == 2
    assert "unknown reflabel or reftype 'flatfield'" in capsys.readouterr().err


def test_shipped_plugins_run_on_their_own(tmp_path):
    """The spec wants plug-ins executable by batch systems: python -m ... works."""
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-m", "jwst_reffiles.plugins.mkref_readnoise", "--help"],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "--group_diff_type" in res.stdout
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_auto_resumes_the_latest_run_and_a_second_call_keeps_the_first_ones_rows(
        tiny, tmp_path, capsys):
    d = tmp_path / "p"
    d.mkdir()
    (d / "mkref_a.py").write_text(USER_PLUGIN.format(label="gain_a", fail_on=""))
    (d / "mkref_b.py").write_text(USER_PLUGIN.format(label="gain_b", fail_on="")
                                  .replace("class Fancy", "class FancyB"))
    cfg = tmp_path / "main.cfg"
    cfg.write_text(f"""output: {{outrootdir: {tmp_path / 'out'}, runID: AUTO}}
reflabels: [gain_a, gain_b]
reftypes: [gain]
plugin_dirs: [{d}]
gain_a: {{reftype: gain, imtypes: D, ssbsteps: ''}}
gain_b: {{reftype: gain, imtypes: D+, ssbsteps: ''}}
""")
    base = ["-j", "1", "--no-quality-check", "--cfgfile", str(cfg)]
    assert cli.main(["--dry-run", *base, "gain_a", str(tiny.outdir)]) == 0
    assert not (tmp_path / "out").exists()                 # a dry run claims no number
    assert cli.main([*base, "gain_a", str(tiny.outdir)]) == 0
    assert cli.main([*base, "gain_b", str(tiny.outdir)]) == 0
    capsys.readouterr()
    rundir = tmp_path / "out" / "001"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["001"]   # resumed
    for name, want in (("reffiles.ecsv", ["gain_a", "gain_a", "gain_b"]),
                       ("final_reffiles.ecsv", ["gain_a", "gain_b"]),
                       ("groups.ecsv", ["gain_a", "gain_a", "gain_b", "gain_b"])):
        assert sorted(Table.read(rundir / name)["reflabel"]) == want, name
    import json
    entries = json.loads((rundir / "validation" / "validation.json").read_text())["files"]
    assert sorted(e["reflabel"] for e in entries) == ["gain_a", "gain_b"]
    page = (rundir / "report" / "index.html").read_text()
    assert "gain_a_001.gain.fits" in page and "gain_b_001.gain.fits" in page
    # the same call again reuses every task; --new-run starts run 002
    assert cli.main([*base, "gain_a", str(tiny.outdir)]) == 0
    assert "0 task(s) to run, 3 reused" in capsys.readouterr().out
    assert cli.main([*base, "--new-run", "gain_a", str(tiny.outdir)]) == 0
    assert (tmp_path / "out" / "002" / "final" / "gain_a_002.gain.fits").is_file()

import subprocess
import sys

import pytest
from astropy.table import Table

from jwst_reffiles import cli


def test_simulate_subcommand_writes_and_reports(tmp_path, capsys):
    rc = cli.main(["simulate", "-q", "--outdir", str(tmp_path), "--subarray", "SUB64P",
                   "--ngroups", "3", "--nints", "1", "--ndarks", "2", "--nflats", "1",
                   "--flat-flux", "500", "--style", "flight", "--seed", "3"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "3 exposures (2 dark, 1 flat)" in out
    assert "injected defects" in out and "truth reference files" in out
    m = Table.read(tmp_path / "manifest.ecsv")
    assert len(m) == 3 and all(n.startswith("jw") for n in m["filename"])


def test_simulate_errors_name_the_problem(tmp_path, capsys):
    rc = cli.main(["simulate", "-q", "--outdir", str(tmp_path), "--detector", "NRCQ7"])
    assert rc == 2
    assert "NRCQ7" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--flat-flux", "a,b", "--outdir", str(tmp_path)])
    assert "comma-separated numbers" in capsys.readouterr().err


def test_simulate_needs_an_outdir(capsys):
    with pytest.raises(SystemExit):
        cli.main(["simulate"])
    assert "--outdir" in capsys.readouterr().err


def test_help_is_fast_and_does_not_import_the_pipeline():
    code = ("import sys; from jwst_reffiles import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'jwst.pipeline' not in sys.modules and 'stdatamodels' not in sys.modules")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "--cfgfile" in res.stdout


@pytest.fixture(scope="module")
def six_four(tmp_path_factory):
    """6 darks + 4 flats, 0.6 d apart per kind: the issue's dry-run example."""
    from jwst_reffiles.simulate import simulate_dataset
    out = tmp_path_factory.mktemp("sim")
    simulate_dataset(out, subarray="SUB64P", ngroups=2, nints=1, ndarks=6, nflats=4,
                     cadence_days=0.6, write_reffiles=False, seed=5)
    return out


def test_dry_run_prints_groups_for_every_imtype_and_writes_nothing(six_four, tmp_path,
                                                                       capsys, monkeypatch):
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", str(tmp_path / "out"))
    cfg = tmp_path / "main.cfg"
    cfg.write_text("reflabels: [rdnoise_nircam, gain_bryan, gain_armin, bpm]\n"
                   "bpm:\n  reftype: bpm\n  imtypes: D+\n  ssbsteps: refpix-\n")
    rc = cli.main(["-v", "--cfgfile", str(cfg), "--dry-run",
                   "rdnoise_nircam,gain_bryan,gain_armin,bpm", str(six_four / "*_uncal.fits")])
    captured = capsys.readouterr()
    out = captured.out
    # bpm has no plug-in: the dry run shows everything, and exits as a real run would
    assert rc == 2 and "no plug-in for reflabel 'bpm'" in captured.err
    assert "Inputs: 10 files (6 dark, 4 flat)" in out
    for label, imt, n in (("rdnoise_nircam", "DD", 3), ("gain_bryan", "FF", 2),
                          ("gain_armin", "DDFF", 2), ("bpm", "D+", 1)):
        assert f"{label}: reftype" in out and f"imtypes {imt}," in out
        assert f"{n} group" in out.split(f"{label}: reftype")[1].split("\n")[0]
    assert "rdnoise_nircam/rdnoise_nircam_001." in out and ".rdnoise.fits" in out
    # a dry run takes no run number and writes nothing
    assert "Dry run: nothing was written" in out
    assert not (tmp_path / "out").exists()


def test_overrides_and_plugin_parameters_on_the_command_line(six_four, tmp_path, capsys,
                                                             monkeypatch):
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", str(tmp_path / "out"))
    rc = cli.main(["--dry-run", "-p", "output.runID", "12", "-p", "DD.max_Delta_MJD", "0.1",
                   "--pp", "output", "outsubdir", "night", "--boxsize", "32",
                   "rdnoise_nircam,example_readnoise_module", str(six_four)])
    out = capsys.readouterr().out
    assert rc == 2                     # as a real run: rdnoise_nircam has no group
    assert "(runID 012)" in out and str(tmp_path / "out" / "night" / "012") in out
    # with DD pairs at most 0.1 d apart no dark pairs up
    assert "rdnoise_nircam: reftype rdnoise, imtypes DD" in out and ": 0 groups" in out
    assert out.count("not used:") == 6


def test_plugin_parameter_no_requested_module_has(six_four, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", str(tmp_path / "out"))
    rc = cli.main(["--dry-run", "--boxsize", "32", "bpm", str(six_four)])
    assert rc == 2
    assert "none of the requested modules (bad_pixel_mask) has a parameter 'boxsize'" in capsys.readouterr().err


def test_errors_exit_2_with_the_reason(six_four, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("JWST_MKREFS_OUTDIR", raising=False)
    assert cli.main(["--dry-run", "bpm", str(six_four)]) == 2
    assert "$JWST_MKREFS_OUTDIR is not set" in capsys.readouterr().err
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", str(tmp_path / "out"))
    assert cli.main(["--dry-run", "flux", str(six_four)]) == 2
    assert "unknown reflabel or reftype 'flux'" in capsys.readouterr().err
    assert cli.main(["--dry-run", "bpm", str(tmp_path / "none*.fits")]) == 2
    assert "matches no file" in capsys.readouterr().err
    assert cli.main(["--dry-run", "bpm"]) == 2
    assert "no input files" in capsys.readouterr().err


def test_print_config(capsys):
    assert cli.main(["--print-config"]) == 0
    out = capsys.readouterr().out
    assert "max_Delta_MJD" in out and "basenamepattern" in out and out.startswith("#")


def test_without_reference_files_and_without_crds_nothing_runs_and_each_is_named(
        six_four, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", str(tmp_path / "out"))
    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "no_crds_cache"))
    monkeypatch.setenv("CRDS_SERVER_URL", "https://127.0.0.1:9")     # refuses at once
    # a dry run shows the groups and the plan, and says what CRDS would have to give
    assert cli.main(["--dry-run", "readnoise", str(six_four)]) == 0
    captured = capsys.readouterr()
    assert "readnoise: reftype readnoise" in captured.out and "strun calwebb_detector1" in \
        captured.out
    lines = [x for x in captured.err.splitlines() if "reffile4ssb gives CRDS" in x]
    assert sorted(x.split()[3] for x in lines) == ["saturation", "superbias"]
    assert all("cannot be reached" in x and "no_crds_cache" in x for x in lines)
    assert "for step saturation, superbias of 6 exposure(s)" in captured.err
    # the real run refuses before any pipeline run, one line each
    assert cli.main(["readnoise", str(six_four)]) == 2
    err = capsys.readouterr().err
    assert err.count("reffile4ssb gives CRDS") == 2 and "nothing was run" in err
    assert not (tmp_path / "out" / "001" / "pipeline_runs.ecsv").exists()

def test_the_spec_example_configuration_runs_as_written(six_four, tmp_path, capsys,
                                                         monkeypatch):
    from pathlib import Path
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", str(tmp_path / "out"))
    spec = Path(__file__).parent / "data" / "spec_example.cfg"
    assert cli.main(["--cfgfile", str(spec), "--dry-run", "rdnoise", str(six_four)]) == 0
    captured = capsys.readouterr()
    assert "unknown top-level key 'test1'" in captured.err
    assert "example_readnoise_module: reftype rdnoise, imtypes D" in captured.out
    # the spec's naming: outsubdir test1, addsuffix bla
    assert "example_readnoise_module_test1_001.bla." in captured.out
    assert cli.main(["--cfgfile", str(spec), "--strict-config", "--dry-run", "rdnoise",
                     str(six_four)]) == 2

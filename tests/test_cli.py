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


def test_reference_file_form_says_it_is_not_available_yet(capsys):
    assert cli.main(["-vvv", "--cfgfile", "x.cfg", "readnoise", "a.fits"]) == 2
    assert "not available" in capsys.readouterr().err

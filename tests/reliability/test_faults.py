"""Faults: a killed mkrefs takes its workers with it, a hanging plug-in times out, a
plug-in that kills its worker fails its own task only, a corrupt run state is set
aside.  The rest of the run goes on in each case."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from astropy.table import Table
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles import cli

from conftest import drift_free_darks, process_alive

PLUGIN = '''
import os, time
import numpy as np
from stdatamodels.jwst import datamodels as dm
from jwst_reffiles.plugins import Plugin


class Misbehaving(Plugin):
    reflabel = "odd_gain"
    reftype = "gain"

    def callalgorithm(self):
        names = " ".join(self.inputimages["input_name"])
        if "{victim}" and "{victim}" in names:
            {action}
        m = dm.GainModel(data=np.ones((4, 4), np.float32))
        m.save(self.args.outputreffilename)
'''


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    return drift_free_darks(tmp_path_factory.mktemp("faults"), ngroups=2, nints=1, ndarks=4,
                            seed=6, write_reffiles=False)


def _setup(tmp_path, ds, action, victim=None, extra=""):
    plugdir = tmp_path / "plugins"
    plugdir.mkdir(exist_ok=True)
    victim = ds.files()[0].name if victim is None else victim
    (plugdir / "mkref_odd.py").write_text(PLUGIN.format(victim=victim, action=action))
    cfg = tmp_path / "main.cfg"
    cfg.write_text(textwrap.dedent(f"""
        output: {{outrootdir: {tmp_path / 'out'}, runID: 1}}
        reflabels: [odd_gain]
        reftypes: [gain]
        plugin_dirs: [{plugdir}]
        """) + "odd_gain: {reftype: gain, imtypes: D, ssbsteps: ''" + extra + "}\n")
    return cfg


def _statuses(tmp_path):
    return list(Table.read(tmp_path / "out" / "001" / "reffiles.ecsv")["status"])


def test_a_hanging_plugin_times_out_and_the_rest_goes_on(four, tmp_path, capsys):
    cfg = _setup(tmp_path, four, "time.sleep(600)", extra=", timeout: 3")
    t0 = time.monotonic()
    rc = cli.main(["-j", "2", "--no-quality-check", "--cfgfile", str(cfg), "odd_gain",
                   str(four.outdir)])
    out = capsys.readouterr().out
    assert time.monotonic() - t0 < 120
    assert rc == 1
    assert sorted(_statuses(tmp_path)) == ["made", "made", "made", "timed out"]
    assert "ran past its time limit of 3 s" in out
    assert (tmp_path / "out" / "001" / "final" / "odd_gain_001.gain.fits").is_file()


def test_a_plugin_that_kills_its_worker_fails_its_own_task_only(four, tmp_path, capsys):
    cfg = _setup(tmp_path, four, "os._exit(3)")
    rc = cli.main(["-j", "2", "--executor", "processes", "--no-quality-check", "--cfgfile",
                   str(cfg), "odd_gain", str(four.outdir)])
    out = capsys.readouterr().out
    assert rc == 1
    assert sorted(_statuses(tmp_path)) == ["failed", "made", "made", "made"], out
    assert "a worker process may have died" in out
    with dm.GainModel(str(tmp_path / "out" / "001" / "final" / "odd_gain_001.gain.fits")) as m:
        assert np.all(m.data == 1.0)              # from the three groups that were made


def test_a_corrupt_run_state_is_set_aside_and_the_run_goes_on(four, tmp_path, capsys):
    cfg = _setup(tmp_path, four, "pass", victim="")
    args = ["-j", "1", "--no-quality-check", "--cfgfile", str(cfg), "odd_gain",
            str(four.outdir)]
    assert cli.main(args) == 0
    state = tmp_path / "out" / "001" / "state.sqlite"
    state.write_bytes(b"this is no database" * 100)
    capsys.readouterr()
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "is unreadable" in err and "moved aside as state.sqlite.corrupt-" in err
    assert "Traceback" not in err
    assert list(state.parent.glob("state.sqlite.corrupt-*"))
    assert sqlite3.connect(state).execute("SELECT count(*) FROM tasks").fetchone()[0] == 5


def test_killing_mkrefs_kills_its_workers(four, tmp_path):
    cfg = _setup(tmp_path, four, "time.sleep(600)", victim="DARK")   # every task hangs
    cmd = [sys.executable, "-m", "jwst_reffiles.cli", "-j", "2", "--executor", "processes",
           "--cfgfile", str(cfg), "odd_gain", str(four.outdir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    children = []
    while time.time() < deadline and len(children) < 2:
        time.sleep(0.5)
        res = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
        children = [int(x) for x in res.stdout.split()]
    assert len(children) >= 2, "the workers did not start"
    time.sleep(3)                               # the tasks are running in them
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 20
    alive = children
    while time.time() < deadline and alive:
        time.sleep(0.5)
        alive = [c for c in children if process_alive(c)]
    assert not alive, f"worker processes {alive} outlived mkrefs"
    # and a new run is not refused by a lock a worker still holds
    res = subprocess.run(cmd[:-2] + ["--dry-run", "odd_gain", str(four.outdir)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr

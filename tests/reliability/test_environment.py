"""Environment faults and concurrency: named errors, nothing half-written, no lost run."""

import errno
import multiprocessing as mp

import numpy as np
import pytest
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles import cli
from jwst_reffiles.layout import make_layout
from jwst_reffiles.reffile import atomic_save, atomic_write


def test_output_directory_that_cannot_be_made(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cfg = tmp_path / "cfg"
    cfg.write_text(f"output: {{outrootdir: {blocker / 'out'}, runID: AUTO}}\n")
    from jwst_reffiles.simulate import simulate_dataset
    ds = simulate_dataset(tmp_path / "sim", subarray="SUB64P", ngroups=3, nints=1, ndarks=1,
                          nflats=0, seed=1, write_reffiles=False)
    rc = cli.main(["--cfgfile", str(cfg), "superbias", str(ds.files()[0])])
    err = capsys.readouterr().err
    assert rc == 2
    assert "output.outrootdir" in err and str(blocker / "out") in err and "Traceback" not in err


class _DiskFull:
    def save(self, path, **kw):
        with open(path, "wb") as fh:
            fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_writing_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "ref.fits"
    with pytest.raises(OSError, match="No space left"):
        atomic_save(_DiskFull(), target)
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []          # no temporary left either
    # an existing file is not touched by a failed rewrite
    good = dm.GainModel(data=np.ones((4, 4), np.float32))
    atomic_save(good, target)
    before = target.read_bytes()
    with pytest.raises(OSError):
        atomic_save(_DiskFull(), target)
    assert target.read_bytes() == before

    def half(tmp):
        open(tmp, "w").write("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError):
        atomic_write(tmp_path / "out" / "table.ecsv", half)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ref.fits"]


def _claim(args):
    base, barrier = args
    barrier.wait()
    return str(make_layout({"outrootdir": base, "runID": "AUTO"}, new_run=True).rundir)


def test_runs_started_at_the_same_moment_get_distinct_run_directories(tmp_path):
    n = 8
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n)
        with ctx.Pool(n) as pool:
            dirs = pool.map(_claim, [(str(tmp_path), barrier)] * n)
    assert len(set(dirs)) == n
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i:03d}" for i in range(1, n + 1)]


KILLER_PLUGIN = '''
import os
import signal
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels as dm
from jwst_reffiles.plugins import Plugin


class Killer(Plugin):
    reflabel = "killer_gain"
    reftype = "gain"

    def callalgorithm(self):
        names = " ".join(self.inputimages["input_name"])
        if Path("{marker}").exists() and "{victim}" in names:
            os.kill(os.getpid(), signal.SIGKILL)       # as the kernel's OOM killer would
        m = dm.GainModel(data=np.ones((4, 4), np.float32))
        m.meta.description = "gain"
        m.save(self.args.outputreffilename)
'''


def test_a_killed_worker_process_fails_the_run_and_a_rerun_finishes_it(tmp_path, capsys):
    from conftest import drift_free_darks
    ds = drift_free_darks(tmp_path / "sim", ngroups=2, nints=1, ndarks=2, seed=4,
                          write_reffiles=False)
    victim = ds.files()[0].name
    marker = tmp_path / "kill"
    marker.write_text("")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "mkref_killer.py").write_text(KILLER_PLUGIN.format(marker=marker, victim=victim))
    cfg = tmp_path / "cfg"
    cfg.write_text(f"output: {{outrootdir: {tmp_path / 'out'}, runID: 1}}\n"
                   f"reflabels: [killer_gain]\nreftypes: [gain]\nplugin_dirs: [{plugins}]\n"
                   "killer_gain: {reftype: gain, imtypes: D, ssbsteps: ''}\n")
    args = ["-j", "2", "--executor", "processes", "--no-quality-check", "--cfgfile", str(cfg),
            "killer_gain", str(ds.outdir)]
    rc = cli.main(args)
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "a worker process may have died" in out
    rundir = tmp_path / "out" / "001"
    final = rundir / "final" / "killer_gain_001.gain.fits"
    # only the task that killed its worker failed: the other group's was run again in a
    # new pool, and the final file is made of it ("1 of 2 groups")
    assert "killer_gain final" in out and "of 1 of 2 group(s)" in out
    # what a killed process was writing stays in its temporary directory (no
    # product path holds a partial file); the next run sweeps those away
    temporaries = [p for p in rundir.rglob("*") if p.name.endswith(".tmp")]
    products = list((rundir / "killer_gain").glob("*.gain.fits"))
    assert len(products) == 1
    with dm.GainModel(str(products[0])) as m:      # the other worker's, complete
        m.validate()
        assert np.all(m.data == 1.0)
    # the state claims no product of the killed task
    import sqlite3
    db = sqlite3.connect(rundir / "state.sqlite")
    status = dict(db.execute("select label, status from tasks"))
    db.close()
    assert sorted(status.values()) == ["done", "done", "failed"]
    marker.unlink()
    rc = cli.main(args)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "2 task(s) to run, 1 reused" in out          # the failed one and the final
    with dm.GainModel(str(final)) as m:
        assert np.all(m.data == 1.0)
    assert not any(p.exists() for p in temporaries)
    assert not [p for p in rundir.rglob("*") if p.name.endswith(".tmp")]


def test_a_failure_after_the_run_is_named_and_keeps_the_exit_status(tmp_path, capsys,
                                                                    monkeypatch):
    """Validation and report come after the reference files are made: an unexpected error
    there is one named line (traceback in the run's log), not a crash."""
    from conftest import drift_free_darks
    import jwst_reffiles.validation as validation
    ds = drift_free_darks(tmp_path / "sim", ngroups=2, nints=1, ndarks=1, seed=4,
                          write_reffiles=False)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "mkref_killer.py").write_text(KILLER_PLUGIN.format(marker=tmp_path / "no",
                                                                  victim="x"))
    cfg = tmp_path / "cfg"
    cfg.write_text(f"output: {{outrootdir: {tmp_path / 'out'}, runID: 1}}\n"
                   f"reflabels: [killer_gain]\nreftypes: [gain]\nplugin_dirs: [{plugins}]\n"
                   "killer_gain: {reftype: gain, imtypes: D, ssbsteps: ''}\n")

    def broken(*a, **k):
        raise RuntimeError("the validator broke")

    monkeypatch.setattr(validation, "validate_run", broken)
    rc = cli.main(["-j", "1", "--cfgfile", str(cfg), "killer_gain", str(ds.outdir)])
    out = capsys.readouterr()
    assert rc == 0, out.out
    assert "validation and report failed (RuntimeError: the validator broke)" in out.err
    assert "traceback in the run's log" in out.err
    assert "Traceback (most recent" not in out.err + out.out
    log = (tmp_path / "out" / "001" / "mkrefs.log").read_text()
    assert "the validator broke" in log and "Traceback" in log
    assert (tmp_path / "out" / "001" / "final" / "killer_gain_001.gain.fits").is_file()

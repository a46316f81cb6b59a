"""Execution: the task graph, the executors, the run state and resuming."""

import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from jwst_reffiles import cli
from jwst_reffiles.execution import GraphError, Task, TaskGraph, run_graph
from jwst_reffiles.execution.graph import run_node
from jwst_reffiles.state import RunLocked, RunState

from conftest import USER_PLUGIN, drift_free_darks


# ---- the graph and the executors on plain functions -------------------------------

def _add(payload, deps):
    total = payload["value"] + sum(r["value"] for r in deps.values() if r.get("ok"))
    if payload.get("fail"):
        raise RuntimeError("asked to fail")
    return {"ok": True, "seconds": 0.0, "outputs": [], "value": total, "pid": os.getpid()}


def _toy_graph():
    g = TaskGraph()
    g.add(Task("p:1", "pipeline", "one", _add, {"value": 1}, {}))
    g.add(Task("p:2", "pipeline", "two", _add, {"value": 2, "fail": True}, {}))
    g.add(Task("i:1", "individual", "i1", _add, {"value": 10}, {}, deps=["p:1"]))
    g.add(Task("i:2", "individual", "i2", _add, {"value": 20}, {}, deps=["p:2"]))
    # a final task takes what its dependencies made; its payload names task ids, which
    # the executors must pass through as data
    g.add(Task("f:1", "final", "f", _add, {"value": 100, "names": ["i:1", "i:2"]}, {},
               deps=["i:2", "i:1"], needs_all=False))
    return g


@pytest.mark.parametrize("executor", ["inline", "processes", "dask"])
def test_every_executor_runs_the_graph_in_order_and_isolates_failures(executor):
    g = _toy_graph()
    started, ended = [], []
    results = run_graph(g, g.order(), {}, executor, 2, on_start=started.append,
                        on_done=lambda tid, r: ended.append(tid))
    assert results["p:1"]["value"] == 1
    assert not results["p:2"]["ok"] and "asked to fail" in results["p:2"]["error"]
    assert results["i:1"]["value"] == 11
    assert results["i:2"].get("skipped") and "p:2" in results["i:2"]["error"]
    assert results["f:1"]["value"] == 111                  # ran without the failed branch
    assert sorted(ended) == sorted(g.order()) and sorted(started) == sorted(g.order())
    assert ended.index("f:1") > ended.index("i:1")
    if executor == "inline":
        assert results["f:1"]["pid"] == os.getpid()
    else:
        assert results["f:1"]["pid"] != os.getpid()


def _nap(payload, deps):
    t0 = time.time()
    time.sleep(payload["seconds"])
    return {"ok": True, "seconds": payload["seconds"], "outputs": [], "span": (t0, time.time()),
            "pid": os.getpid()}


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_independent_tasks_run_at_the_same_time(executor):
    g = TaskGraph()
    for k in range(2):
        g.add(Task(f"p:{k}", "pipeline", f"nap {k}", _nap, {"seconds": 1.0}, {}))
    r = run_graph(g, g.order(), {}, executor, 2)
    (a0, a1), (b0, b1) = r["p:0"]["span"], r["p:1"]["span"]
    assert r["p:0"]["pid"] != r["p:1"]["pid"]
    assert max(a0, b0) < min(a1, b1), "the two tasks did not overlap"


def _threads(payload, deps):
    from jwst_reffiles.stats import kernel_threads
    return {"ok": True, "seconds": 0.0, "outputs": [], "threads": kernel_threads()}


@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_workers_share_the_cores_between_their_kernel_threads(executor, monkeypatch):
    from jwst_reffiles.stats import THREADS_ENV
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    g = TaskGraph()
    for k in range(2):
        g.add(Task(f"p:{k}", "pipeline", f"threads {k}", _threads, {}, {}))
    r = run_graph(g, g.order(), {}, executor, 2)
    # 8 cores (as the parent sees them) between 2 workers: 4 threads each
    assert all(r[t]["threads"] == 4 for t in ("p:0", "p:1")), r
    assert THREADS_ENV not in os.environ            # the parent's environment is restored
    monkeypatch.setenv(THREADS_ENV, "1")            # the user's choice is kept
    r = run_graph(g, g.order(), {}, executor, 2)
    assert all(r[t]["threads"] == 1 for t in ("p:0", "p:1")), r


def test_reused_results_are_given_and_not_rerun():
    g = _toy_graph()
    given = {"p:1": {"ok": True, "value": 5}, "i:1": {"ok": True, "value": 50}}
    todo = [t for t in g.order() if t not in given]
    results = run_graph(g, todo, given, "inline", 1)
    assert set(results) == set(todo)
    assert results["f:1"]["value"] == 150


def test_order_and_cycles():
    g = _toy_graph()
    order = g.order()
    assert order.index("p:1") < order.index("i:1") < order.index("f:1")
    g.add(Task("p:3", "pipeline", "uses the final file (SELF)", _add, {"value": 0}, {},
               deps=["f:1"]))
    g["i:1"].deps.append("p:3")
    with pytest.raises(GraphError, match="circular dependency: .*SELF"):
        g.order()
    g2 = TaskGraph()
    g2.add(Task("a", "final", "a", _add, {}, {}, deps=["nowhere"]))
    with pytest.raises(GraphError, match="a -> nowhere"):
        g2.order()


def test_run_node_turns_any_exception_into_a_failed_result():
    r = run_node(_add, {"value": 1, "fail": True}, True, [], [])
    assert not r["ok"] and "RuntimeError: asked to fail" in r["error"] and "Traceback" in r[
        "traceback"]


def _allocate(payload, deps):
    block = np.ones(payload["mib"] * 2**17)        # float64: mib MiB, touched
    return {"ok": True, "seconds": 0.0, "outputs": [], "sum": float(block.sum())}


def test_run_node_reports_each_tasks_own_peak_memory():
    from jwst_reffiles.execution.resources import peak_memory_gib, reset_peak_memory
    if not reset_peak_memory():
        pytest.skip("no /proc/self/clear_refs: the peak is the process's")
    base = peak_memory_gib()
    big = run_node(_allocate, {"mib": 400}, True, [], [])
    small = run_node(_allocate, {"mib": 10}, True, [], [])
    assert big["peak_GiB"] - base > 0.35                   # its 400 MiB are counted
    assert small["peak_GiB"] < big["peak_GiB"] - 0.3        # the mark was reset between them
    failed = run_node(_add, {"value": 1, "fail": True}, True, [], [])
    assert failed["peak_GiB"] > 0
    told = run_node(lambda p, d: {"ok": True, "peak_GiB": 7.0}, {}, True, [], [])
    assert told["peak_GiB"] == 7.0                         # a task's own measure is kept


def test_a_run_directory_is_locked_while_in_use(tmp_path):
    with RunState(tmp_path):
        with pytest.raises(RunLocked, match=f"{tmp_path}.*pid {os.getpid()}"):
            RunState(tmp_path)
    with RunState(tmp_path):          # free again
        pass


# ---- batch clusters (dask-jobqueue) ------------------------------------------------

@pytest.mark.parametrize("mode,expect", [
    ("Condor", ["RequestMemory = ", "RequestDisk = ", "+MaxRuntime = 7200",
                "Requirements = (OpSysAndVer == \"AlmaLinux9\")"]),
    ("SLURM", ["#SBATCH -p calib", "#SBATCH --mem=", "#SBATCH -t 02:00:00",
               "#SBATCH -A jwst", "source /opt/venvs/reffiles/bin/activate"]),
])
def test_batch_cluster_job_scripts_from_the_configuration(tmp_path, mode, expect):
    from jwst_reffiles.config import load_config
    from jwst_reffiles.execution import jobqueue_cluster
    extra = ({"job_extra_directives": {"+MaxRuntime": "7200",
                                       "Requirements": '(OpSysAndVer == "AlmaLinux9")'}}
             if mode == "Condor" else {"queue": "calib", "account": "jwst"})
    cfg = tmp_path / "main.cfg"
    cfg.write_text(textwrap.dedent(f"""
        output: {{outrootdir: {tmp_path}, runID: 1}}
        batch:
          batch_enabled: True
          batchmode: {mode}
          jobs: 3
          queue_options:
            cores: 1
            memory: 6GiB
            disk: 20GiB
            walltime: "02:00:00"
            job_script_prologue: ["source /opt/venvs/reffiles/bin/activate"]
            log_directory: {tmp_path / 'logs'}
        """))
    batch = load_config(cfg)["batch"]
    batch["queue_options"].update(extra)
    cluster = jobqueue_cluster(batch, check=False)      # no batch system needed
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for text in expect:
        assert text in script, script
    # each job's kernels use its own cores, not every core of the node
    assert "export JWST_REFFILES_THREADS=1" in script
    assert "distributed.cli.dask_worker" in script and "--nthreads 1" in script
    assert "--memory-limit 6.00GiB" in script


# ---- mkrefs on simulated data ----------------------------------------------------

def _data_checksums(path):
    """SHA-256 of every HDU's data (headers carry dates and names, which differ)."""
    out = {}
    with fits.open(path) as hdul:
        for hdu in hdul:
            if hdu.name == "ASDF" or hdu.data is None:
                continue
            data = np.ascontiguousarray(hdu.data)
            out[hdu.name] = hashlib.sha256(data.tobytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def darks2(tmp_path_factory):
    return drift_free_darks(tmp_path_factory.mktemp("exe"), ngroups=5, nints=2, ndarks=2,
                            seed=7)


def _exe_config(tmp_path, sim, more=""):
    cfg = tmp_path / "main.cfg"
    cfg.write_text(textwrap.dedent(f"""
        output: {{outrootdir: {tmp_path / 'out'}, runID: 1}}
        reffile4ssb: {{default: '{sim.outdir / 'reffiles'}/*.fits', mask: REFPIX}}
        dark:
          reffile4ssb: {{mask: REFPIX, superbias: SELF}}
        """) + more)
    return cfg


def test_same_outputs_under_every_executor_and_self_references_first(darks2, tmp_path,
                                                                       capsys):
    cfg = _exe_config(tmp_path, darks2)
    files = [str(p) for p in darks2.files()]
    # the dry run shows the graph: the dark's pipeline runs wait for the final superbias
    assert cli.main(["--dry-run", "--cfgfile", str(cfg), "readnoise,superbias,dark"]
                    + files) == 0
    out = capsys.readouterr().out
    assert "Task graph: " in out and "after: superbias final" in out
    sums = {}
    for run_id, executor in ((2, "inline"), (3, "processes"), (4, "dask")):
        rc = cli.main(["--cfgfile", str(cfg), "-p", "output.runID", str(run_id),
                       "--executor", executor, "-j", "2", "--no-quality-check",
                       "readnoise,superbias,dark"] + files)
        out = capsys.readouterr().out
        assert rc == 0, out
        rundir = tmp_path / "out" / f"{run_id:03d}"
        state = sqlite3.connect(rundir / "state.sqlite")
        rows = state.execute("SELECT id, status, attempts, finished FROM tasks").fetchall()
        assert rows and all(r[1] == "done" and r[2] == 1 for r in rows), rows
        finished = {r[0]: r[3] for r in rows}
        # the dark's calibration used this run's final superbias, made before it
        dark_runs = [k for k in finished if k.startswith("pipeline:") and
                     "superbias" in str(state.execute("SELECT spec FROM tasks WHERE id=?",
                                                      (k,)).fetchone()[0]) and
                     "final/superbias" in str(state.execute(
                         "SELECT spec FROM tasks WHERE id=?", (k,)).fetchone()[0])]
        assert len(dark_runs) == 2
        assert all(finished[k] >= finished["final:superbias"] for k in dark_runs)
        made = {}
        for name in ("reffiles.ecsv", "final_reffiles.ecsv"):
            for row in Table.read(rundir / name):
                assert row["status"] == "made"
                made[(row["reflabel"], str(row["cmdID"]))] = _data_checksums(row["output"])
        assert len(made) == 2 + 2 + 1 + 3           # readnoise, superbias, dark; 3 finals
        sums[executor] = made
    assert sums["inline"] == sums["processes"] == sums["dask"]

    # a changed input: the pipeline runs of that file (and what depends on them) are done
    # again, although its old products are on disk; the other file's are reused
    src = sorted(darks2.files())[0]
    with fits.open(src, mode="update") as hdul:
        hdul["SCI"].data[0, 1, 20, 20] += 3
    rc = cli.main(["--cfgfile", str(cfg), "-p", "output.runID", "4", "--executor", "inline",
                   "--no-quality-check", "readnoise,superbias,dark"] + files)
    out = capsys.readouterr().out
    assert rc == 0, out
    db = sqlite3.connect(tmp_path / "out" / "004" / "state.sqlite")
    last = db.execute("SELECT max(id) FROM sessions").fetchone()[0]
    again = {r[0] for r in db.execute("SELECT id FROM tasks WHERE session=?", (last,))}
    specs = dict(db.execute("SELECT id, spec FROM tasks").fetchall())
    root = src.name[:-len("_uncal.fits")]
    # that file's two runs, and the other file's dark run: it calibrates with this run's
    # final superbias, which is made again
    runs = [k for k in again if k.startswith("pipeline:")]
    assert len(runs) == 3 and sum(root in k for k in runs) == 2
    assert all(root in k or "final/superbias" in specs[k] for k in runs)
    assert len([k for k in again if k.startswith("individual:")]) == 3   # rn, sb, dark
    assert {"final:readnoise", "final:superbias", "final:dark"} <= again
    assert len(again) == 3 + 3 + 3


def _kill_config(tmp_path, sim, plugdir, delay):
    (plugdir / "mkref_slow.py").write_text(
        USER_PLUGIN.format(label="slow_gain", fail_on="")
        .replace("    def callalgorithm(self):\n",
                 f"    def callalgorithm(self):\n        import time; time.sleep({delay})\n"))
    cfg = tmp_path / "main.cfg"
    cfg.write_text(textwrap.dedent(f"""
        output: {{outrootdir: {tmp_path / 'out'}, runID: 1}}
        reflabels: [slow_gain]
        reftypes: [gain]
        plugin_dirs: [{plugdir}]
        slow_gain: {{reftype: gain, imtypes: D, ssbsteps: ''}}
        """))
    return cfg


@pytest.fixture(scope="module")
def six_tiny(tmp_path_factory):
    return drift_free_darks(tmp_path_factory.mktemp("six"), ngroups=2, nints=1, ndarks=6,
                            seed=3, write_reffiles=False)


def test_a_killed_run_resumes_without_redoing_finished_tasks(six_tiny, tmp_path):
    plugdir = tmp_path / "plugins"
    plugdir.mkdir()
    cfg = _kill_config(tmp_path, six_tiny, plugdir, delay=1.0)
    rundir = tmp_path / "out" / "001"
    cmd = [sys.executable, "-m", "jwst_reffiles.cli", "--cfgfile", str(cfg), "--executor",
           "inline", "slow_gain", str(six_tiny.outdir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    made = []
    while time.time() < deadline and len(made) < 3:
        time.sleep(0.1)
        made = sorted((rundir / "slow_gain").glob("*.gain.fits")) if (
            rundir / "slow_gain").exists() else []
    assert len(made) >= 3, "the run did not get going"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    db = sqlite3.connect(rundir / "state.sqlite")
    before = dict(db.execute("SELECT id, status FROM tasks").fetchall())
    done_before = {k for k, v in before.items() if v == "done"}
    assert 3 <= len(done_before) < 6 and "final:slow_gain" not in done_before
    assert not (rundir / "final").exists() or not list((rundir / "final").glob("*.fits"))
    mtimes = {p: p.stat().st_mtime_ns for p in made}
    db.close()

    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    db = sqlite3.connect(rundir / "state.sqlite")
    rows = {r[0]: r[1:] for r in db.execute("SELECT id, status, attempts FROM tasks")}
    assert all(status == "done" for status, _ in rows.values()) and len(rows) == 7
    for tid in done_before:
        assert rows[tid][1] == 1, f"{tid} was done again"
    for p, m in mtimes.items():
        assert p.stat().st_mtime_ns == m
    for tid in (k for k, v in before.items() if v == "running"):   # interrupted: done again
        assert rows[tid][1] == 2
    summary = res.stdout
    assert re.search(r"individual\s+6\s+\d+\s+\d+\s+0\s+0", summary), summary
    from stdatamodels.jwst import datamodels as dm
    for p in sorted((rundir / "slow_gain").glob("*.gain.fits")) + [
            rundir / "final" / "slow_gain_001.gain.fits"]:
        with dm.open(p) as m:
            m.validate()
    assert not list(rundir.rglob("*.tmp")) and not list(rundir.rglob(".*tmp*"))

    # a third run reuses everything; --force-redo individual does that stage (and the
    # final one after it) again; a changed input redoes only what depends on it
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0 and "0 task(s) to run, 7 reused" in res.stdout, res.stdout
    src = sorted(six_tiny.files())[0]
    with fits.open(src, mode="update") as hdul:
        hdul["SCI"].data[0, 0, 10, 10] += 1
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0 and "2 task(s) to run, 5 reused" in res.stdout, res.stdout
    res = subprocess.run(cmd + ["--force-redo", "individual"], capture_output=True, text=True)
    assert res.returncode == 0 and "7 task(s) to run, 0 reused" in res.stdout, res.stdout

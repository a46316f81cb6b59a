"""Batch mode: absent batch systems, jobs that never start, interrupts, and a real
single-node SLURM (``ci/setup_slurm.sh``; these tests are skipped without one)
through dask-jobqueue's SLURMCluster, whose outputs must equal a local run's."""

import hashlib
import re
import shutil
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

from conftest import USER_PLUGIN, drift_free_darks


def _slurm_answers() -> str | None:
    if shutil.which("sbatch") is None:
        return "no sbatch here (run ci/setup_slurm.sh as root for a single-node SLURM)"
    try:
        res = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo does not answer ({exc})"
    if res.returncode or not any(s in res.stdout for s in ("idle", "mix", "alloc")):
        return f"SLURM has no usable node: {res.stdout.strip()} {res.stderr.strip()}"
    return None


needs_slurm = pytest.mark.skipif(_slurm_answers() is not None,
                                 reason=str(_slurm_answers()))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return drift_free_darks(tmp_path_factory.mktemp("batch"), ngroups=3, nints=1, ndarks=2,
                            seed=5)


def _config(tmp_path, sim, batch: str = "", plugdir=None):
    cfg = tmp_path / "main.cfg"
    text = textwrap.dedent(f"""
        output: {{outrootdir: {tmp_path / 'out'}, runID: 1}}
        reffile4ssb: {{default: '{sim.outdir / 'reffiles'}/*.fits'}}
        """) + textwrap.dedent(batch)
    if plugdir:
        text += textwrap.dedent(f"""
            reflabels: [slow_gain]
            reftypes: [gain]
            plugin_dirs: [{plugdir}]
            slow_gain: {{reftype: gain, imtypes: D, ssbsteps: ''}}
            """)
    cfg.write_text(text)
    return cfg


def test_a_batch_system_that_is_not_here_is_refused_in_one_line(tiny, tmp_path, capsys):
    if shutil.which("condor_submit"):
        pytest.skip("HTCondor is installed here")
    cfg = _config(tmp_path, tiny, "batch: {batch_enabled: True, batchmode: Condor}\n")
    t0 = time.monotonic()
    assert cli.main(["--cfgfile", str(cfg), "superbias", str(tiny.outdir)]) == 2
    err = capsys.readouterr().err
    assert time.monotonic() - t0 < 60
    assert err.count("mkrefs: error:") == 1 and "'condor_submit' is not on this" in err
    assert "nothing was submitted" in err
    assert not (tmp_path / "out").exists()                        # refused before any work


def test_importing_dask_jobqueue_leaves_ctrl_c_alone():
    code = ("import signal; from jwst_reffiles.execution.executors import _import_jobqueue;"
            "_import_jobqueue(); print(signal.getsignal(signal.SIGINT) is "
            "signal.default_int_handler)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.strip() == "True", res.stdout + res.stderr


def _slow_plugin(plugdir, delay):
    plugdir.mkdir(exist_ok=True)
    (plugdir / "mkref_slow.py").write_text(
        USER_PLUGIN.format(label="slow_gain", fail_on="")
        .replace("    def callalgorithm(self):\n",
                 f"    def callalgorithm(self):\n        import time; time.sleep({delay})\n"))


def _interrupt(cmd, rundir, done_marker, sig=signal.SIGINT, timeout=240):
    """Start mkrefs, wait for a first task to finish, send ``sig``; (rc, output)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + timeout
    while time.time() < deadline and not list(rundir.glob(done_marker)):
        time.sleep(0.2)
    assert list(rundir.glob(done_marker)), "the run did not get going"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_says_what_is_done_and_marks_the_state(tiny, tmp_path, sig):
    plugdir = tmp_path / "plugins"
    _slow_plugin(plugdir, delay=2.0)
    cfg = _config(tmp_path, tiny, plugdir=plugdir)
    rundir = tmp_path / "out" / "001"
    cmd = [sys.executable, "-m", "jwst_reffiles.cli", "--cfgfile", str(cfg), "--executor",
           "inline", "--no-quality-check", "slow_gain", str(tiny.outdir)]
    rc, out = _interrupt(cmd, rundir, "slow_gain/*.gain.fits", sig)
    assert rc == 130, out
    assert "interrupted; what finished is kept" in out and "Final reference files:" in out
    db = sqlite3.connect(rundir / "state.sqlite")
    assert db.execute("SELECT status FROM sessions ORDER BY id DESC").fetchone()[0] == \
        "interrupted"
    table = Table.read(rundir / "reffiles.ecsv")
    assert "made" in list(table["status"]) and "interrupted" in list(table["status"])


def _checksums(path):
    out = {}
    with fits.open(path) as hdul:
        for hdu in hdul:
            if hdu.name != "ASDF" and hdu.data is not None:
                out[hdu.name] = hashlib.sha256(np.ascontiguousarray(hdu.data)
                                               .tobytes()).hexdigest()
    return out


SLURM = """
batch:
  batch_enabled: True
  batchmode: SLURM
  jobs: 2
  worker_timeout: {timeout}
  queue_options:
    cores: 1
    memory: {memory}
    walltime: "00:20:00"
    job_name: jr-test
    log_directory: {logs}
"""


@needs_slurm
def test_slurm_runs_the_graph_with_outputs_equal_to_a_local_run(tiny, tmp_path, capsys):
    labels = "superbias,readnoise"
    (tmp_path / "local").mkdir()
    (tmp_path / "slurm").mkdir()
    local = _config(tmp_path / "local", tiny)
    assert cli.main(["--cfgfile", str(local), "--executor", "processes", "-j", "2",
                     "--no-quality-check", labels, str(tiny.outdir)]) == 0
    slurm = _config(tmp_path / "slurm", tiny, SLURM.format(
        timeout=300, memory="2GiB", logs=tmp_path / "slurm" / "jobs"))
    capsys.readouterr()
    assert cli.main(["-v", "--cfgfile", str(slurm), "--no-quality-check", labels,
                     str(tiny.outdir)]) == 0
    out = capsys.readouterr()
    assert "2 SLURM batch job(s) of 1 core(s)" in out.out
    for name in ("superbias_001.superbias.fits", "readnoise_001.readnoise.fits"):
        a = _checksums(tmp_path / "local" / "out" / "001" / "final" / name)
        b = _checksums(tmp_path / "slurm" / "out" / "001" / "final" / name)
        assert a == b, name
    assert list((tmp_path / "slurm" / "jobs").glob("*.err"))        # the workers' logs


@needs_slurm
def test_slurm_jobs_that_never_start_are_named_and_the_run_stops(tiny, tmp_path, capsys):
    # every core taken by another job: the run's jobs stay PENDING (Resources)
    blocker = subprocess.run(["sbatch", "--parsable", "-J", "jr-blocker", "-c",
                              str(_node_cpus()), "--wrap", "sleep 300"],
                             capture_output=True, text=True, check=True).stdout.strip()
    try:
        cfg = _config(tmp_path, tiny, SLURM.format(timeout=15, memory="1GiB",
                                                    logs=tmp_path / "jobs"))
        t0 = time.monotonic()
        assert cli.main(["--cfgfile", str(cfg), "--no-quality-check", "superbias",
                         str(tiny.outdir)]) == 2
        err = capsys.readouterr().err
        assert time.monotonic() - t0 < 180
        assert "no dask worker joined within 15 s" in err and "pending" in err, err
        assert re.search(r"job \d+ pending", err), err                 # with their ids
        res = subprocess.run(["squeue", "-h", "-n", "jr-test"], capture_output=True,
                             text=True)
        assert res.stdout.strip() == ""                              # no job left behind
    finally:
        subprocess.run(["scancel", blocker])
    # jobs the batch system refuses (more memory than the node has) are named so
    cfg = _config(tmp_path, tiny, SLURM.format(timeout=15, memory="900GiB",
                                                logs=tmp_path / "jobs"))
    assert cli.main(["--cfgfile", str(cfg), "--no-quality-check", "superbias",
                     str(tiny.outdir)]) == 2
    assert "not submitted (sbatch failed" in capsys.readouterr().err


def _node_cpus() -> int:
    res = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True)
    return int(res.stdout.split()[0].rstrip("+"))


@needs_slurm
def test_ctrl_c_in_batch_mode_stops_with_the_summary(tiny, tmp_path):
    plugdir = tmp_path / "plugins"
    _slow_plugin(plugdir, delay=3.0)
    cfg = _config(tmp_path, tiny, SLURM.format(timeout=300, memory="2GiB",
                                                logs=tmp_path / "jobs"), plugdir=plugdir)
    rundir = tmp_path / "out" / "001"
    cmd = [sys.executable, "-m", "jwst_reffiles.cli", "--cfgfile", str(cfg),
           "--no-quality-check", "slow_gain", str(tiny.outdir)]
    rc, out = _interrupt(cmd, rundir, "slow_gain/*.gain.fits")
    assert rc == 130, out
    assert "Final reference files:" in out
    db = sqlite3.connect(rundir / "state.sqlite")
    assert db.execute("SELECT status FROM sessions ORDER BY id DESC").fetchone()[0] == \
        "interrupted"
    time.sleep(2)
    res = subprocess.run(["squeue", "-h", "-n", "jr-test"], capture_output=True, text=True)
    assert res.stdout.strip() == ""                                  # jobs cancelled

"""Pipeline processes forked warm (jwst_reffiles.pipeline.launch): each call a new
process with its own environment, output files, exit status and time limit, the same
whether forked from the forkserver or started as a new interpreter."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import process_alive
from jwst_reffiles.pipeline.launch import forkserver_usable, run_function


def _target(argv):
    """A child's work: say where it is, then exit with argv[0] (or sleep argv[1] s)."""
    import gc
    print(f"pid {os.getpid()} env {os.environ.get('JR_TEST_VALUE')} "
          f"frozen {gc.get_freeze_count() > 0}", flush=True)
    print("to stderr", file=sys.stderr)
    if len(argv) > 1:
        time.sleep(float(argv[1]))
    return int(argv[0])


@pytest.fixture(params=["forked", "cold"])
def mode(request, monkeypatch):
    if request.param == "cold":
        monkeypatch.setenv("JWST_REFFILES_FORKSERVER", "0")
    elif not forkserver_usable():
        pytest.skip("no forkserver here")
    return request.param


def test_each_call_is_a_new_process_with_its_environment_and_status(mode, tmp_path):
    env = {**os.environ, "JR_TEST_VALUE": "given"}
    res = run_function("test_launch:_target", ["3"], env=env)
    assert res.returncode == 3
    assert "env given" in res.stdout and res.stderr.strip() == "to stderr"
    pid = int(res.stdout.split()[1])
    assert pid != os.getpid()
    # forked from the forkserver: the pipeline imported and frozen before the fork
    assert ("frozen True" in res.stdout) == (mode == "forked")
    again = run_function("test_launch:_target", ["0"], stdout=tmp_path / "o",
                         stderr=tmp_path / "e")
    assert again.returncode == 0 and again.stdout is None
    assert int((tmp_path / "o").read_text().split()[1]) != pid      # not reused
    assert "env None" in (tmp_path / "o").read_text()          # this process's environment
    assert (tmp_path / "e").read_text().strip() == "to stderr"


def test_a_process_past_its_time_limit_is_killed(mode):
    t0 = time.perf_counter()
    with pytest.raises(subprocess.TimeoutExpired):
        run_function("test_launch:_target", ["0", "60"], timeout=2)
    assert time.perf_counter() - t0 < 20


def test_a_pipeline_process_dies_with_the_process_that_started_it(tmp_path):
    if not forkserver_usable():
        pytest.skip("no forkserver here")
    pidfile = tmp_path / "pid"
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from jwst_reffiles.pipeline.launch import run_function
        if __name__ == "__main__":
            run_function("test_launch:_target", ["0", "600"], stdout={str(pidfile)!r})
        """))
    parent = subprocess.Popen([sys.executable, str(script)])
    deadline = time.time() + 60
    while time.time() < deadline and not (pidfile.exists() and pidfile.read_text()):
        time.sleep(0.2)
    child = int(pidfile.read_text().split()[1])
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 20
    while time.time() < deadline and process_alive(child):
        time.sleep(0.2)
    assert not process_alive(child), "the pipeline process outlived the process that started it"


def test_a_script_without_a_main_guard_starts_its_processes_cold(tmp_path):
    """A forked child imports the main script again: one that does its work at the
    top level would run again in every child, so its processes start cold."""
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from jwst_reffiles.pipeline.launch import run_function
        res = run_function("test_launch:_target", ["5"])
        print("RESULT", res.returncode, res.stdout.split()[-1])
        """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("RESULT") == 1 and "RESULT 5 False" in out.stdout

"""Execute planned pipeline runs: each in a process of its own.

A run is a separate Python process (:func:`jwst_reffiles.pipeline.worker.main`,
forked warm by :mod:`jwst_reffiles.pipeline.launch`), so a crash, a memory
blow-up or a kill takes down that file only.  Up to ``jobs`` processes run at
once.  With ``ssblogFlag`` / ``ssberrorlogFlag`` the
process's stdout / stderr are kept as ``<product>.log.txt`` / ``<product>.err.txt``
next to the deepest product; otherwise the tail of stderr is kept in the
outcome of a failed run.  Runs whose reference files all come from files (no
CRDS) get an offline CRDS environment, so nothing reaches for the network.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from astropy.table import Table

from .launch import run_function
from .offline import offline_environment
from .plan import PipelinePlan, PipelineRun
from .steps import spec_name

log = logging.getLogger(__name__)

__all__ = ["RunOutcome", "execute_plan", "default_jobs", "outcomes_table"]


@dataclass
class RunOutcome:
    run: PipelineRun
    ok: bool
    seconds: float
    error: str = ""
    #: the failed run's log with its traceback (kept beside its products)
    errorfile: str = ""
    #: the pipeline process's peak resident memory [GiB] (0: not known)
    peak_gib: float = 0.0


def default_jobs(per_job_gib: float = 4.0) -> int:
    """Processes to run at once: the cores, as far as memory allows."""
    from ..execution.executors import default_jobs as jobs
    return jobs(per_job_gib)


def _task(run: PipelineRun, workdir: Path) -> dict:
    return {
        "input": str(run.input),
        "done": list(run.done),
        "workdir": str(workdir),
        "steps": run.step_parameters(),
        "save_results": "ramp_fit" in run.to_run,
        "saves": [{"step": s.step, "dest": str(s.dest), "jrsteps": ",".join(s.level.steps),
                   "refs": dict(s.level.refs),
                   "companions": {k: str(v) for k, v in s.companions.items()}}
                  for s in run.saves],
        "source": str(run.source or run.input),
    }


def _execute_one(run: PipelineRun, ssbdir: Path, offline_env: dict, logflag: bool,
                 errflag: bool, timeout: float | None = None) -> RunOutcome:
    t0 = time.perf_counter()
    try:
        return _launch(run, ssbdir, offline_env, logflag, errflag, t0, timeout)
    except subprocess.TimeoutExpired:
        return RunOutcome(run, False, time.perf_counter() - t0,
                          f"timed out: the pipeline run passed its time limit of {timeout:g} s "
                          f"(execution.task_timeout); stopped")
    except Exception as exc:       # e.g. an unwritable ssbdir: recorded for this run
        return RunOutcome(run, False, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")


def _launch(run, ssbdir, offline_env, logflag, errflag, t0, timeout=None) -> RunOutcome:
    ssbdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".run-{run.root}-", dir=ssbdir))
    try:
        task_path = workdir / "task.json"
        task_path.write_text(json.dumps(_task(run, workdir)))
        env = dict(os.environ)
        if run.offline:
            env.update(offline_env)
        deepest = run.deepest
        out_path = (deepest.with_name(deepest.name[:-5] + ".log.txt") if logflag
                    else workdir / "stdout.txt")
        err_path = (deepest.with_name(deepest.name[:-5] + ".err.txt") if errflag
                    else workdir / "stderr.txt")
        # a new process, forked warm (launch.run_function), that dies with its parent (no
        # product renamed into ssbdir after mkrefs was killed); a run past its time
        # limit is killed (TimeoutExpired)
        proc = run_function("jwst_reffiles.pipeline.worker:main", [str(task_path)],
                            stdout=out_path, stderr=err_path, env=env, timeout=timeout)
        result_path = workdir / "result.json"
        result = json.loads(result_path.read_text()) if result_path.exists() else None
        peak = float((result or {}).get("peak_GiB", 0.0))
        if proc.returncode == 0 and result and result.get("ok"):
            return RunOutcome(run, True, time.perf_counter() - t0, peak_gib=peak)
        if result and not result.get("ok"):
            error = result["error"]
            log_text = "".join(p.read_text(errors="replace") for p in (out_path, err_path)
                               if p.exists())
            steps = re.findall(r"Step (\w+) running", log_text)
            if result.get("after_pipeline"):
                error = f"after the pipeline ran: {error}"
            elif steps and steps[-1] != "Detector1Pipeline":
                error = f"in step {steps[-1]}: {error}"
        else:
            tail = err_path.read_text().strip().splitlines()[-5:] if err_path.exists() else []
            error = (f"the pipeline process ended with status {proc.returncode}"
                     + (": " + " | ".join(tail) if tail else ""))
        if not run.offline:
            crds = sorted(k for k, v in run.refs.items() if v == "CRDS")
            error += (f" [reference files for {', '.join(crds)} were to come from CRDS: without "
                      f"a CRDS server or a populated CRDS cache, give them as files in the "
                      f"reffile4ssb section of the configuration]")
        errorfile = ""
        if errflag:
            error += f" (stderr: {err_path})"
            errorfile = str(err_path)
        elif err_path.exists():
            # the pipeline's log and traceback outlive the temporary directory
            keep = deepest.with_name(deepest.name[:-5] + ".error.txt")
            text = "".join(p.read_text(errors="replace") for p in (out_path, err_path)
                           if p.exists())
            try:
                from ..reffile import atomic_write
                atomic_write(keep, lambda tmp: Path(tmp).write_text(text))
                errorfile = str(keep)
            except OSError:
                pass
        return RunOutcome(run, False, time.perf_counter() - t0, error, errorfile, peak)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def execute_plan(plan: PipelinePlan, crds_dir, jobs: int | None = None,
                 ssblogFlag: bool = False, ssberrorlogFlag: bool = False,
                 executor: str = "processes") -> list[RunOutcome]:
    """Run every planned pipeline call as a task graph; return the outcomes in plan
    order (never raises for a run)."""
    from ..execution import TaskGraph, run_graph
    from ..execution.tasks import pipeline_tasks
    if not plan.runs:
        return []
    jobs = jobs or default_jobs()
    offline_env = offline_environment(crds_dir)       # made once, before any run starts
    graph = TaskGraph()
    for task in pipeline_tasks(plan, ssblogFlag, ssberrorlogFlag, offline_env):
        graph.add(task)
    ids = graph.order()
    done = [0]

    def on_done(tid, result):
        done[0] += 1
        status = "done" if result["ok"] else f"FAILED: {result['error']}"
        log.info("[%d/%d] %s: %s in %.1f s", done[0], len(ids), graph[tid].label, status,
                 result.get("seconds", 0.0))

    results = run_graph(graph, ids, {}, executor, jobs, on_done=on_done)
    return [RunOutcome(task.payload["run"], bool(results[task.id]["ok"]),
                       float(results[task.id].get("seconds", 0.0)),
                       results[task.id].get("error", ""), results[task.id].get("errorfile", ""),
                       float(results[task.id].get("peak_GiB", 0.0)))
            for task in graph]


def outcomes_table(outcomes: list[RunOutcome]) -> Table:
    rows = [(o.run.root, str(o.run.input), ",".join(spec_name(s) for s in o.run.to_run),
             ",".join(str(s.dest) for s in o.run.saves), "ok" if o.ok else "failed",
             round(o.seconds, 2), round(o.peak_gib, 3), o.error) for o in outcomes]
    return Table(rows=rows or None, names=("exposure", "input", "steps_run", "products",
                                          "status", "seconds", "peak_GiB", "error"),
                 dtype=(str, str, str, str, str, float, float, str))

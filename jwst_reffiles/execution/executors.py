"""Executors: where the tasks of a graph run.  Dask does the scheduling.

* ``inline``: dask's synchronous scheduler, in this process (for debugging:
  breakpoints and tracebacks work).
* ``processes`` (default): dask's multiprocessing scheduler, a local pool of
  ``jobs`` spawned processes.
* ``dask``: a ``dask.distributed`` client: a ``LocalCluster`` by default, the
  scheduler at ``dask_scheduler`` when one is given, or, with
  ``batch_enabled``, a ``dask-jobqueue`` cluster (HTCondor, SLURM, PBS, LSF,
  SGE) whose workers are batch jobs.

Every executor runs a subset of a :class:`TaskGraph` given the results of the
tasks that are already done (reused), calls ``on_start(task_id)`` when it
hands a task out and ``on_done(task_id, result)`` when a task ends, both in
this process, and returns every result.  A worker that dies fails the tasks
that had not ended; nothing is lost of those that had.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

from .graph import TaskGraph, run_node

log = logging.getLogger(__name__)

__all__ = ["EXECUTORS", "run_graph", "default_jobs", "jobqueue_cluster", "JOBQUEUE_CLASSES",
           "BatchError", "check_batch_system"]

EXECUTORS = ("inline", "processes", "dask")

#: batchmode -> dask_jobqueue cluster class
JOBQUEUE_CLASSES = {"Condor": "HTCondorCluster", "HTCondor": "HTCondorCluster",
                    "SLURM": "SLURMCluster", "PBS": "PBSCluster", "LSF": "LSFCluster",
                    "SGE": "SGECluster"}


def default_jobs(per_job_gib: float = 4.0) -> int:
    """Tasks to run at once: the cores, as far as memory allows ``per_job_gib`` each."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return cores
    return max(1, min(cores, int(mem_gib // per_job_gib)))


@contextmanager
def _kernel_threads_split(jobs: int):
    """Worker processes started inside inherit threads = cores // jobs for the
    stack-statistics kernel (unless the user set them), so that ``jobs`` workers
    do not each start a thread per core."""
    from ..stats import THREADS_ENV, kernel_threads
    if os.environ.get(THREADS_ENV):
        yield
        return
    os.environ[THREADS_ENV] = str(max(1, kernel_threads() // max(1, jobs)))
    try:
        yield
    finally:
        os.environ.pop(THREADS_ENV, None)


def _dask_graph(graph: TaskGraph, ids: list[str], given: dict[str, dict]) -> dict:
    """The legacy dask graph of the tasks ``ids``; results of other tasks come from ``given``."""
    todo = set(ids)
    dsk = {}
    for tid in ids:
        t = graph[tid]
        for d in t.deps:
            if d not in todo and d not in given:
                raise ValueError(f"task {tid} depends on {d}, which is neither run nor given")
        run_deps = [d for d in t.deps if d in todo]
        done_deps = [d for d in t.deps if d not in todo]
        # results of reused tasks are passed as data (quoted, so dask does not read them)
        dep_ids = run_deps + done_deps
        dsk[tid] = (_unquote_node, t.func, _Quoted(t.payload), t.needs_all, _Quoted(dep_ids),
                    run_deps + [_Quoted(given[d]) for d in done_deps])
    return dsk


class _Quoted:
    """Data dask must pass through untouched (not search for keys or tasks)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (_Quoted, (self.value,))


def _unquote_node(func, payload, needs_all, dep_ids, dep_results):
    _set_worker_threads()
    dep_results = [r.value if isinstance(r, _Quoted) else r for r in dep_results]
    payload = payload.value if isinstance(payload, _Quoted) else payload
    dep_ids = dep_ids.value if isinstance(dep_ids, _Quoted) else dep_ids
    return run_node(func, payload, needs_all, dep_ids, dep_results)


def _worker_death(exc) -> dict:
    return {"ok": False, "seconds": 0.0, "errorfile": "", "outputs": [],
            "error": f"not finished: the executor stopped ({type(exc).__name__}: {exc}); "
                     f"a worker process may have died (memory?)"}


def _run_local(dsk, ids, on_start, on_done, get, **kw) -> dict[str, dict]:
    from dask.callbacks import Callback
    results: dict[str, dict] = {}

    def pretask(key, dsk_, state):
        on_start(key)

    def posttask(key, result, dsk_, state, worker_id):
        results[key] = result
        on_done(key, result)

    try:
        with Callback(pretask=pretask, posttask=posttask):
            get(dsk, ids, **kw)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:        # a dead worker (BrokenProcessPool) and the like
        log.error("executor stopped: %s: %s", type(exc).__name__, exc, exc_info=True)
        for tid in ids:
            if tid not in results:
                results[tid] = _worker_death(exc)
                on_done(tid, results[tid])
    return results


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (Linux), so that no
    worker goes on writing products after mkrefs was killed (kill -9 included)."""
    import ctypes
    import signal
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):                    # not Linux: nothing to ask
        pass


def _run_processes(graph, ids, given, on_start, on_done, workers: int) -> dict[str, dict]:
    """The processes executor: dask's multiprocessing scheduler in a pool of
    ``workers`` processes that die with mkrefs.  A worker that dies (a plug-in's
    os._exit, the OOM killer) breaks the pool: the tasks it was running are run
    again one at a time in a new pool, so that only the one that kills its worker
    fails; the rest go on in a new pool."""
    import dask.multiprocessing
    from dask.callbacks import Callback
    results: dict[str, dict] = {}
    remaining = list(ids)
    alone: list[str] = []               # in flight when a pool broke: each on its own
    while remaining:
        batch = [alone.pop(0)] if alone else [t for t in remaining if t not in alone]
        n = 1 if len(batch) == 1 else min(workers, len(batch))
        started: list[str] = []

        def pretask(key, dsk_, state):
            started.append(key)
            on_start(key)

        def posttask(key, result, dsk_, state, worker_id):
            results[key] = result
            on_done(key, result)

        dsk = _dask_graph(graph, batch, {**given, **results})
        try:
            with _kernel_threads_split(n), Callback(pretask=pretask, posttask=posttask):
                dask.multiprocessing.get(dsk, batch, num_workers=n, optimize_graph=False,
                                         chunksize=1, initializer=die_with_parent)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:        # a dead worker (BrokenProcessPool) and the like
            in_flight = [t for t in started if t not in results]
            log.error("a worker process died (%s: %s) running %s", type(exc).__name__, exc,
                      ", ".join(graph[t].label for t in in_flight) or "no task",
                      exc_info=True)
            if len(batch) == 1 or len(in_flight) <= 1:
                for t in in_flight or batch[:1]:
                    results[t] = _worker_death(exc)
                    on_done(t, results[t])
            else:
                alone.extend(t for t in in_flight if t not in alone)
        remaining = [t for t in remaining if t not in results]
    return results


def _accepted_options(cls) -> set[str]:
    """Keyword arguments a dask-jobqueue cluster class (and its job class) takes."""
    import inspect
    names = set()
    for klass in [*cls.__mro__, *cls.job_cls.__mro__]:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names |= {p.name for p in inspect.signature(init).parameters.values()
                      if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return names - {"self"}


class BatchError(RuntimeError):
    """The batch system cannot run the tasks (absent, or no worker starts)."""


def _import_jobqueue():
    """dask_jobqueue, with this process's SIGINT handler put back: importing it
    installs one that calls sys.exit(), which made Ctrl-C exit 0 with no summary."""
    import signal
    saved = signal.getsignal(signal.SIGINT)
    import dask_jobqueue
    if signal.getsignal(signal.SIGINT) is not saved and saved is not None:
        signal.signal(signal.SIGINT, saved)
    return dask_jobqueue


def check_batch_system(batch: dict) -> None:
    """Refuse, in one line, a batch mode whose submit command is not here (BatchError)."""
    import shutil
    name = JOBQUEUE_CLASSES[batch["batchmode"]]
    cls = getattr(_import_jobqueue(), name)
    command = str(cls.job_cls.submit_command).split()[0]
    if shutil.which(command) is None:
        raise BatchError(
            f"batch.batchmode {batch['batchmode']}: '{command}' is not on this machine's PATH "
            f"({batch['batchmode']} is not installed or not set up here); nothing was "
            f"submitted.  Run on a submit node of the cluster, or without batch "
            f"(-p batch.batch_enabled False, or --executor processes)")


def jobqueue_cluster(batch: dict, check: bool = True):
    """The dask-jobqueue cluster of the configuration's ``batch`` section (not scaled).

    ``queue_options`` go to the cluster class; an option that class does not
    take (``walltime`` for HTCondor, ``disk`` for SLURM: the shipped defaults
    name both) is left out with a warning that names it; ``check``: the submit
    command must be on the PATH (:func:`check_batch_system`).  Each job's kernels use
    its own ``cores`` (JWST_REFFILES_THREADS in the job script), not every core
    of the node it lands on.
    """
    from ..stats import THREADS_ENV
    if check:                     # (False: only the job script is wanted)
        check_batch_system(batch)
    dask_jobqueue = _import_jobqueue()
    name = JOBQUEUE_CLASSES[batch["batchmode"]]
    cls = getattr(dask_jobqueue, name)
    options = dict(batch.get("queue_options") or {})
    prologue = list(options.get("job_script_prologue") or [])
    if not any(THREADS_ENV in str(line) for line in prologue):
        prologue.append(f"export {THREADS_ENV}={int(options.get('cores') or 1)}")
    options["job_script_prologue"] = prologue
    accepted = _accepted_options(cls)
    dropped = sorted(k for k in options if k not in accepted)
    if dropped:
        log.warning("batch.queue_options: %s not an option of %s (batchmode %s); left out",
                    ", ".join(dropped) + (" is" if len(dropped) == 1 else " are"), name,
                    batch["batchmode"])
    options = {k: v for k, v in options.items() if k in accepted}
    options.setdefault("processes", 1)   # one task at a time per worker process
    return cls(**options)


def _job_states(cluster) -> str:
    """'job 123 running, job 124 pending' for a dask-jobqueue cluster (or ''); a job
    the batch system refused has no id: 'not submitted'."""
    parts = []
    live = {w.get("name") for w in cluster.scheduler_info.get("workers", {}).values()}
    for name, job in sorted(getattr(cluster, "workers", {}).items(), key=lambda kv: str(kv[0])):
        jid = getattr(job, "job_id", None)
        if jid is None:
            command = str(getattr(job, "submit_command", "the submit command")).split()[0]
            parts.append(f"job {name} not submitted ({command} failed: see the run's log)")
        else:
            parts.append(f"job {jid} {'running' if name in live else 'pending'}")
    return ", ".join(parts)


def _distributed_failure(exc) -> dict:
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker
    if isinstance(exc, KilledWorker):
        why = (f"its worker died while running it ({exc}): out of memory, past the batch "
               f"job's walltime, or a crash; see the worker's log")
    elif isinstance(exc, (FutureCancelledError, OSError)) or "closed" in str(exc).lower():
        why = (f"the dask scheduler or cluster was lost ({type(exc).__name__}: {exc}); "
               f"the rerun does what is left")
    else:
        return _worker_death(exc)
    return {"ok": False, "seconds": 0.0, "errorfile": "", "outputs": [],
            "error": f"not finished: {why}"}


def _set_worker_threads() -> None:
    """In a dask worker that nobody told how many kernel threads to use: the cores
    this process may use over the worker's task threads."""
    from ..stats import THREADS_ENV, kernel_threads
    if os.environ.get(THREADS_ENV):
        return
    try:
        from distributed import get_worker
        worker = get_worker()
    except (ImportError, ValueError):
        return
    os.environ[THREADS_ENV] = str(max(1, kernel_threads() // max(1, worker.state.nthreads)))


def _share_cores(client) -> None:
    """Split each host's cores between the task threads of its workers (a worker
    started by hand on a node with others would otherwise take every core)."""
    from ..stats import THREADS_ENV
    info = client.scheduler_info().get("workers", {})
    per_host: dict[str, int] = {}
    for w in info.values():
        per_host[w.get("host", "")] = per_host.get(w.get("host", ""), 0) + int(w.get("nthreads", 1))
    try:
        cores = client.run(lambda: len(os.sched_getaffinity(0)) if hasattr(
            os, "sched_getaffinity") else (os.cpu_count() or 1))
    except Exception:            # workers gone meanwhile: each falls back on its own
        return
    for addr, n in cores.items():
        w = info.get(addr)
        if w is None:
            continue
        share = max(1, int(n) // max(1, per_host.get(w.get("host", ""), 1)))

        def set_env(value=str(share)):
            if not os.environ.get(THREADS_ENV):
                os.environ[THREADS_ENV] = value
        try:
            client.run(set_env, workers=[addr])
        except Exception:
            pass


def _wait_for_a_worker(client, cluster, timeout: float, what: str) -> None:
    """Wait up to ``timeout`` s for the first worker, saying what it waits for."""
    import time as _time
    t0 = _time.monotonic()
    last = ""
    while not client.scheduler_info().get("workers"):
        states = _job_states(cluster) if cluster is not None else ""
        line = f"waiting for a worker of {what}" + (f" ({states})" if states else "")
        if line != last:
            log.warning("%s; up to %.0f s (batch.worker_timeout)", line, timeout)
            last = line
        if _time.monotonic() - t0 > timeout:
            raise BatchError(f"no dask worker joined within {timeout:.0f} s (batch."
                             f"worker_timeout) from {what}" + (f": {states}" if states else "")
                             + "; nothing was run.  Check the queue and the jobs' logs "
                               "(batch.queue_options.log_directory)")
        _time.sleep(1.0)


def _run_distributed(dsk, ids, on_start, on_done, jobs, address=None, batch=None):
    import time as _time

    from distributed import Client, LocalCluster, wait
    batch = batch or {}
    timeout = float(batch.get("worker_timeout") or 600)
    cluster = None
    if address:
        client = Client(address, timeout=min(timeout, 60))
        what = f"the dask scheduler at {address}"
    elif batch.get("batch_enabled"):
        cluster = jobqueue_cluster(batch)
        cluster.scale(jobs=batch.get("jobs", 1))
        log.info("dask-jobqueue %s: %d job(s) asked for; job script:\n%s",
                 type(cluster).__name__, batch.get("jobs", 1), cluster.job_script())
        client = Client(cluster)
        what = f"{batch.get('jobs', 1)} {batch['batchmode']} batch job(s)"
    else:
        with _kernel_threads_split(jobs):
            cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        client = Client(cluster)
        what = "the local cluster"
    results: dict[str, dict] = {}
    try:
        _wait_for_a_worker(client, cluster if batch.get("batch_enabled") else None,
                           timeout, what)
        if address:
            _share_cores(client)
        if batch.get("batch_enabled"):
            log.info("batch jobs: %s", _job_states(cluster))
        futures = client.get(dsk, ids, sync=False)
        for tid in ids:
            on_start(tid)
        by_key = {f.key: tid for f, tid in zip(futures, ids)}
        rank = {f.key: i for i, f in enumerate(futures)}
        pending = set(futures)
        alone_since = None
        seen = {w.get("name") for w in client.scheduler_info().get("workers", {}).values()}
        while pending:
            try:
                done, pending = wait(pending, timeout=5.0, return_when="FIRST_COMPLETED")
            except TimeoutError:        # nothing ended in 5 s: look at the workers
                done = set()
            for fut in sorted(done, key=lambda f: rank[f.key]):     # in the graph's order
                tid = by_key[fut.key]
                try:
                    results[tid] = fut.result()
                except Exception as exc:        # KilledWorker and the like
                    results[tid] = _distributed_failure(exc)
                on_done(tid, results[tid])
            workers = {w.get("name") for w in client.scheduler_info().get("workers", {})
                       .values()}
            for name in sorted(seen - workers, key=str):
                log.warning("dask worker %s was lost%s", name,
                            f" ({_job_states(cluster)})" if batch.get("batch_enabled") else "")
            seen = workers
            if workers or not pending:
                alone_since = None
                continue
            alone_since = alone_since or _time.monotonic()
            if _time.monotonic() - alone_since > timeout:
                why = (f"not finished: no dask worker for {timeout:.0f} s (batch."
                       f"worker_timeout) from {what}; the rerun does what is left")
                for fut in pending:
                    tid = by_key[fut.key]
                    results[tid] = {"ok": False, "seconds": 0.0, "errorfile": "",
                                    "outputs": [], "error": why}
                    on_done(tid, results[tid])
                client.cancel(list(pending))
                pending = set()
    finally:
        client.close()
        if cluster is not None:
            try:
                cluster.close()     # cancels the batch jobs
            except Exception as exc:  # a cluster whose jobs were never submitted
                log.debug("closing the dask cluster: %s: %s", type(exc).__name__, exc)
    return results


def run_graph(graph: TaskGraph, ids: list[str], given: dict[str, dict], executor: str,
              jobs: int, on_start=None, on_done=None, dask_scheduler: str | None = None,
              batch: dict | None = None) -> dict[str, dict]:
    """Run the tasks ``ids`` of ``graph`` (see the module docstring)."""
    on_start = on_start or (lambda tid: None)
    on_done = on_done or (lambda tid, result: None)
    if not ids:
        return {}
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r} (known: {', '.join(EXECUTORS)})")
    dsk = _dask_graph(graph, ids, given)
    if executor == "inline":
        from dask.local import get_sync
        return _run_local(dsk, ids, on_start, on_done, get_sync)
    if executor == "processes":
        if jobs <= 1:
            from dask.local import get_sync
            return _run_local(dsk, ids, on_start, on_done, get_sync)
        return _run_processes(graph, ids, given, on_start, on_done, min(jobs, len(ids)))
    return _run_distributed(dsk, ids, on_start, on_done, jobs, address=dask_scheduler,
                            batch=batch)

"""A run: stage 1b to 3 as one task graph, resumed from the run state.

:func:`prepare` plans the pipeline runs, builds the graph and decides, with
the run state, which tasks are done already (reused) and which run:

* a task runs when its stage is forced (``force_redo``), when a task it
  depends on runs, or when the state has no finished record of it with the
  same fingerprint and its products intact;
* a pipeline product found on disk is not reused when the state knows it
  was made from inputs that changed since, or from a reference file this
  run makes again (SELF); the plan is then made again without it.

:func:`execute` runs the tasks with the chosen executor, recording every
start and end in the state, shows progress, and writes the tables
(``pipeline_runs.ecsv``, ``reffiles.ecsv``, ``final_reffiles.ecsv``).
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from astropy.table import Table

from ..tables import write_merged
from .executors import run_graph
from .graph import STAGES, TaskGraph
from .tasks import build_graph

log = logging.getLogger(__name__)

__all__ = ["Job", "prepare", "execute", "self_references", "force_stages",
           "format_summary", "NOT_DONE"]

#: Task statuses that leave the run incomplete (exit status 1).
NOT_DONE = ("failed", "skipped", "timed out", "interrupted")


@dataclass
class Job:
    s1: object
    plan: object
    graph: TaskGraph
    to_run: list[str]                       # in order
    reused: dict[str, dict]                 # task id -> recorded result
    results: dict[str, dict] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)   # made/reused/failed/skipped
    state: object = None

    def planned_status(self) -> dict[str, str]:
        return {tid: ("reuse" if tid in self.reused else "run") for tid in self.graph.order()}

    def result(self, tid: str) -> dict:
        return self.results.get(tid) or self.reused.get(tid) or {}


def force_stages(values) -> set[str]:
    """The stages named by force_redo values (``all`` = every stage)."""
    out = set()
    for v in values or []:
        out |= set(STAGES) if v == "all" else {v}
    return out


def self_references(s1) -> dict[str, str]:
    """Reference type -> this run's final file of it, for reffile4ssb SELF.

    When several requested reflabels make one reference type, the one
    default_reflabels names for it is taken; if none is named, the type is
    left out (SELF for it is then an error that says so).
    """
    from ..pipeline.plan import normalize_reftype
    cfg = s1.config
    makers: dict[str, list[str]] = {}
    for label in s1.reflabels:
        makers.setdefault(normalize_reftype(cfg.module(label)["reftype"]), []).append(label)
    defaults = {normalize_reftype(k): v for k, v in cfg["default_reflabels"].items()}
    out = {}
    for rt, labels in makers.items():
        label = labels[0] if len(labels) == 1 else (
            defaults[rt] if defaults.get(rt) in labels else None)
        if not label:
            continue
        reftype = cfg.module(label)["reftype"]
        parts = {g.final_part(reftype) for g in s1.groupings[label].groups}
        if len(parts) > 1:          # one file per detector/subarray: SELF names none of them
            log.warning("reffile4ssb SELF for %s: %s makes %d final files (%s), one per "
                        "detector, subarray and readout; give the file instead", rt, label,
                        len(parts), ", ".join(sorted(parts)))
            continue
        out[rt] = str(s1.layout.final_path(label, reftype))
    return out


def _decide(graph: TaskGraph, state, forced: set[str]):
    """(ids to run in order, reused id -> recorded result)."""
    to_run, reused = [], {}
    for tid in graph.order():
        t = graph[tid]
        if t.stage in forced or state is None or any(d in to_run for d in t.deps):
            to_run.append(tid)
            continue
        rec = state.reusable(tid, state.fingerprint(t.fp_data, t.inputs))
        if rec is None:
            to_run.append(tid)
        else:
            reused[tid] = {**rec["result"], "ok": True}
    return to_run, reused


def _stale_products(plan, graph: TaskGraph, to_run: list[str], state) -> set[str]:
    """Products the plan reuses that the state knows to be out of date."""
    if state is None:
        return set()
    rewritten = {o for tid in to_run for o in graph[tid].outputs}
    stale = set()
    for _root, path in plan.reused:
        producer = state.producer(path)
        rec = state.record(producer) if producer else None
        if rec is None:
            continue            # found, not made by this run: taken as it is
        inputs = rec["spec"].get("inputs", [])
        if (rec["status"] != "done" or any(i in rewritten for i in inputs)
                or state.fingerprint(rec["spec"].get("fp", {}), inputs) != rec["fingerprint"]):
            stale.add(str(path))
    return stale


def prepare(s1, plugins, combiners, state=None, force_redo=(), offline_env=None) -> Job:
    """Plan, build the graph and decide what runs (see the module docstring)."""
    from ..pipeline.plan import plan_pipeline
    forced = force_stages(force_redo)
    self_refs = self_references(s1)
    exclude: set[str] = set()
    for _ in range(10):
        plan = plan_pipeline(s1, self_refs=self_refs, exclude=exclude,
                             reuse="pipeline" not in forced, write_refs=state is not None,
                             checksum=state.checksum if state is not None else None)
        graph = build_graph(s1, plan, plugins, combiners, offline_env or {})
        to_run, reused = _decide(graph, state, forced)
        stale = _stale_products(plan, graph, to_run, state) - exclude
        if not stale:
            break
        log.info("%d pipeline product(s) are out of date and are made again: %s",
                 len(stale), ", ".join(Path(p).name for p in sorted(stale)))
        exclude |= stale
    return Job(s1=s1, plan=plan, graph=graph, to_run=to_run, reused=reused, state=state)


class _Progress:
    """A bar per stage on a terminal; log lines otherwise (and always in the log file)."""

    def __init__(self, job: Job, enabled: bool):
        self.job = job
        self.totals = {s: sum(1 for t in job.graph if t.stage == s) for s in STAGES}
        self.done = {s: sum(1 for tid in job.reused if job.graph[tid].stage == s)
                     for s in STAGES}
        self.bars = {}
        if enabled:
            import shutil
            from tqdm import tqdm
            # a terminal that reports no size (0 x 0) would make tqdm hide every bar
            size = shutil.get_terminal_size()
            for k, s in enumerate(s for s in STAGES if self.totals[s]):
                self.bars[s] = tqdm(total=self.totals[s], initial=self.done[s], desc=f"{s:<10}",
                                    position=k, leave=True, file=sys.stderr, unit="task",
                                    ncols=min(size.columns, 100),
                                    nrows=max(size.lines, len(STAGES) + 1))

    def update(self, tid: str, result: dict) -> None:
        t = self.job.graph[tid]
        self.done[t.stage] += 1
        n, total = self.done[t.stage], self.totals[t.stage]
        if result.get("ok"):
            log.info("%s %d/%d: %s done (%.1f s, peak %.2f GiB)", t.stage, n, total, t.label,
                     result.get("seconds", 0.0), result.get("peak_GiB", 0.0))
        elif result.get("skipped"):
            log.warning("%s %d/%d: %s skipped: %s", t.stage, n, total, t.label,
                        result.get("error"))
        else:
            log.error("%s %d/%d: %s FAILED: %s", t.stage, n, total, t.label,
                      result.get("error"))
        bar = self.bars.get(t.stage)
        if bar is not None:
            bar.update(1)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def execute(job: Job, executor: str = "processes", jobs: int = 1, progress: bool | None = None,
            dask_scheduler: str | None = None, batch: dict | None = None) -> Job:
    """Run the tasks of ``job`` that are not reused; record them; write the tables."""
    state, graph = job.state, job.graph
    if progress is None:
        progress = sys.stderr.isatty()
    bars = _Progress(job, progress)

    def on_start(tid):
        if state is not None:
            t = graph[tid]
            state.started(tid, t.stage, t.label, t.spec())

    def on_done(tid, result):
        t = graph[tid]
        if state is not None:
            fp = state.fingerprint(t.fp_data, t.inputs) if result.get("ok") else None
            state.finished(tid, result, fp)
        job.results[tid] = result
        bars.update(tid, result)

    for tid in job.reused:
        job.status[tid] = "reused"
        log.debug("reused: %s", graph[tid].label)
    t0 = time.perf_counter()
    interrupted = False
    try:
        run_graph(graph, job.to_run, job.reused, executor, jobs, on_start=on_start,
                  on_done=on_done, dask_scheduler=dask_scheduler, batch=batch)
    except KeyboardInterrupt:          # Ctrl-C or SIGTERM: what finished is kept
        interrupted = True
    finally:
        bars.close()
    for tid in job.to_run:
        r = job.results.get(tid)
        if r is None and interrupted:
            job.results[tid] = {"ok": False, "error": "interrupted before it finished"}
            job.status[tid] = "interrupted"
            continue
        r = r or {}
        job.status[tid] = ("made" if r.get("ok") else "skipped" if r.get("skipped")
                           else "timed out" if r.get("timed_out") else "failed")
    log.info("tasks ran in %.1f s with the %s executor%s", time.perf_counter() - t0, executor,
             " (interrupted)" if interrupted else "")
    write_tables(job)
    if interrupted:
        raise KeyboardInterrupt
    return job


def _table(rows, names, dtypes) -> Table:
    return Table(rows=rows or None, names=names, dtype=dtypes)


def write_tables(job: Job) -> None:
    """pipeline_runs.ecsv, reffiles.ecsv and final_reffiles.ecsv in the run directory."""
    from ..pipeline.steps import spec_name
    rundir = job.s1.layout.rundir
    g = job.graph
    rows = []
    for tid in g.order():
        t = g[tid]
        r, st = job.result(tid), job.status.get(tid, "")
        if t.stage == "pipeline":
            run = t.payload["run"]
            rows.append((run.root, str(run.input), ",".join(spec_name(s) for s in run.to_run),
                         ",".join(str(s.dest) for s in run.saves), st,
                         round(float(r.get("seconds", 0.0)), 2),
                         round(float(r.get("peak_GiB", 0.0)), 3), r.get("error", "")))
    runs = _table(rows, ("exposure", "input", "steps_run", "products", "status", "seconds",
                         "peak_GiB", "error"), (str, str, str, str, str, float, float, str))
    # rows of earlier calls into this run directory are kept (see jwst_reffiles.tables)
    write_merged(rundir / "pipeline_runs.ecsv", runs, "products")
    for stage, name in (("individual", "reffiles.ecsv"), ("final", "final_reffiles.ecsv")):
        rows = []
        for tid in g.order():
            t = g[tid]
            if t.stage != stage:
                continue
            r, st = job.result(tid), job.status.get(tid, "")
            p = t.payload
            # every file the task reads: an individual file's products with their
            # companions (jump, fitopt, ...), a final file's individual files
            inputs = r.get("inputs", []) if stage == "final" else t.inputs
            rows.append((p["reflabel"], p.get("cmdID", ""), p["reftype"], st,
                         p["output"] if r.get("ok") else "",
                         round(float(r.get("seconds", 0.0)), 2),
                         round(float(r.get("peak_GiB", 0.0)), 3), r.get("error", ""),
                         r.get("errorfile", ""), ",".join(inputs)))
        table = _table(rows, ("reflabel", "cmdID", "reftype", "status", "output", "seconds",
                              "peak_GiB", "error", "errorfile", "inputs"),
                       (str, str, str, str, str, float, float, str, str, str))
        write_merged(rundir / name, table, "reflabel", replaced=job.s1.reflabels)


def format_summary(job: Job, logfile=None) -> str:
    """The table at the end of a run: made / reused / failed / skipped per stage,
    the final files, and where to look for what failed."""
    g = job.graph
    lines = [f"{'stage':<12}{'tasks':>6}{'made':>6}{'reused':>8}{'failed':>8}{'skipped':>9}"]
    for stage in STAGES:
        ids = [t.id for t in g if t.stage == stage]
        if not ids:
            continue
        c = {k: sum(1 for i in ids if job.status.get(i) == k)
             for k in ("made", "reused", "failed", "skipped")}
        lines.append(f"{stage:<12}{len(ids):>6}{c['made']:>6}{c['reused']:>8}{c['failed']:>8}"
                     f"{c['skipped']:>9}")
    if job.plan.reused:
        lines.append(f"(and {len(job.plan.reused)} pipeline product(s) found on disk, reused "
                     f"without a task)")
    lines.append("")
    lines.append("Final reference files:")
    for t in g:
        if t.stage != "final":
            continue
        r, st = job.result(t.id), job.status.get(t.id)
        p = t.payload
        if r.get("ok"):
            n = len(r.get("inputs", []))
            lines.append(f"  {p['reflabel']:<20} {p['output']}  ({st}; {p['combiner_name']} "
                         f"of {n} of {p['n_groups']} group(s))")
        else:
            lines.append(f"  {p['reflabel']:<20} NOT MADE: {r.get('error', 'not run')}")
    problems = [t for t in g if job.status.get(t.id) in NOT_DONE]
    if problems:
        lines.append("")
        lines.append("Not done:")
        for t in problems:
            r = job.result(t.id)
            lines.append(f"  {job.status[t.id].upper():<8}{t.label}: {r.get('error', '')}")
            if r.get("errorfile"):
                lines.append(f"  {'':<8}traceback: {r['errorfile']}")
    where = [str(job.s1.layout.rundir / n) for n in ("pipeline_runs.ecsv", "reffiles.ecsv",
                                                     "final_reffiles.ecsv")]
    if job.state is not None:
        where.append(str(job.state.path))
    if logfile:
        where.append(str(logfile))
    lines.append("")
    lines.append("Details: " + ", ".join(where))
    return "\n".join(lines)

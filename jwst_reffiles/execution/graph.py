"""The task graph: every unit of work with its inputs, outputs and dependencies.

A :class:`Task` is one pipeline run, one individual reference file or one
combination into a final file.  It names a module-level function (so that any
executor can run it in another process or on another machine), the payload
handed to it, the files it reads and writes, and the tasks it waits for.  The
graph orders the tasks (a pipeline run that calibrates with a reference file
this run makes (SELF) after the task that makes it) and refuses cycles.

A task function is called as ``func(payload, deps)`` where ``deps`` maps the
id of each task it depends on to that task's result; it returns a result
dict: ``ok``, ``seconds``, ``error``, ``errorfile``, ``outputs`` (the files it
wrote, complete and in place) and ``peak_GiB`` (the peak resident memory of its
process while it ran: measured here unless the task measured its own, as a
pipeline run in a process of its own does).  :func:`run_node` wraps every call: a task
whose dependencies failed is skipped (unless it accepts partial inputs, as a
combination does), and an exception becomes a failed result, so that one
task's failure never stops the others.
"""

from __future__ import annotations

import graphlib
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from .resources import peak_memory_gib, reset_peak_memory

__all__ = ["Task", "TaskGraph", "GraphError", "run_node", "failure_result", "STAGES"]

#: The stages, in order; every task belongs to one.
STAGES = ("pipeline", "individual", "final")


class GraphError(ValueError):
    """The tasks cannot be ordered (a cycle) or refer to unknown tasks."""


@dataclass
class Task:
    id: str                     # stable across reruns of the same work
    stage: str                  # one of STAGES
    label: str                  # for people: "readnoise 3f2a9c1d", "NRCA1_dark_0001"
    func: Callable              # module-level: func(payload, deps) -> result dict
    payload: Any                # picklable
    fp_data: dict               # what the task is asked to do (JSON-able), for its fingerprint
    inputs: list[str] = field(default_factory=list)    # files it reads
    outputs: list[str] = field(default_factory=list)   # files it writes
    deps: list[str] = field(default_factory=list)      # ids of the tasks it waits for
    needs_all: bool = True      # False: runs even when some dependencies failed

    def spec(self) -> dict:
        return {"fp": self.fp_data, "inputs": self.inputs, "outputs": self.outputs,
                "deps": self.deps}


class TaskGraph:
    """Tasks by id, in insertion order, with their dependencies."""

    def __init__(self):
        self.tasks: dict[str, Task] = {}

    def add(self, task: Task) -> Task:
        if task.id in self.tasks:
            raise GraphError(f"two tasks with the id {task.id}")
        if task.stage not in STAGES:
            raise GraphError(f"task {task.id}: unknown stage {task.stage!r}")
        self.tasks[task.id] = task
        return task

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.tasks.values())

    def __getitem__(self, task_id: str) -> Task:
        return self.tasks[task_id]

    def order(self) -> list[str]:
        """Task ids with every task after its dependencies (stable: stage, then insertion)."""
        unknown = [(t.id, d) for t in self for d in t.deps if d not in self.tasks]
        if unknown:
            raise GraphError("tasks depend on tasks that are not in the graph: "
                             + ", ".join(f"{t} -> {d}" for t, d in unknown))
        sorter = graphlib.TopologicalSorter({t.id: t.deps for t in self})
        rank = {t.id: (STAGES.index(t.stage), k) for k, t in enumerate(self)}
        try:
            sorter.prepare()
        except graphlib.CycleError as exc:
            cycle = exc.args[1]
            raise GraphError(
                "circular dependency: " + " -> ".join(self.tasks[c].label for c in cycle)
                + " (a module calibrates its inputs with a reference file (SELF) that "
                  "depends on those inputs; give that reference file as a file or CRDS in "
                  "reffile4ssb)") from None
        ordered = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=rank.__getitem__)
            ordered.extend(ready)
            sorter.done(*ready)
        return ordered

    def dependents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {tid: [] for tid in self.tasks}
        for t in self:
            for d in t.deps:
                out[d].append(t.id)
        return out

    def producers(self) -> dict[str, str]:
        """Output path -> id of the task that writes it."""
        return {o: t.id for t in self for o in t.outputs}

    def format(self, status: dict[str, str] | None = None, root=None) -> str:
        """The graph for people: each task, what it waits for and what it writes."""
        status = status or {}
        lines = [f"Task graph: {len(self)} task(s)"]
        for stage in STAGES:
            ids = [tid for tid in self.order() if self.tasks[tid].stage == stage]
            if not ids:
                continue
            lines.append(f"  {stage}: {len(ids)}")
            for tid in ids:
                t = self.tasks[tid]
                state = f" [{status[tid]}]" if tid in status else ""
                lines.append(f"    {t.label}{state}")
                if t.deps:
                    lines.append("      after: " + ", ".join(self.tasks[d].label for d in t.deps))
                for o in t.outputs[:1]:
                    shown = o
                    if root is not None:
                        try:
                            from pathlib import Path
                            shown = str(Path(o).relative_to(root))
                        except ValueError:
                            pass
                    more = f" (+{len(t.outputs) - 1})" if len(t.outputs) > 1 else ""
                    lines.append(f"      writes: {shown}{more}")
        return "\n".join(lines)


def failure_result(exc: BaseException, seconds: float = 0.0, errorfile: str = "") -> dict:
    return {"ok": False, "seconds": seconds, "error": f"{type(exc).__name__}: {exc}",
            "errorfile": errorfile, "outputs": [],
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def run_node(func, payload, needs_all: bool, dep_ids: list[str], dep_results: list[dict]):
    """Run one task where the executor put it (see the module docstring); never raises."""
    deps = dict(zip(dep_ids, dep_results))
    if needs_all:
        bad = [d for d, r in deps.items() if not r.get("ok")]
        if bad:
            return {"ok": False, "skipped": True, "seconds": 0.0, "errorfile": "",
                    "outputs": [], "error": "not run: " + ", ".join(bad) + " did not succeed"}
    t0 = time.perf_counter()
    reset_peak_memory()
    try:
        result = func(payload, deps)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:       # whatever a task raises is its failure only
        result = failure_result(exc, time.perf_counter() - t0)
    if isinstance(result, dict) and "peak_GiB" not in result:
        result["peak_GiB"] = round(peak_memory_gib(), 3)
    return result

"""The tasks of a run: pipeline runs, individual reference files, final ones.

:func:`build_graph` turns a stage-1 result, its pipeline plan and the
resolved plug-ins and combiners into a :class:`TaskGraph`:

* one ``pipeline`` task per planned calwebb_detector1 run (products reused by
  the plan are not tasks);
* one ``individual`` task per (reflabel, group), after the pipeline runs that
  make its images;
* one ``final`` task per reflabel, after its individual tasks; it combines
  those that succeeded (``needs_all=False``);
* a pipeline run that calibrates with a reference file this run makes (SELF)
  waits for the final task that writes it.

The task functions (``*_node``) are module-level so that every executor can
call them in another process.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .graph import Task, TaskGraph

__all__ = ["build_graph", "pipeline_tasks", "pipeline_node", "individual_node", "final_node", "short_hash"]


def short_hash(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:10]


# --------------------------------------------------------------------------
# task functions
# --------------------------------------------------------------------------

def pipeline_node(payload: dict, deps: dict) -> dict:
    """One calwebb_detector1 run (in a process of its own, see pipeline.run)."""
    from ..pipeline.run import _execute_one
    run = payload["run"]
    outcome = _execute_one(run, Path(payload["ssbdir"]), payload["offline_env"],
                           payload["logflag"], payload["errflag"], payload.get("timeout"))
    outputs = []
    if outcome.ok:
        for s in run.saves:
            outputs.append(str(s.dest))
            outputs.extend(str(p) for p in s.companions.values())
    return {"ok": outcome.ok, "seconds": outcome.seconds, "error": outcome.error,
            "errorfile": outcome.errorfile, "outputs": outputs,
            "timed_out": outcome.error.startswith("timed out"), "peak_GiB": outcome.peak_gib}


def individual_node(payload: dict, deps: dict) -> dict:
    """One plug-in call for one group (skipped where the plan left a member out)."""
    from ..stage2 import run_individual
    if payload.get("skip"):
        return {"ok": False, "skipped": True, "seconds": 0.0, "errorfile": "", "outputs": [],
                "error": f"not run: {payload['skip']}"}
    result = run_individual(payload)
    result["outputs"] = ([payload["output"]] + list(result.get("side_files", []))
                         if result["ok"] else [])
    return result


def final_node(payload: dict, deps: dict) -> dict:
    """Combine the individual files of one reflabel that were made."""
    from ..stage2 import run_final
    made = [c for c in payload["candidates"] if deps.get(c["task"], {}).get("ok")]
    failed = [c["cmdID"] for c in payload["candidates"] if not deps.get(c["task"], {}).get("ok")]
    history = [c["history"] for c in made]
    if failed:
        history.append(f"{len(failed)} group(s) failed and are not included: "
                       + ", ".join(failed))
    task = {**payload, "inputs": [c["output"] for c in made], "history": history}
    result = run_final(task)
    result["inputs"] = task["inputs"]
    result["outputs"] = [payload["output"]] if result["ok"] else []
    return result


# --------------------------------------------------------------------------
# the graph
# --------------------------------------------------------------------------

def _ref_files(run) -> list[str]:
    return sorted(run.ref_files.values())


def pipeline_tasks(plan, logflag: bool, errflag: bool, offline_env: dict,
                   timeout: float | None = None) -> list[Task]:
    """One task per planned pipeline run."""
    from ..pipeline.steps import spec_name
    tasks = []
    for run in plan.runs:
        fp = {"kind": "pipeline", "input": str(run.input), "done": list(run.done),
              "steps": list(run.steps), "refs": dict(sorted(run.refs.items())),
              "saves": [str(s.dest) for s in run.saves]}
        outputs = [str(s.dest) for s in run.saves] + [
            str(p) for s in run.saves for p in s.companions.values()]
        tasks.append(Task(
            id=f"pipeline:{run.root}:{short_hash(fp)}", stage="pipeline",
            label=f"pipeline {run.root} ({', '.join(spec_name(s) for s in run.to_run)})",
            func=pipeline_node,
            payload={"run": run, "ssbdir": str(plan.ssbdir), "offline_env": offline_env,
                     "logflag": logflag, "errflag": errflag, "timeout": timeout},
            fp_data=fp, inputs=[str(run.input)] + _ref_files(run), outputs=outputs))
    return tasks


def build_graph(s1, plan, plugins: dict, combiners: dict, offline_env: dict) -> TaskGraph:
    """The task graph of a run (see the module docstring)."""
    from ..combine import combination_name
    from ..pipeline.plan import normalize_reftype as _norm
    from ..stage2 import individual_tasks
    graph = TaskGraph()
    out = s1.config["output"]
    for task in pipeline_tasks(plan, out["ssblogFlag"], out["ssberrorlogFlag"], offline_env,
                               s1.config["execution"]["task_timeout"]):
        graph.add(task)
    if plugins is None:          # a dry run without the plug-ins: the pipeline runs only
        return graph

    by_label: dict[str, list[Task]] = {}
    for payload in individual_tasks(s1, plan, plugins):
        reads = []
        for img in payload["images"]:
            for k, v in img.items():
                if k in ("label", "imtype", "MJD", "input_name"):
                    continue
                reads.append(str(v))
        fp = {"kind": "individual", "plugin": payload["plugin"],
              "reftype": payload["reftype"], "parameters": payload["parameters"],
              "images": payload["images"], "output": payload["output"]}
        task = graph.add(Task(
            id=f"individual:{payload['reflabel']}:{payload['cmdID']}", stage="individual",
            label=f"{payload['reflabel']} {payload['cmdID']}", func=individual_node,
            payload=payload, fp_data=fp, inputs=sorted(set(reads)),
            outputs=[payload["output"]]))
        by_label.setdefault(payload["reflabel"], []).append(task)

    cfg, layout = s1.config, s1.layout
    for label in s1.reflabels:
        section = cfg.module(label)
        comb = combiners[label]
        # one final file per detector / subarray / readout among the reflabel's groups:
        # files of other detectors or shapes never combine into one
        parts: dict[str, list[Task]] = {}
        for grp in s1.groupings[label].groups:
            parts.setdefault(grp.final_part(section["reftype"]), [])
        for t in by_label.get(label, []):
            parts.setdefault(t.payload["final_part"], []).append(t)
        for part, mine in parts.items():
            named = part if len(parts) > 1 else None
            candidates = [{"task": t.id, "output": t.payload["output"],
                           "cmdID": t.payload["cmdID"],
                           "history": f"{Path(t.payload['output']).name} made by {label} from "
                                      + ", ".join(os.path.basename(i["input_name"])
                                                  for i in t.payload["images"])}
                          for t in mine]
            payload = {"kind": "final", "reflabel": label, "reftype": section["reftype"],
                       "combiner": comb if isinstance(comb, str) else comb.ref,
                       "combiner_name": (combination_name(_norm(section["reftype"]), comb)
                                         if isinstance(comb, str) else comb.cls.name),
                       "settings": cfg.combine_settings(label), "candidates": candidates,
                       "n_groups": len(mine), "part": named or "",
                       "output": str(layout.final_path(label, section["reftype"], named))}
            fp = {k: v for k, v in payload.items() if k != "combiner_name"}
            graph.add(Task(
                id=f"final:{label}" + (f":{named}" if named else ""), stage="final",
                label=f"{label} final" + (f" {named}" if named else ""), func=final_node,
                payload=payload, fp_data=fp, inputs=[t.payload["output"] for t in mine],
                outputs=[payload["output"]], deps=[t.id for t in mine], needs_all=False))

    # pipeline runs wait for the tasks that write their reference files (SELF), and
    # individual tasks for the runs that write their images
    producers = graph.producers()
    for t in graph:
        for path in t.inputs:
            p = producers.get(path)
            if p and p != t.id and p not in t.deps:
                t.deps.append(p)
    return graph

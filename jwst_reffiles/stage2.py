"""Stages 2 and 3: individual reference files from the groups, final ones from those.

Stage 2 calls the plug-in of every requested reflabel once per group, with the
group's calibrated products (``inputimages``) and the output name the layout
gives (the spec's pattern).  Stage 3 combines the individual files of each
reflabel into its final reference file with the combiner its configuration
names (a built-in one or a combiner plug-in).

Every call is a *task* of the run's graph (:mod:`jwst_reffiles.execution`):
a plain dict (picklable, so that any executor can run it in another process)
handed to :func:`run_individual` or :func:`run_final`, which never raise: a
failure is returned, with its message, and its traceback is kept next to
where the output would have been (``<output>.error.txt``).

A plug-in writes into a private temporary directory beside its destination;
only when it succeeded and its file opens as the data model of its reference
type are the files moved into place (the reference file last), so a reader
never finds a half-written or invalid reference file under the final name.

The outcomes are written to ``reffiles.ecsv`` and ``final_reffiles.ecsv`` in
the run directory (by :func:`jwst_reffiles.execution.job.write_tables`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import traceback
from pathlib import Path

from .reffile import REFTYPES, atomic_write

log = logging.getLogger(__name__)

__all__ = ["StageError", "resolve_modules", "individual_tasks", "run_individual", "run_final",
           "check_reference_file"]


class StageError(ValueError):
    """The requested reflabels cannot be made (no plug-in, unknown combiner...)."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(problems[0] if len(problems) == 1 else
                         "cannot make the reference files:\n"
                         + "\n".join(f"  - {p}" for p in problems))


def _norm_reftype(reftype: str) -> str:
    from .pipeline.plan import normalize_reftype
    return normalize_reftype(reftype)


def resolve_modules(config, reflabels):
    """The plug-in of every reflabel and the combiner of each, checked up front.

    Returns (plugins, combiners): reflabel -> PluginInfo, reflabel -> combiner
    (a built-in name, or a PluginInfo).  Raises StageError listing every
    reflabel without a plug-in (with what was found), a reftype that differs
    between the configuration and the plug-in, and unknown combiners.
    """
    from .combine import BUILTIN_COMBINERS
    from .plugins import PluginError
    from .plugins.registry import discover
    try:
        found, combiners = discover(config["plugin_dirs"])
    except PluginError as exc:
        raise StageError([str(exc)]) from None
    problems, plugins, chosen = [], {}, {}
    for label in reflabels:
        info = found.get(label)
        if info is None:
            problems.append(
                f"no plug-in for reflabel '{label}' (configured in "
                f"{config.cfgfile or 'the defaults'}); plug-ins found: "
                f"{', '.join(sorted(found)) or 'none'} (mkrefs --list-plugins shows where "
                f"from; add a directory of mkref_*.py files to plugin_dirs)")
            continue
        section = config.module(label)
        config.check_module(label, info.cls)        # ConfigError for a wrong value
        if _norm_reftype(section["reftype"]) != _norm_reftype(info.reftype):
            problems.append(f"reflabel '{label}': the configuration says reftype "
                            f"'{section['reftype']}', its plug-in ({info.source}) makes "
                            f"'{info.reftype}'")
        plugins[label] = info
        name = config.combine_settings(label)["combiner"]
        if name in BUILTIN_COMBINERS:
            chosen[label] = name
        elif name in combiners:
            chosen[label] = combiners[name]
        else:
            problems.append(f"reflabel '{label}': unknown combiner '{name}' (built-in: "
                            f"{', '.join(BUILTIN_COMBINERS)}; combiner plug-ins: "
                            f"{', '.join(sorted(combiners)) or 'none'})")
    if problems:
        raise StageError(problems)
    return plugins, chosen


# --------------------------------------------------------------------------
# stage 2: individual reference files
# --------------------------------------------------------------------------

def individual_tasks(s1, plan, plugins) -> list[dict]:
    """One task per (reflabel, group): the plug-in, its images, parameters and output."""
    cfg, layout = s1.config, s1.layout
    rows = {int(r["fileID"]): r for r in s1.catalog.table}
    tasks = []
    for label in s1.reflabels:
        section = cfg.module(label)
        info = plugins[label]
        for grp in s1.groupings[label].groups:
            images = []
            for m in grp.members:
                prod = plan.products.get((label, grp.cmdID, m.label), {})
                row = {"label": m.label, "imtype": str(rows[m.fileID]["imtype"]),
                       "MJD": float(m.MJD), "input_name": str(rows[m.fileID]["filename"]),
                       "output_name": str(prod.get("product", rows[m.fileID]["filename"]))}
                for k, v in prod.items():
                    if k != "product":
                        row[k] = str(v)
                images.append(row)
            skip = [plan.skipped[(label, grp.cmdID, m.label)] for m in grp.members
                    if (label, grp.cmdID, m.label) in plan.skipped]
            tasks.append({
                "kind": "individual", "reflabel": label, "reftype": section["reftype"],
                "cmdID": grp.cmdID, "plugin": info.ref, "skip": "; ".join(skip),
                "timeout": section.get("timeout") or cfg["execution"]["task_timeout"],
                "final_part": grp.final_part(section["reftype"]),
                "parameters": cfg.module_parameters(label), "images": images,
                "output": str(layout.reffile_path(label, grp.cmdID, section["reftype"])),
            })
    return tasks


def _images_table(images: list[dict]):
    from .plugins.base import images_table
    extra_names = [k for k in images[0] if k not in
                   ("label", "imtype", "MJD", "input_name", "output_name")]
    return images_table([i["output_name"] for i in images],
                        labels=[i["label"] for i in images],
                        imtypes=[i["imtype"] for i in images],
                        mjds=[i["MJD"] for i in images],
                        inputs=[i["input_name"] for i in images],
                        extra={k: [i.get(k, "") for i in images] for k in extra_names})


def check_reference_file(path, reftype: str) -> None:
    """The file must open as the data model of its reference type and validate."""
    from stdatamodels.jwst import datamodels as dm
    name = REFTYPES.get(_norm_reftype(reftype))
    with dm.open(str(path)) as model:
        if name and type(model).__name__ != name and not (
                name == "DarkModel" and type(model).__name__ == "DarkMIRIModel"):
            raise ValueError(f"{path} opens as {type(model).__name__}, not the {name} of a "
                             f"{reftype} reference file")
        model.validate()


def _move_into_place(tmpdir: Path, final: Path) -> list[str]:
    """Move the files a plug-in wrote into final's directory, the reference file last."""
    moved = []
    for p in sorted(tmpdir.rglob("*")):
        if p.is_file() and p.name != final.name:
            dest = final.parent / p.relative_to(tmpdir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(p, dest)
            moved.append(str(dest))
    os.replace(tmpdir / final.name, final)
    return moved


def _write_in_private_dir(final: Path, reftype: str, write) -> list[str]:
    """Call ``write(tmp_path)`` in a private temporary directory beside ``final``;
    when the file opens as its reftype's model, move it (and any side products)
    into place.  Returns the side products moved; the directory never remains."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        write(tmpdir / final.name)
        check_reference_file(tmpdir / final.name, reftype)
        return _move_into_place(tmpdir, final)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _failure(task, t0, exc) -> dict:
    out = Path(task["output"])
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    errfile = out.with_name(out.name + ".error.txt")
    try:
        atomic_write(errfile, lambda tmp: Path(tmp).write_text(text))
    except OSError:
        errfile = None
    return {"ok": False, "seconds": time.perf_counter() - t0,
            "error": f"{type(exc).__name__}: {exc}", "errorfile": str(errfile or ""),
            "side_files": []}


class TaskTimeout(Exception):
    """A plug-in ran past its time limit."""


@contextlib.contextmanager
def time_limit(seconds):
    """Raise TaskTimeout in this block after ``seconds`` (None: no limit).  Only in a
    process's main thread (the inline and processes executors run tasks there); a
    dask.distributed worker's task threads get no limit here."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TaskTimeout(f"timed out: the plug-in ran past its time limit of {seconds:g} s "
                          f"(the module's 'timeout', or execution.task_timeout)")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_individual(task: dict) -> dict:
    """Run one plug-in call (never raises; see the module docstring)."""
    from .plugins.registry import load_plugin_class
    t0 = time.perf_counter()
    final = Path(task["output"])
    try:
        cls = load_plugin_class(task["plugin"])
        with time_limit(task.get("timeout")):
            side = _write_in_private_dir(final, task["reftype"], lambda tmp: cls(
                _images_table(task["images"]), str(tmp), task["parameters"]).run())
        stale = final.with_name(final.name + ".error.txt")
        if stale.exists():
            stale.unlink()
        return {"ok": True, "seconds": time.perf_counter() - t0, "error": "", "errorfile": "",
                "side_files": side}
    except BaseException as exc:       # a plug-in's own error, whatever it is
        if isinstance(exc, KeyboardInterrupt):
            raise
        result = _failure(task, t0, exc)
        if isinstance(exc, TaskTimeout):
            result.update(timed_out=True, error=str(exc))
        return result


# --------------------------------------------------------------------------
# stage 3: final reference files
# --------------------------------------------------------------------------

def run_final(task: dict) -> dict:
    """Combine one reflabel's individual files (never raises)."""
    from .combine import BUILTIN_COMBINERS, combine_reffiles
    from .plugins.registry import load_plugin_class
    from .provenance import stamp
    t0 = time.perf_counter()
    try:
        if not task["inputs"]:
            raise RuntimeError(f"no individual {task['reflabel']} reference file was made "
                               f"(of {task['n_groups']} group(s)): nothing to combine")
        s = task["settings"]
        out = Path(task["output"])
        if task["combiner"] in BUILTIN_COMBINERS:
            combine_reffiles(task["inputs"], out, _norm_reftype(task["reftype"]),
                             combiner=task["combiner"], sigma=s["sigma"],
                             maxiters=s["maxiters"], min_good_fraction=s["min_good_fraction"],
                             mask_flag_fraction=s["mask_flag_fraction"],
                             stdfunc=s["stdfunc"], history=task["history"])
            if task.get("provenance"):
                stamp(out, task["provenance"])
            check_reference_file(out, task["reftype"])
        else:
            cls = load_plugin_class(task["combiner"])
            _write_in_private_dir(out, task["reftype"], lambda tmp: cls(
                task["inputs"], str(tmp), task["reftype"],
                {**s, "history": task["history"]}).run())
            if task.get("provenance"):       # checked already: the header is all it adds
                stamp(out, task["provenance"])
        return {"ok": True, "seconds": time.perf_counter() - t0, "error": "", "errorfile": "",
                "side_files": []}
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        return _failure(task, t0, exc)

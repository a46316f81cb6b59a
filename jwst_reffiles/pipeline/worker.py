"""Run one planned calwebb_detector1 call; executed as its own process.

    python -m jwst_reffiles.pipeline.worker TASK.json

The task (written by :mod:`jwst_reffiles.pipeline.run`) gives the input, the
``steps`` parameters, a work directory and where each product goes.  Products
are written by the pipeline into the work directory (inside ssbdir, so on the
same file system), stamped with the steps they have had (JRSTEPS) and renamed
into place: a product is either complete under its final name or absent.  The
outcome is written to ``result.json`` in the work directory.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

from astropy.io import fits

JRSTEPS = "JRSTEPS"


def _single(workdir: Path, suffix: str) -> Path:
    matches = sorted(workdir.glob(f"*_{suffix}.fits"))
    if len(matches) != 1:
        raise RuntimeError(f"expected one *_{suffix}.fits from the pipeline in {workdir}, "
                           f"found {[m.name for m in matches]}")
    return matches[0]


class ProductCheckError(RuntimeError):
    """The pipeline ran, but its product is not what was asked for."""


def check_steps(header, steps: list[str]) -> None:
    """The product must have had exactly the requested steps (S_* keywords)."""
    from .steps import STEP_INFO
    problems = []
    for step, (_, key, _) in STEP_INFO.items():
        value = str(header.get(key, "")).upper()
        if step in steps:
            if value != "COMPLETE":
                problems.append(f"{step} is {value or 'not recorded'}")
        elif value == "COMPLETE":
            problems.append(f"{step} ran but was not requested")
    if problems:
        raise ProductCheckError("the pipeline product does not have the requested steps: "
                                + "; ".join(problems))


def _stamp(src: Path, steps: str, check: bool, carried: dict | None = None,
           sums: tuple = ()) -> None:
    with fits.open(src, mode="update") as hdul:
        # steps done before this run (the input was an intermediate product): jwst marks
        # them SKIPPED in this run's product; they were applied, as the input recorded
        for key, value in (carried or {}).items():
            hdul[0].header[key] = value
        if check:
            check_steps(hdul[0].header, steps.split(","))
        hdul[0].header[JRSTEPS] = (steps, "steps applied, recorded by jwst_reffiles")
        if sums:
            hdul[0].header["JRINSUM"] = (sums[0], "SHA-256 of the raw exposure")
            hdul[0].header["JRREFSUM"] = (sums[1], "checksum of the reference files used")


def _log_to_stdout(names) -> None:
    """The pipeline's log (INFO and up) to stdout -- the spec's ssblogFlag file --
    and warnings and errors to stderr too (ssberrorlogFlag), not all to stderr."""
    import logging
    fmt = logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s")
    out = logging.StreamHandler(sys.stdout)
    out.setFormatter(fmt)
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(fmt)
    err.setLevel(logging.WARNING)
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(out)
        logger.addHandler(err)
        logger.propagate = False


def run_task(task: dict) -> dict:
    t0 = time.perf_counter()
    from jwst.pipeline import Detector1Pipeline

    from .steps import STEP_INFO
    workdir = Path(task["workdir"])
    carried = {}
    if task.get("done"):
        header = fits.getheader(task["input"])
        for step in task["done"]:
            key = STEP_INFO[step][1]
            if str(header.get(key, "")).upper() == "COMPLETE":
                carried[key] = "COMPLETE"
    _log_to_stdout(Detector1Pipeline.get_stpipe_loggers())
    Detector1Pipeline.call(task["input"], steps=task["steps"], output_dir=str(workdir),
                           save_results=task["save_results"], configure_log=False)
    # first check and stamp every product, then rename them all: a run that
    # fails leaves none of its products behind
    moves = []
    from ..io import file_checksum
    from .plan import refs_checksum
    source_sum = file_checksum(task["source"]) if task.get("source") else None
    for save in task["saves"]:
        suffix = "rate" if save["step"] == "ramp_fit" else save["step"]
        src = _single(workdir, suffix)
        sums = (source_sum, refs_checksum(save.get("refs", {}))) if source_sum else ()
        _stamp(src, save["jrsteps"], check=True, carried=carried, sums=sums)
        moves.append((src, Path(save["dest"])))
        for kind, dest in save.get("companions", {}).items():
            src = _single(workdir, kind)
            _stamp(src, save["jrsteps"], check=False, carried=carried,  # fitopt: no S_RAMP
                   sums=sums)
            moves.append((src, Path(dest)))
    for src, dest in moves:
        os.replace(src, dest)
    return {"ok": True, "products": [str(d) for _, d in moves],
            "seconds": time.perf_counter() - t0}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    task_path = Path(argv[0])
    task = json.loads(task_path.read_text())
    from .offline import prepare_pipeline_process
    prepare_pipeline_process()
    try:
        result = run_task(task)
    except Exception as exc:  # reported to the parent, which records it per file
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                  "after_pipeline": isinstance(exc, ProductCheckError),
                  "traceback": traceback.format_exc()[-4000:]}
        traceback.print_exc()           # into the run's log (kept as its error file)
    from ..execution.resources import peak_memory_gib
    result["peak_GiB"] = round(peak_memory_gib(), 3)      # this process ran this run only
    (task_path.parent / "result.json").write_text(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

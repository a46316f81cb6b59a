"""Validation of the final reference files of a run.

Three checks per file, each recorded (never silently skipped):

* **format**: the file opens as the data model of its reference type and
  validates; CRDS' certifier is run on it offline (its FITS-standard check
  runs; the checks against the CRDS rules need the CRDS mappings, which an
  offline run does not have: that is recorded as such).
* **comparison** with a previous reference file, from the configuration's
  ``validation`` section (keys: the reflabel, the reftype or ``<reftype>reffile``
  as in the spec; values: a file name, or CRDS): per extension the statistics
  of the difference and the ratio, DQ flags set and cleared counted per flag,
  shape and metadata differences, and a verdict.
* **quality check**: the pipeline step that uses the reference type is run
  offline with the new file on one of the run's raw inputs; what it changed is
  recorded.
* **verification** (:func:`verify`, :mod:`jwst_reffiles.verify`): the file is
  applied by its step to exposures held out of every reference file and scored
  against the thresholds of the ``verification`` section; passed or failed.

:func:`compare_arrays` is a pure function; the rest reads files.  The results
go to ``<run>/validation/validation.json`` and into the report.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
from astropy.io import fits

from .dq import PIXEL, flag_names
from .reffile import atomic_write
from .reftypes import get as get_reftype
from .reftypes import model_names

log = logging.getLogger(__name__)

__all__ = ["compare_arrays", "compare_reffiles", "check_format", "quality_check",
           "validate_run", "MODELS", "previous_for", "verify"]

#: Data model class name per reference type.
#: reftype (and alias) -> data model class name (from :mod:`jwst_reffiles.reftypes`).
MODELS = model_names(with_aliases=True)

#: Header keywords compared between a new and a previous file.
META_KEYS = ("REFTYPE", "INSTRUME", "DETECTOR", "SUBARRAY", "SUBSTRT1", "SUBSTRT2",
             "SUBSIZE1", "SUBSIZE2", "READPATT", "FASTAXIS", "SLOWAXIS", "BUNIT")

_DQ_EXT = ("DQ", "PIXELDQ", "GROUPDQ")


def _model_class(reftype: str, path=None):
    from stdatamodels.jwst import datamodels as dm
    name = MODELS.get(reftype.lower())
    if reftype.lower() == "dark" and path is not None:
        if str(fits.getheader(path).get("INSTRUME", "")).upper() == "MIRI":
            name = "DarkMIRIModel"
    return getattr(dm, name) if name else None


def compare_arrays(new: np.ndarray, old: np.ndarray, dq: bool = False) -> dict:
    """Statistics of the change between two arrays of one extension.

    Data: the difference (new - old) and the ratio (new / old) over the pixels
    finite in both: median, mean, std, 1st/99th percentiles, and the fraction of
    pixels that differ.  DQ: per flag, pixels where it is newly set and cleared.
    """
    new, old = np.asarray(new), np.asarray(old)
    if new.shape != old.shape:
        return {"shape_new": list(new.shape), "shape_old": list(old.shape),
                "comparable": False}
    if dq:
        n, o = new.astype(np.int64), old.astype(np.int64)
        set_, cleared = {}, {}
        for name, bit in PIXEL.items():
            if bit == 0:
                continue
            s = int(np.count_nonzero((n & bit) & ~(o & bit)))
            c = int(np.count_nonzero((o & bit) & ~(n & bit)))
            if s:
                set_[name] = s
            if c:
                cleared[name] = c
        return {"comparable": True, "changed_pixels": int(np.count_nonzero(n != o)),
                "flags_set": set_, "flags_cleared": cleared}
    a, b = new.astype(np.float64), old.astype(np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    out = {"comparable": True, "n": int(ok.sum()),
           "changed_fraction": float(np.mean(a[ok] != b[ok])) if ok.any() else 0.0}
    if ok.any():
        d = a[ok] - b[ok]
        out["difference"] = _summary(d)
        nz = ok & (b != 0)
        if nz.any():
            out["ratio"] = _summary(a[nz] / b[nz])
    return out


def _summary(x: np.ndarray) -> dict:
    p1, med, p99 = np.percentile(x, [1, 50, 99])
    return {"median": float(med), "mean": float(np.mean(x)), "std": float(np.std(x)),
            "p1": float(p1), "p99": float(p99)}


def compare_reffiles(new, old, tolerance: float = 1e-3) -> dict:
    """Compare a new reference file with a previous one (every image extension).

    The verdict: ``identical``, ``similar`` (every data extension's median
    ratio within ``tolerance`` of 1 and no DQ change), ``changed``, or
    ``incompatible`` (other reference type, detector or shapes).
    """
    new, old = Path(new), Path(old)
    result = {"new": str(new), "previous": str(old), "extensions": {}, "metadata": {}}
    with fits.open(new) as hn, fits.open(old) as ho:
        for key in META_KEYS:
            a, b = hn[0].header.get(key), ho[0].header.get(key)
            if a != b:
                result["metadata"][key] = {"new": a, "previous": b}
        names_new = {h.name for h in hn[1:] if h.is_image and h.data is not None}
        names_old = {h.name for h in ho[1:] if h.is_image and h.data is not None}
        result["only_new"] = sorted(names_new - names_old)
        result["only_previous"] = sorted(names_old - names_new)
        cut = _subarray_of(hn[0].header, ho[0].header)
        if cut is not None:
            result["previous_cut"] = f"[{cut[0].start}:{cut[0].stop}, {cut[1].start}:{cut[1].stop}]"
        for name in sorted(names_new & names_old):
            old_data = ho[name].data
            if cut is not None and old_data.ndim >= 2 and old_data.shape[-2:] != hn[name].data.shape[-2:]:
                old_data = old_data[(Ellipsis,) + cut]
            result["extensions"][name] = compare_arrays(hn[name].data, old_data,
                                                        dq=name in _DQ_EXT)
    exts = result["extensions"]
    if any(k in result["metadata"] for k in ("REFTYPE", "INSTRUME", "DETECTOR")) or \
            any(not e["comparable"] for e in exts.values()):
        verdict = "incompatible"
    elif all(e.get("changed_fraction", 0) == 0 and e.get("changed_pixels", 0) == 0
             for e in exts.values()):
        verdict = "identical"
    elif all((name in _DQ_EXT and e["changed_pixels"] == 0) or
             (name not in _DQ_EXT and abs(e.get("ratio", {}).get("median", 1.0) - 1) <= tolerance)
             for name, e in exts.items()):
        verdict = "similar"
    else:
        verdict = "changed"
    result["verdict"] = verdict
    return result


def _subarray_of(new_hdr, old_hdr):
    """Slices of a full-frame (or larger) previous file that match the new file's subarray."""
    try:
        x0, y0 = int(new_hdr["SUBSTRT1"]) - 1, int(new_hdr["SUBSTRT2"]) - 1
        nx, ny = int(new_hdr["SUBSIZE1"]), int(new_hdr["SUBSIZE2"])
        ox0, oy0 = int(old_hdr.get("SUBSTRT1", 1)) - 1, int(old_hdr.get("SUBSTRT2", 1)) - 1
        onx, ony = int(old_hdr["SUBSIZE1"]), int(old_hdr["SUBSIZE2"])
    except (KeyError, ValueError, TypeError):
        return None
    if (nx, ny, x0, y0) == (onx, ony, ox0, oy0):
        return None
    if x0 < ox0 or y0 < oy0 or x0 + nx > ox0 + onx or y0 + ny > oy0 + ony:
        return None
    return (slice(y0 - oy0, y0 - oy0 + ny), slice(x0 - ox0, x0 - ox0 + nx))


def verdict_line(result: dict) -> str:
    """One line for a terminal: the verdict and the largest changes."""
    parts = []
    for name, e in result.get("extensions", {}).items():
        if "ratio" in e:
            parts.append(f"{name} median ratio {e['ratio']['median']:.4f}")
        elif "changed_pixels" in e and e["changed_pixels"]:
            top = sorted(e["flags_set"].items(), key=lambda kv: -kv[1])[:3]
            parts.append(f"{name} {e['changed_pixels']} px changed"
                         + (f" (+{', +'.join(f'{k} {v}' for k, v in top)})" if top else ""))
    meta = ", ".join(f"{k} {v['previous']}->{v['new']}" for k, v in result.get("metadata", {}).items())
    return (f"{result['verdict'].upper()}: " + "; ".join(parts)
            + (f"; metadata {meta}" if meta else ""))


def check_format(path, reftype: str, crds_env: dict | None = None) -> dict:
    """Open as the reftype's data model and validate; run CRDS' certifier offline."""
    out = {"model": None, "valid": False, "errors": []}
    cls = _model_class(reftype, path)
    if cls is None:
        out["errors"].append(f"no data model known for reftype {reftype!r}")
    else:
        out["model"] = cls.__name__
        import warnings
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with cls(str(path)) as m:
                    m.validate()
            problems = [str(w.message) for w in caught
                        if "Validation" in type(w.message).__name__]
            out["valid"] = not problems
            out["errors"] += problems
        except Exception as exc:   # noqa: BLE001 - recorded, not raised
            out["errors"].append(f"{type(exc).__name__}: {exc}")
    # the model opens files of another type too: the file must be what it says
    known = get_reftype(reftype)
    want = known.header_reftype if known else reftype.upper()
    with fits.open(path) as h:
        have = str(h[0].header.get("REFTYPE", "")).upper()
        names = {x.name for x in h}
    if have != want:
        out["valid"] = False
        out["errors"].append(f"REFTYPE is {have or 'missing'}, expected {want}")
    ext = known.main_ext if known else "SCI"
    if ext not in names:
        out["valid"] = False
        out["errors"].append(f"no {ext} extension")
    out["certify"] = _certify(path, crds_env)
    return out


def _certify(path, crds_env: dict | None) -> dict:
    import os
    env = {**os.environ, **(crds_env or {})}
    try:
        proc = subprocess.run([sys.executable, "-m", "crds.certify", "-J", str(path)],
                              env=env, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"status": "not run", "detail": str(exc)}
    text = proc.stdout + proc.stderr
    fits_ok = "conforms to FITS standards" in text
    no_rules = "mappings" in text and "No such file" in text
    errors = [ln.split("ERROR -", 1)[1].strip() for ln in text.splitlines() if "ERROR -" in ln]
    if fits_ok and no_rules:
        status = "FITS standard OK; CRDS rules not checked (no CRDS mappings offline)"
    elif fits_ok and not errors:
        status = "passed"
    else:
        status = "failed"
    return {"status": status, "errors": [] if status != "failed" else errors[:5]}


def quality_check(path, reftype: str, raw_input, other_refs: dict, crds_dir,
                  timeout: float = 600.0) -> dict:
    """Run the pipeline step that uses ``path`` on ``raw_input``, offline.

    ``other_refs``: reftype -> file for the other reference files the step
    needs.  The step runs in a separate process (a crash in the pipeline's
    compiled code must not take the run down).  Returns what ran and what it
    changed (SCI median change, DQ flags set), or why it did not.
    """
    known = get_reftype(reftype)       # the step that uses it: jwst_reffiles.reftypes
    if known is None or known.qc_step is None:
        return {"status": "skipped", "reason": f"no pipeline step known for reftype {reftype}"}
    module, name, arg = known.qc_step
    kwargs = {arg: str(path)}
    for need in known.qc_needs:
        key = f"override_{need}"
        if key not in kwargs:
            ref = other_refs.get(need)
            if ref is None:
                return {"status": "skipped", "step": name,
                        "reason": f"no {need} reference file to run {name} with"}
            kwargs[key] = str(ref)
    spec = {"module": module, "step": name, "kwargs": kwargs, "input": str(raw_input),
            "crds_dir": str(crds_dir)}
    try:
        from .pipeline.launch import run_function
        proc = run_function("jwst_reffiles.validation:quality_process", [json.dumps(spec)],
                            timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "step": name, "error": f"no result in {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("QC-RESULT ")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1][len("QC-RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"status": "failed", "step": name,
            "error": f"exit status {proc.returncode}: " + " | ".join(tail)}


def _run_quality_step(spec: dict) -> dict:
    """In the quality-check process: run the step and describe what it did."""
    import importlib

    from stdatamodels.jwst import datamodels as dm

    from .pipeline.offline import offline_crds
    step = getattr(importlib.import_module(spec["module"]), spec["step"])
    name = spec["step"]
    try:
        with offline_crds(spec["crds_dir"]):
            with dm.RampModel(spec["input"]) as before:
                model = before.copy()
            model.data = np.asarray(model.data, np.float32)    # raw uint16 -> float
            data0 = np.array(model.data, np.float64)
            result = step.call(model, **spec["kwargs"])
            if isinstance(result, tuple):
                result = result[0]
            out = {"status": "ran", "step": name, "input": spec["input"],
                   "cal_step": _cal_step(result)}
            data1 = np.asarray(result.data, np.float64)
            if data1.shape == data0.shape:
                d = data1 - data0
                ok = np.isfinite(d)
                out["sci_median_change"] = float(np.median(d[ok])) if ok.any() else None
            else:
                out["output_shape"] = list(data1.shape)
                ok = np.isfinite(data1)
                out["output_median"] = float(np.median(data1[ok])) if ok.any() else None
            for ext in ("pixeldq", "groupdq", "dq"):
                arr = getattr(result, ext, None)
                if arr is None:
                    continue
                arr = np.asarray(arr).astype(np.int64)
                counts = {}
                for flag in flag_names(int(np.bitwise_or.reduce(arr.ravel()))):
                    if flag != "GOOD":
                        counts[flag] = int(np.count_nonzero(arr & PIXEL[flag]))
                out[f"{ext}_flags"] = counts
            return out
    except Exception as exc:   # noqa: BLE001 - a failing check is a result
        return {"status": "failed", "step": name, "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=3)}


def _cal_step(model) -> str:
    try:
        steps = model.meta.cal_step.instance
        return ", ".join(f"{k}={v}" for k, v in steps.items())
    except AttributeError:
        return ""


def previous_for(validation_cfg: dict, reflabel: str, reftype: str) -> str | None:
    """The previous file (or CRDS) configured for a reflabel/reftype, or None."""
    for key in (reflabel, reftype, f"{reftype}reffile"):
        for k, v in (validation_cfg or {}).items():
            if k.lower() == key.lower() and v:
                return str(v)
    return None


_MATCH_KEYS = ("DETECTOR", "SUBARRAY", "READPATT")


def _matches(final_hdr, exposure_hdr) -> bool:
    """A final file serves an exposure of its detector, subarray and readout."""
    for key in _MATCH_KEYS:
        mine = str(final_hdr.get(key, "") or "").strip().upper()
        if mine in ("", "ANY", "N/A", "GENERIC") or (key == "SUBARRAY" and mine == "FULL"):
            continue
        if mine != str(exposure_hdr.get(key, "") or "").strip().upper():
            return False
    return True


def verify(finals: list[dict], heldout: dict, settings: dict, crds_dir, refs_for=None,
           workers: int = 2) -> list[dict]:
    """Closed-loop verification of each final file; one result per file.

    ``heldout``: image type (dark, flat) -> the exposures held out of every
    reference file; ``settings``: the ``verification`` section (thresholds,
    max_exposures, enabled); ``refs_for(exposure)``: reftype -> reference file
    for the steps before and after the tested one (reffile4ssb's; this run's
    final files of the exposure's detector replace them).  Each result:
    reflabel, reftype, file, and :func:`jwst_reffiles.verify.verify_file`'s
    test, status (passed, failed, skipped, error), checks.
    """
    from .pipeline.plan import primary_header
    from .verify import TESTS, verify_file
    thresholds = {k: v for k, v in settings.items()
                  if k not in ("enabled", "holdout", "min_kept", "max_exposures")}
    headers = {f["output"]: primary_header(f["output"]) for f in finals}

    def one(f):
        base = {"reflabel": f["reflabel"], "reftype": f["reftype"], "file": f["output"]}
        if not settings.get("enabled", True):
            return {**base, "status": "skipped", "reason": "verification: enabled is False"}
        from .pipeline.plan import normalize_reftype
        test = TESTS.get(normalize_reftype(f["reftype"]))
        kind = test.imtype if test else "dark"
        hdr = headers[f["output"]]
        mine = [e for e in heldout.get(kind, []) if _matches(hdr, primary_header(e))]
        mine = sorted(mine)[-settings.get("max_exposures", 2):]
        refs = dict(refs_for(mine[0]) if (refs_for and mine) else {})
        for other in finals:                  # this run's files of the same detector
            if other is not f and _matches(headers[other["output"]], hdr):
                refs[normalize_reftype(other["reftype"])] = other["output"]
        result = verify_file(f["output"], f["reftype"], mine, refs, thresholds, crds_dir)
        log.info("verified %s: %s", Path(f["output"]).name, result.get("status"))
        return {**base, **result}

    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, finals))


def validate_run(rundir, finals: list[dict], validation_cfg: dict, raw_inputs: list,
                 other_refs: dict, crds_env: dict | None = None, quality: bool = True,
                 workers: int = 2, verification: dict | None = None) -> dict:
    """Validate every final reference file of a run; write validation.json.

    ``finals``: dicts with reflabel, reftype, output (the made final files).
    ``raw_inputs``: the raw files a quality check may run on, or a dict
    reftype -> such a list (flats for a gain, darks for a dark...).
    ``other_refs``: reftype -> reference file, for the steps of the quality check.
    ``verification``: the keyword arguments of :func:`verify` but ``finals`` and
    ``crds_dir`` (heldout, settings, refs_for), or None: not verified.
    """
    from .pipeline.offline import make_offline_crds_cache
    rundir = Path(rundir)
    crds_dir = rundir / ".crds_offline"
    make_offline_crds_cache(crds_dir)
    env = crds_env or {"CRDS_PATH": str(crds_dir), "CRDS_MODE": "local",
                       "CRDS_SERVER_URL": "https://127.0.0.1:9"}
    def one(f):
        path, rt = Path(f["output"]), f["reftype"]
        entry = {"reflabel": f["reflabel"], "reftype": rt, "file": str(path)}
        entry["format"] = check_format(path, rt, env)
        prev = previous_for(validation_cfg, f["reflabel"], rt)
        if prev is None:
            entry["comparison"] = {"verdict": "not compared",
                                   "reason": "no previous file in the validation section"}
        elif prev.upper() == "CRDS":
            entry["comparison"] = {"verdict": "not compared",
                                   "reason": "validation: CRDS needs a CRDS server or cache "
                                             "with this instrument's files (offline run)"}
        elif not Path(prev).is_file():
            entry["comparison"] = {"verdict": "not compared",
                                   "reason": f"previous file {prev} does not exist"}
        else:
            entry["comparison"] = compare_reffiles(path, prev)
            entry["comparison"]["line"] = verdict_line(entry["comparison"])
        raws = raw_inputs.get(rt, []) if isinstance(raw_inputs, dict) else raw_inputs
        if quality and raws:
            refs = {k: v for k, v in other_refs.items() if k != rt}
            entry["quality"] = quality_check(path, rt, raws[0], {**refs, rt: path}, crds_dir)
        else:
            entry["quality"] = {"status": "skipped", "reason": "no raw input" if quality
                                else "quality check disabled"}
        log.info("validated %s: format %s, comparison %s, quality check %s", path.name,
                 "valid" if entry["format"]["valid"] else "INVALID",
                 entry["comparison"]["verdict"], entry["quality"]["status"])
        return entry

    # the checks run in processes of their own (certify, the pipeline step): two at once
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        files = list(pool.map(one, finals))
    out = rundir / "validation" / "validation.json"
    from .consistency import check_consistency
    consistency = check_consistency(finals)
    for v in consistency["violations"]:
        log.warning("consistency: %s: %s (%s)", v["rule"], v["detail"], ", ".join(v["files"]))
    if verification is not None:
        results = verify(finals, crds_dir=crds_dir, workers=workers, **verification)
        for entry, ver in zip(files, results):
            entry["verification"] = {k: v for k, v in ver.items()
                                     if k not in ("reflabel", "reftype", "file")}
    summary = {"run": str(rundir), "files": merge_entries(out, files),
               "consistency": consistency}
    write_summary(out, summary)
    summary["path"] = str(out)
    summary["new"] = files
    return summary


def merge_entries(path, entries: list[dict]) -> list[dict]:
    """The entries of an existing validation.json for other files (an earlier mkrefs
    call into the same run made them), then ``entries``."""
    path = Path(path)
    old = []
    if path.is_file():
        try:
            old = json.loads(path.read_text()).get("files", [])
        except (OSError, ValueError) as exc:
            log.warning("%s cannot be read (%s); written anew", path, exc)
    mine = {e["file"] for e in entries}
    return [e for e in old if e.get("file") not in mine] + list(entries)


def write_summary(path, summary: dict) -> None:
    """Write validation.json atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in summary.items() if k not in ("path", "new")}
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(clean, indent=1,
                                                                   default=str)))


def quality_process(argv) -> int:
    """The quality-check process (:func:`jwst_reffiles.pipeline.launch.run_function`):
    ``argv[0]`` the JSON spec; the result on a ``QC-RESULT`` line of stdout."""
    import logging as _logging
    _logging.disable(_logging.INFO)
    from .pipeline.offline import prepare_pipeline_process
    prepare_pipeline_process()
    print("QC-RESULT " + json.dumps(_run_quality_step(json.loads(argv[0])), default=str))
    return 0


if __name__ == "__main__":   # the quality-check process, started by hand
    sys.exit(quality_process(sys.argv[1:]))

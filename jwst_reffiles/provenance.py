"""Where a run's reference files came from: ``<run>/provenance.json`` and keywords.

Every final reference file records, in its primary header, what it was made
with, and the run directory keeps the full account:

* the software: jwst_reffiles, jwst, stcal, stdatamodels, numpy, astropy, crds
  and Python versions (``JRVER``, ``JRJWST``, ``JRSTCAL``, ``JRSDM``, ``JRNUMPY``);
* the configuration: the SHA-256 of its resolved text (``JRCFGSUM``), the text
  itself in the JSON;
* the calibration of its inputs: the CRDS context (none: every run of this
  project is offline, each pipeline step handed its reference file by
  ``reffile4ssb``) and the reference files the pipeline runs used, each with
  its checksum (one digest of them: ``JRSSBSUM``);
* its raw input exposures with their checksums (one digest: ``JRINPSUM``, and a
  ``DATA USED`` HISTORY line per file, as CRDS asks of reference files);
* the command line (a HISTORY line and the JSON).

A digest is the SHA-256 of the sorted ``name=checksum`` lines, so that a file's
keywords can be checked against the JSON, and the JSON against the files.

:func:`collect` gathers the run's part before the tasks run (the checksums come
from the run state, which already has them), :func:`final_records` gives each
final file's part, :func:`stamp` writes the keywords into a final file
(atomically, as every write), :func:`write_provenance` writes the JSON after the
run, keeping the entries of earlier calls into the same run directory for the
reflabels this call did not make.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import time
from importlib import metadata
from pathlib import Path

__all__ = ["PROVENANCE_NAME", "KEYWORDS", "software_versions", "digest", "collect",
           "final_records", "header_records", "stamp", "write_provenance", "read_keywords"]

#: The run directory's provenance file.
PROVENANCE_NAME = "provenance.json"

#: The primary-header keywords of a final file, with their comments.
KEYWORDS = {
    "JRVER": "jwst_reffiles version",
    "JRJWST": "jwst version (calwebb_detector1 of the inputs)",
    "JRSTCAL": "stcal version",
    "JRSDM": "stdatamodels version",
    "JRNUMPY": "numpy version",
    "JRCRDS": "CRDS context of the input calibration",
    "JRCFGSUM": "SHA-256 of the run's configuration",
    "JRSSBSUM": "SHA-256 of the pipeline's reference files",
    "JRINPSUM": "SHA-256 of the raw inputs and checksums",
}

_PACKAGES = ("jwst_reffiles", "jwst", "stcal", "stdatamodels", "numpy", "astropy", "crds",
             "scipy", "numba")

#: What JRCRDS says: no run of this project asks CRDS for a file.
OFFLINE = "none (offline: reffile4ssb)"


def software_versions() -> dict[str, str]:
    """The versions of the packages that make and check the reference files."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def digest(named_sums: dict[str, str | None]) -> str:
    """One SHA-256 over ``name=checksum`` lines, sorted by name."""
    h = hashlib.sha256()
    for name, value in sorted(named_sums.items()):
        h.update(f"{name}={value}\n".encode())
    return h.hexdigest()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def collect(cfg, job, argv, checksum) -> dict:
    """The run's provenance before its tasks run (written after: :func:`write_provenance`).

    ``job`` is the prepared :class:`jwst_reffiles.execution.Job`; ``checksum(path)``
    gives a file's SHA-256 (the run state's, cached); ``argv`` the command line's
    arguments.  Each final task's payload gets its ``provenance`` (keywords and
    HISTORY lines, see :func:`final_records`); it is not part of the task's
    fingerprint, so a new command line alone makes nothing again.  The run's
    reference files that do not exist yet (SELF) get their checksums when written.
    """
    text = cfg.dump()
    refs = {}
    for run in job.plan.runs:
        for reftype, value in run.ref_files.items():
            refs.setdefault(value, reftype)
    reference_files = [{"reftype": rt, "file": path, "sha256": checksum(path)}
                       for path, rt in sorted(refs.items(), key=lambda kv: (kv[1], kv[0]))]
    inputs = sorted({str(f) for f in job.s1.catalog.table["filename"]})
    run = {
        "created": _now(),
        "command_line": "mkrefs " + shlex.join(str(a) for a in argv),
        "working_directory": str(Path.cwd()),
        "software": software_versions(),
        "crds": {"context": None, "mode": OFFLINE,
                 "note": "every calwebb_detector1 step is given its reference file; "
                         "none comes from CRDS"},
        "configuration": {"sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text},
        "reference_files": reference_files,
        "inputs": [{"file": f, "sha256": checksum(f)} for f in inputs],
    }
    by_dest = _runs_by_product(job)
    for task in job.graph:
        if task.stage == "final":
            task.payload["provenance"] = final_records(run, job, task, checksum, by_dest)
    return run


def _runs_by_product(job) -> dict:
    """Product path -> the pipeline run that makes it."""
    return {str(s.dest): r for r in job.plan.runs for s in r.saves}


def _uses(job, task, by_dest) -> tuple[list[str], dict[str, str]]:
    """A final task's raw inputs, and the reference files (path -> reftype) the
    pipeline runs of its products (``by_dest``: product path -> pipeline run) were
    calibrated with."""
    raw, refs = set(), {}
    for dep in task.deps:
        ind = job.graph[dep]
        for img in ind.payload.get("images", []):
            raw.add(str(img["input_name"]))
        for path in ind.inputs:
            run = by_dest.get(path)
            if run is not None:
                refs.update({v: k for k, v in run.ref_files.items()})
    return sorted(raw), refs


def final_records(run: dict, job, task, checksum, by_dest=None) -> dict:
    """One final file's provenance (its JSON entry; :func:`stamp` makes its keywords).
    ``by_dest``: product path -> pipeline run (built from the plan if not given)."""
    raw, refs = _uses(job, task, _runs_by_product(job) if by_dest is None else by_dest)
    sw = run["software"]
    entry = {"reflabel": task.payload["reflabel"], "reftype": task.payload["reftype"],
             "file": task.payload["output"],
             "individual_files": list(task.inputs),
             "inputs": [{"file": f, "sha256": checksum(f)} for f in raw],
             # a reference file this run makes (SELF) has no checksum before it is made:
             # stamp and write_provenance fill it in
             "reference_files": [{"reftype": refs[p], "file": p, "sha256": checksum(p)}
                                 for p in sorted(refs)]}
    return {"entry": entry, "software": sw, "command_line": run["command_line"],
            "config_sha256": run["configuration"]["sha256"]}


def _fill_checksums(items: list[dict]) -> list[dict]:
    from .io import cached_checksum
    return [{**i, "sha256": i["sha256"] or (cached_checksum(i["file"])
                                            if Path(i["file"]).exists() else None)}
            for i in items]


def header_records(provenance: dict) -> tuple[dict, list[str]]:
    """A final file's provenance keywords and HISTORY lines."""
    entry, sw = provenance["entry"], provenance["software"]
    refs = _fill_checksums(entry["reference_files"])
    keywords = {"JRVER": sw["jwst_reffiles"], "JRJWST": sw["jwst"], "JRSTCAL": sw["stcal"],
                "JRSDM": sw["stdatamodels"], "JRNUMPY": sw["numpy"], "JRCRDS": OFFLINE,
                "JRCFGSUM": provenance["config_sha256"],
                "JRSSBSUM": digest({r["file"]: r["sha256"] for r in refs}),
                "JRINPSUM": digest({i["file"]: i["sha256"] for i in entry["inputs"]})}
    history = [f"SOFTWARE: jwst_reffiles {sw['jwst_reffiles']}, jwst {sw['jwst']}, "
               f"stcal {sw['stcal']}, stdatamodels {sw['stdatamodels']}, "
               f"numpy {sw['numpy']}, python {sw['python']}",
               f"COMMAND: {provenance['command_line']}",
               f"CONFIGURATION: sha256 {provenance['config_sha256']} (its text is in "
               f"{PROVENANCE_NAME} in the run directory)"]
    history += [f"CALIBRATED WITH: {r['reftype']} {Path(r['file']).name} sha256 {r['sha256']}"
                for r in refs]
    history += [f"DATA USED: {Path(i['file']).name} sha256 {i['sha256']}"
                for i in entry["inputs"]]
    return keywords, history


def stamp(path, provenance: dict) -> None:
    """Write a final file's provenance keywords and HISTORY into its primary header,
    atomically (the file is rewritten beside itself and renamed into place)."""
    from astropy.io import fits

    from .reffile import atomic_write
    path = Path(path)
    keywords, history = header_records(provenance)
    with fits.open(path, memmap=False) as hdul:
        hdr = hdul[0].header
        for key, value in keywords.items():
            # a checksum fills the card: its comment is left out rather than cut
            hdr[key] = (value, KEYWORDS[key]) if len(str(value)) < 40 else value
        for line in history:
            hdr.add_history(line)
        atomic_write(path, lambda tmp: hdul.writeto(tmp, output_verify="silentfix"))


def read_keywords(path) -> dict:
    """The provenance keywords of a final file (those it has)."""
    from astropy.io import fits
    hdr = fits.getheader(path, 0)
    return {k: hdr[k] for k in KEYWORDS if k in hdr}


def write_provenance(rundir, run: dict, job, checksum=None) -> Path:
    """``<rundir>/provenance.json``: this call's provenance, each final file's entry
    with its status and checksum (``checksum(path)``: the run state's, which has
    them from the tasks; by default computed here), and the entries of earlier
    calls for the reflabels this one did not make."""
    from .io import file_checksum
    from .reffile import atomic_write
    checksum = checksum or file_checksum
    path = Path(rundir) / PROVENANCE_NAME
    earlier = []
    if path.exists():
        try:
            earlier = json.loads(path.read_text()).get("final_files", [])
        except (OSError, ValueError):
            earlier = []
    labels = set(job.s1.reflabels)
    finals = [e for e in earlier if e.get("reflabel") not in labels]
    for task in job.graph:
        if task.stage != "final" or "provenance" not in task.payload:
            continue
        entry = dict(task.payload["provenance"]["entry"])
        status = job.status.get(task.id, "")
        out = Path(entry["file"])
        done = status in ("made", "reused") and out.exists()
        entry.update(status=status, sha256=checksum(out) if done else None,
                     reference_files=_fill_checksums(entry["reference_files"]),
                     # what the file says (a reused file: the call that made it)
                     keywords=read_keywords(out) if done else {})
        finals.append(entry)
    doc = {**run, "reference_files": _fill_checksums(run["reference_files"]),
           "final_files": finals}
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=2) + "\n"))
    return path

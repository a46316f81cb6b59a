"""Stage 1b: which pipeline runs bring every input to the level its modules need.

Every (file, reflabel) pair needs the file calibrated to a *level*: the
installed steps its module's ssbsteps resolve to on the file's instrument, with
the reference files reffile4ssb gives for them.  For each file:

1. a level that an existing product already has (in ssbdir or any
   pipeline_prod_search_dir, with the same steps applied and the same reference
   files recorded) is reused;
2. the other levels are put in chains, each level a prefix of the next (the
   same first steps, in the same order, with the same reference files); one
   pipeline run per chain produces its deepest level and saves the others on
   the way;
3. each run starts from the existing product (or the input itself) that has
   the most steps already done, as long as everything it has done is wanted.

Products are named ``<exposure>_<tag>.fits`` in ssbdir, where the tag is the
spec's name of the last step when the level is "every step up to it" (``refpix``,
``jump``, ``rate``), and ``steps-<codes>`` otherwise; module-specific reference
files add ``_r<hash>``.  The steps applied are recorded in the product's header
(JRSTEPS), so that a product is recognised exactly.  A run that reaches ramp
fitting also saves ``rateints`` and ``fitopt`` products.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits
from astropy.table import Table

from ..config import expand_env
from .steps import (NOT_IN_SHORTHAND, SPEC_STEPS, STEP_INFO, SsbStepsError, resolve_steps, spec_name,
                    step_order)

__all__ = ["PlanError", "Level", "Product", "PipelineRun", "PipelinePlan", "plan_pipeline",
           "format_pipeline_plan", "JRSTEPS", "JRINSUM", "JRREFSUM", "refs_checksum",
           "REF_KEYWORDS", "normalize_reftype",
           "REFPIX_MASK", "refpix_only_mask", "RefResolver", "primary_header", "raw_beside",
           "PRODUCT_SUFFIXES"]

#: Header keyword where jwst_reffiles records the steps applied to a product.
JRSTEPS = "JRSTEPS"
#: ... the checksum of the raw exposure it was made from, and of the reference files
#: its steps used: a product is reused only while both still hold.
JRINSUM = "JRINSUM"
JRREFSUM = "JRREFSUM"


#: reffile4ssb values that name no file: ask CRDS; the step needs none.
NOT_FILES = ("CRDS", "N/A")


def is_ref_file(value) -> bool:
    """Whether a reference-file choice names a file (not CRDS or N/A)."""
    return str(value) not in NOT_FILES


def refs_checksum(refs) -> str:
    """One checksum of the reference files (reftype -> path) a product's steps used;
    CRDS and N/A count by name."""
    import hashlib

    from ..io import cached_checksum
    h = hashlib.sha256()
    for reftype, value in sorted(dict(refs).items()):
        value = str(value)
        digest = cached_checksum(value) if is_ref_file(value) and os.path.isfile(value) \
            else value
        h.update(f"{reftype}={digest}\n".encode())
    return h.hexdigest()[:32]

#: jwst reference type -> header keyword recording the file a step used.
REF_KEYWORDS = {"mask": "R_MASK", "saturation": "R_SATURA", "superbias": "R_SUPERB",
                "linearity": "R_LINEAR", "dark": "R_DARK", "gain": "R_GAIN",
                "readnoise": "R_READNO", "ipc": "R_IPC", "refpix": "R_REFPIX",
                "sirskernel": "R_SIRSKL", "rscd": "R_RSCD", "reset": "R_RESET",
                "emicorr": "R_MIREMI", "pictureframe": "R_PCTFRM", "flat": "R_FLAT",
                "pastasoss": "R_PSTSOS"}


class PlanError(ValueError):
    """A pipeline run cannot be planned; ``problems`` lists why."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(problems[0] if len(problems) == 1 else
                         "cannot plan the pipeline runs:\n" + "\n".join(f"  - {p}" for p in problems))


def normalize_reftype(key: str) -> str:
    """Config reftype names to jwst's (bpm -> mask, rdnoise -> readnoise, gainreffile -> gain)."""
    from ..reftypes import normalize
    return normalize(key)


@dataclass(frozen=True)
class Level:
    """Installed steps (run order) and the reference file for each reftype they read."""

    steps: tuple[str, ...]
    refs: tuple[tuple[str, str], ...] = ()

    @property
    def refmap(self) -> dict:
        return dict(self.refs)

    @property
    def terminal(self) -> bool:
        return "ramp_fit" in self.steps

    def is_prefix_of(self, other: "Level") -> bool:
        n = len(self.steps)
        return other.steps[:n] == self.steps and set(self.refs) <= set(other.refs)


@dataclass
class Product:
    """A calibrated file found on disk, with the steps it has had."""

    path: Path
    steps: tuple[str, ...]
    header: dict

    def stale(self, source_sum: str | None, level: Level) -> str:
        """Why this product (made by jwst_reffiles) no longer follows from its raw
        exposure or its reference files: '' when it does, or when it records
        neither (a product made elsewhere is judged by its steps and names only)."""
        recorded = self.header.get(JRINSUM)
        if recorded and source_sum and recorded != source_sum:
            return "its raw exposure changed since it was made"
        if self.header.get(JRREFSUM):
            used = {k: v for k, v in level.refs if any(k in STEP_INFO[s][2] for s in self.steps)}
            if self.header[JRREFSUM] != refs_checksum(used):
                return "a reference file it was made with changed since"
        return ""

    def matches_refs(self, level: Level) -> bool:
        """Whether the reference files recorded in the header are the level's."""
        for reftype, value in level.refs:
            if value in ("CRDS",) or value.startswith("SELF"):
                continue
            key = REF_KEYWORDS.get(reftype)
            recorded = str(self.header.get(key, "")) if key else ""
            if value == "N/A":
                if recorded not in ("", "N/A"):
                    return False
            elif os.path.basename(recorded.replace("crds://", "")) != os.path.basename(value):
                return False
        return True


@dataclass
class SavePoint:
    """A level saved by a run: the step after which it is written, and where."""

    level: Level
    step: str
    dest: Path
    companions: dict = field(default_factory=dict)   # rateints / fitopt destinations


@dataclass
class PipelineRun:
    """One call of calwebb_detector1 on one file."""

    fileID: int
    root: str
    instrument: str
    input: Path
    done: tuple[str, ...]
    steps: tuple[str, ...]          # every step of the deepest level
    refs: dict
    saves: list[SavePoint]
    consumers: list = field(default_factory=list)
    source: Path | None = None      # the raw exposure of the catalog (input may be a product)

    @property
    def to_run(self) -> tuple[str, ...]:
        return self.steps[len(self.done):]

    @property
    def ref_files(self) -> dict:
        """The reference files it is handed: reftype -> path (not CRDS or N/A)."""
        return {k: str(v) for k, v in self.refs.items() if is_ref_file(v)}

    @property
    def offline(self) -> bool:
        """True when no reference file has to come from CRDS."""
        return all(v != "CRDS" for v in self.refs.values())

    @property
    def deepest(self) -> Path:
        return max(self.saves, key=lambda s: len(s.level.steps)).dest

    def step_parameters(self) -> dict:
        """The ``steps`` argument of Detector1Pipeline.call."""
        params = {}
        save_at = {s.step for s in self.saves}
        # every installed step gets a value: one left to its default would make the
        # pipeline ask CRDS for its reference files even if it then does nothing
        for step in STEP_INFO:
            if step not in self.to_run:
                params[step] = {"skip": True}
                continue
            p = {"skip": False}
            for reftype in STEP_INFO[step][2]:
                value = self.refs.get(reftype, "CRDS")
                if value != "CRDS":
                    p[f"override_{reftype}"] = value
            if step == "ramp_fit":
                p["save_opt"] = True
            elif step in save_at:
                p["save_results"] = True
            params[step] = p
        return params

    def strun(self, output_dir) -> str:
        """The equivalent command line."""
        parts = ["strun", "calwebb_detector1", str(self.input), f"--output_dir={output_dir}"]
        for step, p in self.step_parameters().items():
            for k, v in p.items():
                if k == "skip" and not v:
                    continue
                parts.append(f"--steps.{step}.{k}={v}")
        if "ramp_fit" in self.to_run:
            parts.append("--save_results=True")
        return " ".join(parts)


@dataclass
class PipelinePlan:
    runs: list[PipelineRun] = field(default_factory=list)
    reused: list[tuple[str, Path]] = field(default_factory=list)
    products: dict = field(default_factory=dict)   # (reflabel, cmdID, label) -> dict of paths
    naive_runs: int = 0
    ssbdir: Path | None = None
    #: inputs already calibrated: (root, line saying how each is used), said once each
    notes: list[str] = field(default_factory=list)
    #: (reflabel, cmdID, label) -> why that group member has no usable product
    skipped: dict = field(default_factory=dict)

    def products_table(self) -> Table:
        """One row per group member: its product, the ramp-fit companions and the
        intermediate products a module keeps (ssbsave), one column per step."""
        extra = sorted({k for p in self.products.values() for k in p}
                       - {"product", "rateints", "fitopt"})
        names = ("reflabel", "cmdID", "label", "product", "rateints", "fitopt", *extra)
        rows = [(label, cmd, img, *(str(p.get(k, "")) for k in names[3:]))
                for (label, cmd, img), p in sorted(self.products.items())]
        return Table(rows=rows or None, names=names, dtype=(str,) * len(names))


def _exposure_root(basename: str, pattern: str | None) -> str:
    if pattern:
        m = re.search(pattern, basename)
        if m and m.groups() and m.group(1):
            return m.group(1)
    for suffix in ("_uncal.fits", ".fits"):
        if basename.endswith(suffix):
            return basename[: -len(suffix)]
    return basename


def group_scale_is_noop(hdr) -> bool:
    """group_scale changes nothing when FRMDIVSR equals NFRAMES (it then skips itself)."""
    return hdr.get("FRMDIVSR", hdr.get("NFRAMES")) == hdr.get("NFRAMES")


def skipped_by_the_pipeline(hdr, instrument: str) -> dict[str, str]:
    """Steps the installed pipeline skips by design for this exposure, with why:
    they are planned out (a product then does not need them to count as done).

    * group_scale where FRMDIVSR = NFRAMES (it would change nothing);
    * refpix on MIRI subarrays (jwst corrects MIRI reference pixels in full
      frame only, and records SKIPPED).
    """
    out = {}
    if group_scale_is_noop(hdr):
        out["group_scale"] = "FRMDIVSR = NFRAMES"
    if str(instrument).upper() == "MIRI" and str(hdr.get("SUBARRAY", "FULL")).upper() != "FULL":
        out["refpix"] = (f"the pipeline skips refpix for MIRI subarrays "
                         f"({hdr.get('SUBARRAY')})")
    return out


def _tag(level: Level, instrument: str, global_refs: dict, noop: frozenset = frozenset()) -> str:
    order = step_order(instrument)
    last = level.steps[-1]
    canonical = tuple(s for s in order[: order.index(last) + 1]
                      if spec_name(s) in SPEC_STEPS and s not in NOT_IN_SHORTHAND
                      and s not in noop)
    if level.steps == canonical:
        tag = spec_name(last)
    else:
        tag = "steps-" + "-".join(STEP_INFO[s][1][2:].lower() for s in level.steps)
    specific = {k: v for k, v in level.refs if global_refs.get(k) != v}
    if specific:
        text = "|".join(f"{k}={v}" for k, v in sorted(specific.items()))
        tag += "_r" + hashlib.sha1(text.encode()).hexdigest()[:6]
    return tag


def _companions(root, tag, ssbdir) -> dict:
    if tag == "rate":
        return {"rateints": ssbdir / f"{root}_rateints.fits",
                "fitopt": ssbdir / f"{root}_fitopt.fits"}
    return {"rateints": ssbdir / f"{root}_{tag}_rateints.fits",
            "fitopt": ssbdir / f"{root}_{tag}_fitopt.fits"}


_HEADER_CACHE: dict = {}


def primary_header(path) -> dict:
    """A file's primary header as a dict, read once per file version (cached by
    path and modification time: planning reads each input's header many times)."""
    key = (str(path), os.path.getmtime(path))
    if key not in _HEADER_CACHE:
        _HEADER_CACHE[key] = dict(fits.getheader(path, 0))
    return _HEADER_CACHE[key]


def product_state(path, instrument: str) -> Product:
    """The steps a file has had: JRSTEPS when jwst_reffiles made it, else its S_* keywords.

    For files made elsewhere the COMPLETE steps count.
    """
    hdr = primary_header(path)
    if JRSTEPS in hdr:
        steps = tuple(s for s in str(hdr[JRSTEPS]).split(",") if s)
    else:
        done = {s for s in step_order(instrument)
                if str(hdr.get(STEP_INFO[s][1], "")).upper() == "COMPLETE"}
        steps = tuple(s for s in step_order(instrument) if s in done)
    return Product(path=Path(path), steps=steps, header=hdr)


#: Suffixes of calwebb_detector1 products (the step that saved them).
PRODUCT_SUFFIXES = ("uncal", "dq_init", "dqinit", "group_scale", "saturation", "ipc",
                    "superbias", "refpix", "linearity", "dark_current", "dark", "jump", "ramp",
                    "rate", "rateints", "firstframe", "lastframe", "rscd", "reset", "emicorr",
                    "persistence", "charge_migration", "trapsfilled", "fitopt")


def raw_beside(path) -> Path | None:
    """The raw exposure (``<name>_uncal.fits``) next to a calibrated product, if any."""
    path = Path(path)
    stem = path.name[: -len(".fits")] if path.name.endswith(".fits") else path.name
    base, _, suffix = stem.rpartition("_")
    if not base or suffix.lower() not in PRODUCT_SUFFIXES or suffix.lower() == "uncal":
        return None
    raw = path.with_name(f"{base}_uncal.fits")
    return raw if raw.is_file() else None


def _refs_differ(product: Product, level: Level) -> list[str]:
    """'<reftype> <recorded> (wanted <value>)' for each reference file the product
    was made with that is not the level's."""
    out = []
    for reftype, value in level.refs:
        if value in ("CRDS",) or value.startswith("SELF"):
            continue
        key = REF_KEYWORDS.get(reftype)
        steps_using = [s for s in product.steps if reftype in STEP_INFO[s][2]]
        if not key or not steps_using:
            continue
        one = Product(product.path, product.steps, product.header)
        if not one.matches_refs(Level(level.steps, ((reftype, value),))):
            recorded = str(product.header.get(key, "")) or "nothing recorded"
            out.append(f"{reftype} {recorded} (the module's reffile4ssb gives "
                       f"{os.path.basename(value)})")
    return out


def _find_products(root: str, dirs, instrument: str, exclude: Path) -> list[Product]:
    found, seen = [], set()
    for d in dirs:
        if not d or not Path(d).is_dir():
            continue
        for p in sorted(Path(d).glob(f"{glob.escape(root)}_*.fits")):
            real = os.path.realpath(p)
            if real in seen or real == os.path.realpath(exclude):
                continue
            seen.add(real)
            if p.name.endswith(("_rateints.fits", "_fitopt.fits")):
                continue
            try:
                found.append(product_state(p, instrument))
            except OSError:
                continue
    return found


#: reffile4ssb value for a mask that flags the reference pixels only (made on demand).
REFPIX_MASK = "REFPIX"


def refpix_only_mask(instrument: str, detector: str, refdir, create: bool = True,
                     hdr: dict | None = None) -> Path:
    """A MASK reference file flagging only the reference pixels, of the exposure's
    subarray (``hdr``: SUBARRAY, SUBSTRT1/2, SUBSIZE1/2; full frame without).

    Inputs of a measurement that must see every pixel (bad pixel searches,
    darks) are calibrated with it: dq_init then flags the reference pixels,
    which the refpix step needs, and hides nothing else.  Made once per
    instrument, detector and subarray in ``refdir`` (atomically; a name that does
    not change, so that products made with it are recognised in later runs).
    """
    from ..detectors import FULL_FRAME, reference_pixel_mask
    inst, det = str(instrument).upper(), str(detector).upper()
    if refdir is None:
        raise PlanError([f"reffile4ssb mask {REFPIX_MASK}: no directory to write it to"])
    ny_full, nx_full = FULL_FRAME[inst]
    hdr = hdr or {}
    name = str(hdr.get("SUBARRAY") or "FULL").upper()
    x0, y0 = int(hdr.get("SUBSTRT1") or 1), int(hdr.get("SUBSTRT2") or 1)
    nx, ny = int(hdr.get("SUBSIZE1") or nx_full), int(hdr.get("SUBSIZE2") or ny_full)
    if (x0, y0, nx, ny) == (1, 1, nx_full, ny_full):
        name = "FULL"
    # the corner and size are in the name: two files may call different windows SUB64P
    tag = "" if name == "FULL" else f"_{name.lower()}_{x0}-{y0}-{nx}x{ny}"
    path = Path(refdir) / f"jwst_reffiles_refpix_only_{inst.lower()}_{det.lower()}{tag}_mask.fits"
    if path.is_file() or not create:      # not create: a dry run names it only
        return path
    import numpy as np
    from stdatamodels.jwst import datamodels as dm

    from ..dq import dq_def_records, flag_value
    from ..reffile import _Sub, save_reference
    ref = reference_pixel_mask(inst, x0, y0, nx, ny)
    dq = np.where(ref, np.uint32(flag_value("REFERENCE_PIXEL")), np.uint32(0))
    info = {"instrument": inst, "detector": det, "subarray": _Sub(name, x0, y0, nx, ny),
            "readpatt": "ANY", "fastaxis": int(hdr.get("FASTAXIS", -1)),
            "slowaxis": int(hdr.get("SLOWAXIS", 2))}
    save_reference(dm.MaskModel(dq=dq, dq_def=dq_def_records(dq)), path, reftype="MASK",
                   info=info, description="Reference pixels only (jwst_reffiles)",
                   history="Flags the reference pixels only, so that calibrated inputs "
                           "hide no pixel from the measurements")
    return path


class RefResolver:
    """reffile4ssb values -> a file (or N/A, CRDS) for one input file."""

    def __init__(self, global_map: dict, self_refs: dict | None, refdir: Path | None = None,
                 write: bool = True):
        self.global_map = {normalize_reftype(k): v for k, v in global_map.items()}
        self.self_refs = self_refs or {}
        self.refdir = refdir
        self.write = write
        self._matches: dict = {}

    def choices(self, module_map: dict) -> dict:
        return {**self.global_map, **{normalize_reftype(k): v for k, v in module_map.items()}}

    def resolve(self, reftype, choices, hdr, instrument, where) -> str:
        value = choices.get(reftype)
        if value is None:
            if reftype in ("refpix", "sirskernel") and instrument != "NIRSPEC":
                return "N/A"
            if reftype == "superbias" and instrument == "MIRI":
                return "N/A"
            value = choices.get("default", "CRDS")
        if value.upper() in NOT_FILES:
            return value.upper()
        if value.upper() == REFPIX_MASK:
            if reftype != "mask":
                raise PlanError([f"{where}: reffile4ssb gives {REFPIX_MASK} for {reftype}; "
                                 f"it is a value for the mask only"])
            return str(refpix_only_mask(instrument, hdr.get("DETECTOR", ""), self.refdir,
                                        create=self.write, hdr=hdr))
        if value.upper() == "SELF":
            path = self.self_refs.get(reftype)
            if path is None:
                raise PlanError([f"{where}: reffile4ssb gives SELF for {reftype}, but this run "
                                 f"has no {reftype} reference file of its own yet: make it in "
                                 f"an earlier run and give its path, or use CRDS"])
            return str(path)
        return self._from_pattern(value, reftype, hdr, where)

    def _from_pattern(self, pattern, reftype, hdr, where) -> str:
        subs = {"detector": str(hdr.get("DETECTOR", "")).lower(),
                "DETECTOR": str(hdr.get("DETECTOR", "")).upper(),
                "subarray": str(hdr.get("SUBARRAY", "")).lower(),
                "SUBARRAY": str(hdr.get("SUBARRAY", "")).upper(),
                "instrument": str(hdr.get("INSTRUME", "")).lower(),
                "INSTRUMENT": str(hdr.get("INSTRUME", "")).upper(),
                "readpatt": str(hdr.get("READPATT", "")).lower(),
                "READPATT": str(hdr.get("READPATT", "")).upper()}
        try:
            expanded = expand_env(pattern.format(**subs))
        except KeyError as exc:
            raise PlanError([f"{where}: reffile4ssb for {reftype}: unknown placeholder {exc} in "
                             f"{pattern!r} (known: {', '.join(sorted(subs))})"]) from None
        key = (expanded, reftype, subs["DETECTOR"], subs["SUBARRAY"])
        if key in self._matches:
            return self._matches[key]
        matches = sorted(glob.glob(expanded)) if set("*?[") & set(expanded) else (
            [expanded] if Path(expanded).is_file() else [])
        if not matches:
            raise PlanError([f"{where}: reffile4ssb for {reftype}: {expanded!r} matches no file"])
        n_all = len(matches)
        if len(matches) > 1:
            def score(path):
                h = primary_header(path)
                if str(h.get("REFTYPE", reftype)).lower() != reftype:
                    return None
                if str(h.get("DETECTOR", subs["DETECTOR"])).upper() != subs["DETECTOR"]:
                    return None
                sub = str(h.get("SUBARRAY", "FULL")).upper()
                if sub == subs["SUBARRAY"]:
                    return 2
                return 1 if sub in ("FULL", "GENERIC") else None
            scored = [(score(m), m) for m in matches]
            scored = [(s, m) for s, m in scored if s is not None]
            best = max((s for s, _ in scored), default=None)
            matches = [m for s, m in scored if s == best]
            if not matches:
                raise PlanError([f"{where}: reffile4ssb for {reftype}: none of the {n_all} "
                                 f"files {expanded!r} matches is a {reftype} reference file "
                                 f"for {subs['DETECTOR']} {subs['SUBARRAY']} (or FULL)"])
            if len(matches) != 1:
                raise PlanError([f"{where}: reffile4ssb for {reftype}: {expanded!r} gives "
                                 f"{len(matches)} files for {subs['DETECTOR']} "
                                 f"{subs['SUBARRAY']} ({', '.join(matches[:5])}); make the "
                                 f"pattern select one"])
        self._matches[key] = str(Path(matches[0]).absolute())
        return self._matches[key]


def _intermediate(level: Level, name: str, instrument: str, where: str):
    """The prefix of ``level`` ending at step ``name`` (ssbsave), or a problem text."""
    try:
        step = resolve_steps(name, instrument)
    except SsbStepsError as exc:
        return f"{where}: {exc}"
    step = step[-1] if step else None
    if step not in level.steps:
        return (f"{where}: step {name!r} is not among the module's ssbsteps "
                f"({', '.join(spec_name(s) for s in level.steps)})")
    steps = level.steps[: level.steps.index(step) + 1]
    used = {rt for s in steps for rt in STEP_INFO[s][2]}
    return Level(steps=steps, refs=tuple((k, v) for k, v in level.refs if k in used))


def _assign(plan: PipelinePlan, consumer: tuple, paths: dict) -> None:
    """Record a product for a group member; 4-tuples are ssbsave intermediates."""
    if len(consumer) == 4:
        plan.products.setdefault(consumer[:3], {})[consumer[3]] = paths["product"]
    else:
        plan.products.setdefault(consumer, {}).update(paths)


def plan_pipeline(s1, self_refs: dict | None = None, exclude=(), reuse: bool = True,
                  write_refs: bool = True, checksum=None) -> PipelinePlan:
    """Plan the pipeline runs for the groups of a stage-1 result.

    Existing products (in ssbdir and pipeline_prod_search_dir) are reused
    unless ``reuse`` is False or their path is in ``exclude`` (products the
    run state knows to be stale), or when they record the checksum of their raw
    exposure or reference files and those changed.  Without ``write_refs`` (a dry
    run) reference files the plan derives itself (the REFPIX mask) are named but
    not written.  ``checksum(path)`` gives a file's SHA-256 (default: computed once
    per file version in this process; a run passes its state's).
    """
    exclude = {str(Path(p).absolute()) for p in exclude}
    cfg, layout, table = s1.config, s1.layout, s1.catalog.table
    ssbdir = Path(layout.ssbdir)
    search = [ssbdir] + [Path(d) for d in cfg["output"]["pipeline_prod_search_dir"]]
    pattern = cfg["inputfiles"].get("basenamepattern")
    resolver = RefResolver(cfg["reffile4ssb"], self_refs, refdir=ssbdir / "reffiles",
                            write=write_refs)
    plan = PipelinePlan(ssbdir=ssbdir)
    problems = []
    needs: dict[int, dict[Level, list]] = {}
    rows = {int(r["fileID"]): r for r in table}
    global_refs: dict[int, dict] = {}
    for label in s1.reflabels:
        sec = cfg.module(label)
        choices = resolver.choices(sec.get("reffile4ssb", {}))
        for grp in s1.groupings[label].groups:
            for m in grp.members:
                row = rows[m.fileID]
                inst = str(row["INSTRUME"]).upper()
                hdr = primary_header(row["filename"])
                where = f"{label} ({m.basename})"
                try:
                    steps = resolve_steps(sec["ssbsteps"], inst)
                    # steps that would skip themselves are left out (so that, e.g.,
                    # "dq_init" and "jump-" share one run); one note for the others
                    skips = skipped_by_the_pipeline(hdr, inst)
                    for step in steps:
                        if step in skips and step != "group_scale":
                            _note(plan, f"{spec_name(step)} left out: {skips[step]}")
                    steps = tuple(s for s in steps if s not in skips)
                    refs = {}
                    for step in steps:
                        for rt in STEP_INFO[step][2]:
                            refs[rt] = resolver.resolve(rt, choices, hdr, inst,
                                                        f"{where}: step {spec_name(step)}")
                    if m.fileID not in global_refs:
                        gl = resolver.choices({})
                        global_refs[m.fileID] = {}
                        for step in step_order(inst):
                            for rt in STEP_INFO[step][2]:
                                try:
                                    global_refs[m.fileID][rt] = resolver.resolve(rt, gl, hdr, inst, where)
                                except PlanError:
                                    global_refs[m.fileID][rt] = None
                except (SsbStepsError, PlanError) as exc:
                    msg = str(exc) if isinstance(exc, SsbStepsError) else exc.problems[0]
                    if msg not in problems:
                        problems.append(msg if isinstance(exc, PlanError) else f"{where}: {msg}")
                    continue
                level = Level(steps=steps, refs=tuple(sorted(refs.items())))
                needs.setdefault(m.fileID, {}).setdefault(level, []).append(
                    (label, grp.cmdID, m.label))
                for name in sec.get("ssbsave", []):
                    sub = _intermediate(level, name, inst, f"{label}: ssbsave")
                    if isinstance(sub, str):
                        if sub not in problems:
                            problems.append(sub)
                        continue
                    needs[m.fileID].setdefault(sub, []).append(
                        (label, grp.cmdID, m.label, spec_name(sub.steps[-1])))
    if problems:
        raise PlanError(problems)

    for fid in sorted(needs):
        row = rows[fid]
        inst = str(row["INSTRUME"]).upper()
        source = Path(str(row["filename"]))
        root = _exposure_root(source.name, pattern)
        noop = frozenset(skipped_by_the_pipeline(primary_header(source), inst))
        found = [p for p in _find_products(root, search, inst, exclude=source)
                 if str(p.path.absolute()) not in exclude] if reuse else []
        if any(p.header.get(JRINSUM) for p in found):
            from ..io import cached_checksum
            source_sum = (checksum or cached_checksum)(source)
        else:
            source_sum = None
        given = product_state(source, inst)
        start_candidates = [given] + [p for p in found if "ramp_fit" not in p.steps]
        todo = []
        for level, consumers in needs[fid].items():
            if level.steps:
                plan.naive_runs += len(consumers)
            if level.steps == given.steps and given.matches_refs(level):
                # the input has exactly the steps the module needs: used as it is
                paths = {"product": source}
                if level.terminal:
                    paths.update(_given_companions(source))
                for c in consumers:
                    _assign(plan, c, paths)
                if given.steps:
                    _note(plan, f"{source.name}: already calibrated through "
                                f"{', '.join(spec_name(x) for x in given.steps)}: used as it is")
                continue
            tag = _tag(level, inst, global_refs[fid], noop)
            exact = [p for p in found if p.steps == level.steps and p.matches_refs(level)
                     and (not level.terminal or all(
                         v.exists() for v in _companions(root, tag, p.path.parent).values()))]
            for p in exact:
                why = p.stale(source_sum, level)
                if why:
                    _note(plan, f"{p.path.name} is not reused: {why}; it is made again")
            exact = [p for p in exact if not p.stale(source_sum, level)]
            if exact:
                best = exact[0]
                paths = {"product": best.path}
                if level.terminal:
                    paths.update(_companions(root, tag, best.path.parent))
                for c in consumers:
                    _assign(plan, c, paths)
                plan.reused.append((root, best.path))
                continue
            todo.append(level)
        # levels share a run when one is a prefix of the other, unless the longer one
        # needs a reference file this run makes (SELF) that the shorter does not: the
        # shorter one must not wait for it (it may be among that file's own inputs)
        self_paths = {str(v) for v in (self_refs or {}).values()}

        def self_deps(lv):
            return {str(v) for _, v in lv.refs if str(v) in self_paths}

        chains: list[list[Level]] = []
        for level in sorted(todo, key=lambda lv: -len(lv.steps)):
            for chain in chains:
                if level.is_prefix_of(chain[0]) and self_deps(level) == self_deps(chain[0]):
                    chain.append(level)
                    break
            else:
                chains.append([level])
        for chain in chains:
            top, shortest = chain[0], min(chain, key=lambda lv: len(lv.steps))
            usable = [p for p in start_candidates if _can_start(p, shortest, top)
                      and (p is given or not p.stale(source_sum, top))]
            if not any(p.path == source for p in usable) and given.steps:
                # the input itself cannot be continued: say why once, start from the raw
                # exposure beside it (or another usable product), or skip it
                why = _why_not(given, shortest, top)
                raw = raw_beside(source)
                raw_state = product_state(raw, inst) if raw is not None else None
                if raw_state is not None and _can_start(raw_state, shortest, top):
                    usable.append(raw_state)
                    _note(plan, f"{source.name}: {why}; the pipeline runs from the raw "
                                f"exposure beside it, {raw.name}")
                elif usable:
                    _note(plan, f"{source.name}: {why}; the pipeline runs from "
                                f"{max(usable, key=lambda p: len(p.steps)).path.name}")
                else:
                    reason = (f"{source.name}: {why}, and no raw exposure "
                              f"({source.name.rsplit('_', 1)[0]}_uncal.fits) is beside it: "
                              f"left out (give the raw file, or set the module's ssbsteps / "
                              f"reffile4ssb to what the file has)")
                    _note(plan, reason)
                    for lv in chain:
                        for c in needs[fid][lv]:
                            plan.skipped[c[:3]] = reason
                    continue
            start = max(usable, key=lambda p: len(p.steps))
            saves = []
            for level in sorted(chain, key=lambda lv: len(lv.steps)):
                tag = _tag(level, inst, global_refs[fid], noop)
                dest = ssbdir / f"{root}_{tag}.fits"
                comp = _companions(root, tag, ssbdir) if level.terminal else {}
                saves.append(SavePoint(level=level, step=level.steps[-1], dest=dest,
                                       companions=comp))
                for c in needs[fid][level]:
                    _assign(plan, c, {"product": dest, **comp})
            run = PipelineRun(fileID=fid, root=root, instrument=inst, input=start.path,
                              done=start.steps, steps=top.steps, refs=dict(top.refs),
                              saves=saves, source=source,
                              consumers=[c for lv in chain for c in needs[fid][lv]])
            plan.runs.append(run)
    return plan


def _can_start(p: Product, shortest: Level, top: Level) -> bool:
    """Whether a run of a chain can start from product ``p``: every step it has is
    one the chain's shortest level wants, in order, made with the same files."""
    return shortest.steps[:len(p.steps)] == p.steps and p.matches_refs(
        Level(p.steps, tuple((k, v) for k, v in top.refs
                             if any(k in STEP_INFO[s][2] for s in p.steps))))


def _why_not(p: Product, shortest: Level, top: Level) -> str:
    """Why a calibrated input cannot be continued to a level (one clause)."""
    extra = [s for s in p.steps if s not in shortest.steps]
    if extra:
        return (f"it has had {', '.join(spec_name(s) for s in extra)}, which the module's "
                f"ssbsteps ({', '.join(spec_name(s) for s in shortest.steps)}) do not ask for")
    if shortest.steps[:len(p.steps)] != p.steps:
        return (f"its steps ({', '.join(spec_name(s) for s in p.steps)}) are not the first "
                f"of the module's ({', '.join(spec_name(s) for s in shortest.steps)})")
    differ = _refs_differ(p, top)
    return "it was made with other reference files: " + "; ".join(differ or ["unknown"])


def _given_companions(source: Path) -> dict:
    """The rateints/fitopt products next to a rate file given as input, where present."""
    stem = source.name[: -len(".fits")]
    base = stem[: -len("_rate")] if stem.endswith("_rate") else stem
    out = {}
    for kind in ("rateints", "fitopt"):
        path = source.with_name(f"{base}_{kind}.fits")
        if path.is_file():
            out[kind] = path
    return out


def _note(plan: PipelinePlan, line: str) -> None:
    if line not in plan.notes:
        plan.notes.append(line)


def format_pipeline_plan(plan: PipelinePlan) -> str:
    lines = [f"Pipeline (calwebb_detector1, products in {plan.ssbdir}): {len(plan.runs)} "
             f"run{'s' * (len(plan.runs) != 1)}, {len(plan.reused)} product"
             f"{'s' * (len(plan.reused) != 1)} reused; {plan.naive_runs} runs without "
             f"deduplication"]
    for run in plan.runs:
        saved = ", ".join(s.dest.name for s in run.saves)
        lines.append(f"  {run.root}: {len(run.done)} step(s) done, run "
                     f"{', '.join(spec_name(s) for s in run.to_run)}; saves {saved}"
                     + ("" if run.offline else " (reference files from CRDS)"))
        lines.append(f"    {run.strun(plan.ssbdir)}")
    for root, path in plan.reused:
        lines.append(f"  {root}: reuses {path}")
    for line in plan.notes:
        lines.append(f"  note: {line}")
    return "\n".join(lines)

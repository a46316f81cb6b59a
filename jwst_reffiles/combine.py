"""Stage 3: individual reference files -> one final reference file.

Two layers, as everywhere in the package:

* array functions (no file I/O): :func:`combine_stack` reduces a stack of N
  images pixel by pixel with one of the built-in combiners (``mean``,
  ``median``, ``sigma_clipped_mean``, all through the shared kernel
  :func:`jwst_reffiles.stats.stack_stats`) and propagates the errors;
  :func:`combine_dq` combines DQ arrays flag by flag;
* :func:`combine_reffiles` reads N reference files of one type (a plane and a
  block of rows at a time, so memory does not grow with N), combines SCI (or
  COEFFS), ERR and DQ, and saves the final file atomically with the history of
  where it came from.

Rules
-----
* Values whose DQ has DO_NOT_USE, and non-finite values, are left out.
* sigma_clipped_mean clips at ``sigma`` times the spread ``stdfunc`` from the
  median: ``std`` (astropy's default), or ``mad_std`` (MAD x 1.4826), which
  can reject an outlier among the handful of individual files a run usually
  has (with N values none can lie more than (N-1)/sqrt(N) standard deviations
  out), at some loss of precision on clean data.
* ERR: for the mean of the n values used, sqrt(sum err_i^2) / n; for
  sigma_clipped_mean the same over the values the clipping kept; for the
  median sqrt(pi/2) times that (the efficiency of the median of normal data).
  Inputs without ERR (readnoise, gain) give no ERR.
* DQ of data-like files: a flag is set where more than ``1 - min_good_fraction``
  of the inputs set it, and DO_NOT_USE where fewer than ``min_good_fraction`` of
  them give a usable value.  Masks: a flag is kept where more than
  ``mask_flag_fraction`` of the masks set it (0: bitwise OR).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dq import flag_value
from .io import read_section
from .reftypes import REGISTRY, is_mask
from .stats import DEFAULT_MEMORY_BYTES, stack_stats

log = logging.getLogger(__name__)

__all__ = ["BUILTIN_COMBINERS", "CombineResult", "combine_stack", "combine_dq",
           "combine_reffiles", "combination_name", "MASK_REFTYPES"]

#: The combiners built into jwst_reffiles.
BUILTIN_COMBINERS = ("mean", "median", "sigma_clipped_mean")

#: The reftypes (and aliases) whose finals combine by a flag vote (jwst_reffiles.reftypes).
MASK_REFTYPES = tuple(sorted({n for r in REGISTRY.values() if r.flag_vote
                              for n in (r.name, *r.aliases)}))

_MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2)


@dataclass
class CombineResult:
    sci: np.ndarray                 # (ny, nx) float64, NaN where no value was usable
    err: np.ndarray | None          # (ny, nx) or None when no errors were given
    count: np.ndarray               # values used per pixel


def combine_stack(values, method: str = "sigma_clipped_mean", sigma: float = 3.0,
                  maxiters: int | None = 5, errors=None,
                  memory_bytes: int = DEFAULT_MEMORY_BYTES, stdfunc: str = "std") -> CombineResult:
    """Combine a stack (N, ny, nx) pixel by pixel; NaN values are left out.

    ``values`` and ``errors`` are arrays or sources (``shape``, ``read(y0, y1)``).
    """
    if method not in BUILTIN_COMBINERS:
        raise ValueError(f"unknown combiner {method!r}; built-in: {', '.join(BUILTIN_COMBINERS)}")
    companion = None
    if errors is not None:
        companion = _Squared(errors if hasattr(errors, "read") else _Array(errors))
    st = stack_stats(values, sigma=sigma, maxiters=(maxiters if method == "sigma_clipped_mean"
                                                    else 0),
                     memory_bytes=memory_bytes, companion=companion, stdfunc=stdfunc)
    sci = st.median if method == "median" else st.mean
    err = None
    if errors is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            err = np.sqrt(st.companion_sum) / st.count
        if method == "median":
            err = err * _MEDIAN_EFFICIENCY
        err[st.count == 0] = np.nan
    return CombineResult(sci=sci, err=err, count=st.count)


class _Array:
    def __init__(self, a):
        self.a = np.asarray(a)
        self.shape = self.a.shape

    def read(self, y0, y1):
        return self.a[:, y0:y1]


class _Squared:
    def __init__(self, source):
        self.source, self.shape = source, source.shape

    def read(self, y0, y1):
        v = np.asarray(self.source.read(y0, y1), dtype=np.float64)
        return np.where(np.isfinite(v), v * v, 0.0)


def combine_dq(dqs, min_fraction: float = 0.0) -> np.ndarray:
    """Flag-by-flag combination of DQ arrays (an iterable of same-shape arrays).

    A bit is set in the result where more than ``min_fraction`` of the inputs
    set it: 0 gives the bitwise OR, 0.5 a majority.
    """
    counts: dict[int, np.ndarray] = {}
    n = 0
    shape = None
    for dq in dqs:
        dq = np.asarray(dq, dtype=np.uint32)
        if shape is None:
            shape = dq.shape
        elif dq.shape != shape:
            raise ValueError(f"DQ arrays of different shapes: {shape} and {dq.shape}")
        n += 1
        present = int(np.bitwise_or.reduce(dq, axis=None)) if dq.size else 0
        for bit in range(32):
            b = np.uint32(1 << bit)
            if present & int(b):
                counts.setdefault(bit, np.zeros(shape, np.int32))
                counts[bit] += (dq & b) > 0
    if n == 0:
        raise ValueError("combine_dq: no DQ arrays")
    out = np.zeros(shape, np.uint32)
    for bit, c in counts.items():
        out[c > min_fraction * n] |= np.uint32(1 << bit)
    return out


# --------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------

class _PlaneSource:
    """One plane of the same extension of N open FITS files, DO_NOT_USE -> NaN."""

    def __init__(self, hduls, ext, index, dq_ext=None, dq_index=None):
        self.hduls, self.ext, self.index = hduls, ext, index
        self.dq_ext, self.dq_index = dq_ext, dq_index
        ny, nx = hduls[0][ext].shape[-2:]
        self.shape = (len(hduls), ny, nx)
        self.dnu = np.uint32(flag_value("DO_NOT_USE"))

    def read(self, y0, y1):
        out = np.empty((self.shape[0], y1 - y0, self.shape[2]), np.float64)
        rows = (slice(y0, y1), slice(None))
        for k, h in enumerate(self.hduls):
            out[k] = read_section(h[self.ext], self.index + rows)
            if self.dq_ext is not None:
                dq = read_section(h[self.dq_ext], self.dq_index + rows, np.uint32)
                out[k][(dq & self.dnu) > 0] = np.nan
        return out


def _extensions(hdul) -> dict:
    names = {h.name for h in hdul}
    return {"sci": next((e for e in ("SCI", "COEFFS") if e in names), None),
            "err": "ERR" if "ERR" in names else None,
            "dq": "DQ" if "DQ" in names else None}


def _hot_pixel_cards(headers) -> list:
    """The final IPC file's hot-pixel couplings (IPCHOTX/Y/D, IPCHOTN) from its
    individual files': the same when they came from the same darks, else their
    mean weighted by the stamps behind each."""
    keys = ("IPCHOTX", "IPCHOTY", "IPCHOTD")
    found = [h for h in headers if all(k in h for k in keys + ("IPCHOTN",))]
    if not found:
        return []
    values = {tuple(h[k] for k in keys + ("IPCHOTN",)) for h in found}
    if len(values) == 1:
        (*alphas, stamps), = values
    else:
        w = np.array([float(h["IPCHOTN"]) for h in found])
        alphas = [float(np.sum(w * [h[k] for h in found]) / w.sum()) for k in keys]
        stamps = int(w.sum())
    return [[k, round(float(a), 6), found[0].comments[k]] for k, a in zip(keys, alphas)] + [
        ["IPCHOTN", int(stamps), found[0].comments["IPCHOTN"]]]


def combination_name(reftype: str, combiner: str) -> str:
    """How a reference type's individual files combine, in a word or two: masks by a
    flag vote, the others by the combiner."""
    return "flag vote" if is_mask(reftype) else combiner


def combine_reffiles(files, output, reftype: str, combiner: str = "sigma_clipped_mean",
                     sigma: float = 3.0, maxiters: int = 5, min_good_fraction: float = 0.5,
                     mask_flag_fraction: float = 0.0, history=(), description: str | None = None,
                     memory_bytes: int = DEFAULT_MEMORY_BYTES, stdfunc: str = "std") -> Path:
    """Combine individual reference files of one type into ``output``; return its path.

    The final file is the first individual file's model (its CRDS metadata)
    with the combined arrays, ``description`` (default: the first file's, noting
    the combination) and ``history`` lines added, validated and saved atomically.
    """
    from stdatamodels.jwst import datamodels as dm

    from .dq import dq_def_records
    from .io import open_unscaled
    from .reffile import atomic_save

    files = [str(f) for f in files]
    if not files:
        raise ValueError(f"no individual {reftype} reference files to combine")
    hduls = [open_unscaled(f) for f in files]
    try:
        ext = _extensions(hduls[0])
        for f, h in zip(files[1:], hduls[1:]):
            for kind, e in ext.items():
                if e is None:
                    continue
                if e not in h:
                    raise ValueError(f"{f}: no {e} extension (the first file, {files[0]}, "
                                     f"has one): cannot combine")
                if h[e].shape != hduls[0][e].shape:
                    raise ValueError(f"{f}: {e} has shape {h[e].shape}, {files[0]} "
                                     f"{hduls[0][e].shape}: cannot combine")
        n = len(files)
        dq_out = None
        sci_out = err_out = None
        if is_mask(reftype) or ext["sci"] is None:
            if ext["dq"] is None:
                raise ValueError(f"{files[0]}: neither SCI, COEFFS nor DQ: nothing to combine")
            dq_out = combine_dq((read_section(h[ext["dq"]], (), np.uint32) for h in hduls),
                                mask_flag_fraction)
        else:
            sshape = hduls[0][ext["sci"]].shape
            planes = list(np.ndindex(*sshape[:-2]))
            dq_shape = hduls[0][ext["dq"]].shape if ext["dq"] else None
            sci_out = np.empty(sshape, np.float32)
            if ext["err"]:
                err_out = np.empty(hduls[0][ext["err"]].shape, np.float32)
            few = np.zeros(sshape[-2:], bool) if dq_shape is None or len(dq_shape) == 2 else \
                np.zeros(dq_shape, bool)
            for p in planes:
                dq_index = None
                if dq_shape is not None:
                    # the DQ's leading axes, aligned from the right, where it has them (a
                    # MIRI dark: SCI (nints, ngroups, ...), DQ (nints, 1, ...))
                    lead = dq_shape[:-2]
                    dq_index = tuple(0 if size == 1 else i for i, size in
                                     zip(p[len(p) - len(lead):], lead)) if lead else ()
                values = _PlaneSource(hduls, ext["sci"], p, ext["dq"], dq_index)
                errors = _PlaneSource(hduls, ext["err"], p) if ext["err"] else None
                res = combine_stack(values, combiner, sigma, maxiters, errors,
                                    memory_bytes=memory_bytes, stdfunc=stdfunc)
                sci = res.sci
                missing = res.count == 0
                if missing.any():       # nothing usable: the median of all, DQ ignored
                    raw = np.stack([read_section(h[ext["sci"]], p)[missing] for h in hduls])
                    with np.errstate(all="ignore"):
                        fill = np.nanmedian(np.where(np.isfinite(raw), raw, np.nan), axis=0)
                    sci[missing] = np.nan_to_num(fill, nan=0.0)
                sci_out[p] = sci
                if err_out is not None:
                    err_out[p] = np.nan_to_num(res.err, nan=0.0)
                too_few = res.count < math.ceil(min_good_fraction * n - 1e-9)
                if dq_index is not None and dq_index != ():
                    few[dq_index] |= too_few
                else:
                    few |= too_few
            if ext["dq"]:
                dq_out = combine_dq((read_section(h[ext["dq"]], (), np.uint32) for h in hduls),
                                    1.0 - min_good_fraction)
                dq_out[few] |= np.uint32(flag_value("DO_NOT_USE"))
    finally:
        for h in hduls:
            h.close()

    with dm.open(files[0]) as first:
        model = first.copy()
    model.history = []            # the first individual file's own history is not the final's
    if sci_out is not None:
        setattr(model, "coeffs" if ext["sci"] == "COEFFS" else "data", sci_out)
    if err_out is not None:
        model.err = err_out
    if dq_out is not None:
        model.dq = dq_out
        if hasattr(model, "dq_def"):
            model.dq_def = dq_def_records(dq_out)
    if reftype.lower() == "ipc" and sci_out is not None:
        from astropy.io import fits

        from .ipc import header_cards
        headers = [fits.getheader(f) for f in files]
        errs = [h.get("IPCFERR") for h in headers]
        err = (float(np.sqrt(sum(e * e for e in errs))) / n
               if all(e is not None for e in errs) else None)
        model.extra_fits = {"PRIMARY": {"header": header_cards(sci_out, err)
                                        + _hot_pixel_cards(headers)}}
    name = combination_name(reftype, combiner)
    base = description or str(model.meta.description or f"{reftype} reference file")
    model.meta.description = (f"{base} (combined: {name} of {n})" if description is None
                              else description)
    if sci_out is None:
        how = (f"a flag vote: each flag kept where more than {mask_flag_fraction:g} of the "
               f"masks set it" + (" (any)" if mask_flag_fraction == 0 else ""))
    else:
        how = (f"{combiner}" + (f", sigma {sigma} ({stdfunc}), maxiters {maxiters}"
                                if combiner == "sigma_clipped_mean" else "")
               + f", min_good_fraction {min_good_fraction:g}")
    model.add_history_entry(f"Final reference file made by jwst_reffiles: {how}, of {n} "
                            f"individual reference file(s): "
                            f"{', '.join(os.path.basename(f) for f in files)}")
    for line in ([history] if isinstance(history, str) else list(history)):
        if line:
            model.add_history_entry(line)
    model.validate()
    return atomic_save(model, output)

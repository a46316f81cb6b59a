"""Consistency across the reference types of one run (the checks no single file shows).

Array cores (no I/O) and one file adapter, :func:`check_consistency`, whose
result goes into ``validation.json`` (``consistency``) and the summary.  Each
violation names the file(s), the rule and how many pixels break it:

* ``geometry``: every file of one detector has the same subarray corner and
  size (SUBSTRT1/2, SUBSIZE1/2) and the same orientation (FASTAXIS, SLOWAXIS)
  (an IPC kernel has none and is left out);
* ``unflagged_nonfinite``: a value that is NaN or infinite has DO_NOT_USE in
  the file's DQ (the pipeline would otherwise spread it) -- in the run's mask
  for a file with no DQ of its own (readnoise, gain);
* ``zero_linearity``: a pixel whose linearity coefficients are all zero (it
  would zero the data) has DO_NOT_USE or NO_LIN_CORR;
* ``mask_do_not_use``: with a bad pixel mask of the detector in the run, a
  pixel another file cannot serve -- a NaN or infinite value in any plane, all
  linearity coefficients zero, a gain or readnoise that is not positive -- is
  handled: flagged in that file (DO_NOT_USE; NO_LIN_CORR for linearity,
  NO_SAT_CHECK for saturation) or DO_NOT_USE in the mask, which the pipeline
  carries into every exposure (``unflagged_nonfinite`` judges each file on its
  own; this rule judges the set the pipeline will apply together);
* ``linearity_not_monotonic``: where both are usable, the linearity
  correction increases from 0 up to the saturation file's level (a
  correction that turns over before saturation is unphysical);
* ``ipc_convention``: a gain file records whether it is corrected for IPC
  (IPCCORR, IPCFACTR); with an IPC file of the same detector, an uncorrected
  gain where the kernel couples, or a corrected one whose factor is not the
  kernel's, is a violation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dq import has_flag
from .reftypes import is_mask

__all__ = ["GEOMETRY_KEYS", "geometry_violations", "unflagged_nonfinite", "zero_linearity",
           "not_monotonic", "ipc_convention", "unhandled_by_mask", "check_consistency"]

GEOMETRY_KEYS = ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2", "FASTAXIS", "SLOWAXIS")

#: the flags by which a file of a reference type says it does not serve a pixel
#: (DO_NOT_USE for the others)
OWN_FLAGS = {"linearity": ["DO_NOT_USE", "NO_LIN_CORR"],
             "saturation": ["DO_NOT_USE", "NO_SAT_CHECK"]}


def geometry_violations(headers: dict[str, dict]) -> list[dict]:
    """Files (name -> primary header values) of one detector whose corner, size or
    orientation differ from the first file's."""
    out = []
    items = list(headers.items())
    if not items:
        return out
    first, ref = items[0]
    for name, hdr in items[1:]:
        diff = {k: (ref.get(k), hdr.get(k)) for k in GEOMETRY_KEYS if ref.get(k) != hdr.get(k)}
        if diff:
            out.append({"rule": "geometry", "files": [first, name],
                        "detail": ", ".join(f"{k} {a} vs {b}" for k, (a, b) in diff.items())})
    return out


def unflagged_nonfinite(values: np.ndarray, dq: np.ndarray | None) -> int:
    """Pixels with a non-finite value in any plane and no DO_NOT_USE."""
    values = np.asarray(values)
    bad = ~np.isfinite(values)
    if bad.ndim > 2:
        bad = bad.reshape(-1, *bad.shape[-2:]).any(axis=0)
    if dq is None:
        return int(bad.sum())
    dnu = has_flag(dq, "DO_NOT_USE")
    if dnu.ndim > 2:
        dnu = dnu.reshape(-1, *dnu.shape[-2:]).all(axis=0)
    return int((bad & ~dnu).sum())


def zero_linearity(coeffs: np.ndarray, dq: np.ndarray) -> int:
    """Pixels whose coefficients are all zero without DO_NOT_USE or NO_LIN_CORR."""
    zero = np.all(np.asarray(coeffs) == 0, axis=0)
    return int((zero & ~has_flag(dq, OWN_FLAGS["linearity"])).sum())


#: reference types whose value must be positive to be used (the ramp fit divides by them)
POSITIVE = ("gain", "readnoise")


def unhandled_by_mask(values: np.ndarray, reftype: str, dq: np.ndarray | None,
                      mask_dq: np.ndarray) -> int:
    """Pixels a file cannot serve (see ``mask_do_not_use`` above) that neither
    its own flags nor the mask's DO_NOT_USE handle."""
    values = np.asarray(values)
    planes = values.reshape(-1, *values.shape[-2:])
    bad = (~np.isfinite(planes)).any(axis=0)
    if reftype == "linearity":
        bad |= np.all(planes == 0, axis=0)
    if reftype in POSITIVE:
        with np.errstate(invalid="ignore"):
            bad |= (planes <= 0).any(axis=0)
    handled = has_flag(mask_dq, "DO_NOT_USE")
    if dq is not None:
        own = has_flag(dq, OWN_FLAGS.get(reftype, ["DO_NOT_USE"]))
        handled = handled | (own.reshape(-1, *own.shape[-2:]).all(axis=0))
    return int((bad & ~handled).sum())


def not_monotonic(coeffs: np.ndarray, lin_dq: np.ndarray, saturation: np.ndarray,
                  sat_dq: np.ndarray | None = None, npoints: int = 32) -> tuple[int, int]:
    """(pixels checked, pixels whose correction's slope is not positive somewhere
    on 0 <= x <= saturation level)."""
    c = np.asarray(coeffs, np.float64)
    sat = np.asarray(saturation, np.float64)
    use = np.isfinite(sat) & (sat > 0) & ~has_flag(lin_dq, OWN_FLAGS["linearity"])
    use &= np.all(np.isfinite(c), axis=0) & np.any(c != 0, axis=0)   # zeros: zero_linearity
    if sat_dq is not None:
        use &= ~has_flag(sat_dq, OWN_FLAGS["saturation"])
    cu, su = c[:, use], sat[use]                        # (ncoef, n), (n,)
    bad = np.zeros(su.shape, bool)
    for frac in np.linspace(0.0, 1.0, npoints):
        x = frac * su
        slope = np.zeros_like(su)
        for k in range(cu.shape[0] - 1, 0, -1):         # Horner on the derivative
            slope = slope * x + k * cu[k]
        bad |= ~(slope > 0)
    return int(use.sum()), int(bad.sum())


def _read(path) -> tuple[dict, dict]:
    from astropy.io import fits
    with fits.open(path, memmap=False) as hdul:
        hdr = dict(hdul[0].header)
        arrays = {h.name: np.asarray(h.data) for h in hdul[1:]
                  if h.name in ("SCI", "COEFFS", "DQ") and h.data is not None}
    return hdr, arrays


def check_consistency(finals: list[dict]) -> dict:
    """The checks of the module docstring on a run's final files (dicts with
    reflabel, reftype, output); returns ``{"checked": [...], "violations": [...]}``."""
    read = {}
    for f in finals:
        if Path(f["output"]).is_file():
            read[f["output"]] = (f, *_read(f["output"]))
    violations = []
    by_detector: dict[str, dict] = {}
    for path, (f, hdr, arrays) in read.items():
        if f["reftype"] == "ipc":                     # a kernel: no pixel geometry
            continue
        by_detector.setdefault(str(hdr.get("DETECTOR")), {})[Path(path).name] = {
            k: hdr.get(k) for k in GEOMETRY_KEYS}
    for headers in by_detector.values():
        violations += geometry_violations(headers)
    masks = {str(v[1].get("DETECTOR")): v for v in read.values()
             if is_mask(v[0]["reftype"]) and "DQ" in v[2]}
    for path, (f, hdr, arrays) in read.items():
        values = arrays.get("SCI", arrays.get("COEFFS"))
        if values is not None and values.dtype.kind == "f":
            dq = arrays.get("DQ")
            mask = masks.get(str(hdr.get("DETECTOR")))
            if mask is not None and (is_mask(f["reftype"])
                                     or mask[2]["DQ"].shape != values.shape[-2:]):
                mask = None                 # the mask itself; another shape: geometry's
            n = unflagged_nonfinite(values, dq if dq is not None or mask is None
                                    else mask[2]["DQ"])   # no DQ of its own: the mask's
            if n:
                violations.append({"rule": "unflagged_nonfinite", "files": [Path(path).name],
                                   "pixels": n, "detail": f"{n} pixel(s) NaN/inf without "
                                                          "DO_NOT_USE"})
            n = 0 if mask is None else unhandled_by_mask(values, f["reftype"], dq,
                                                         mask[2]["DQ"])
            if n:
                violations.append({"rule": "mask_do_not_use", "files": [
                    Path(path).name, Path(mask[0]["output"]).name], "pixels": n,
                    "detail": f"{n} pixel(s) this file cannot serve (NaN, zero or not "
                              "positive) flagged neither in it nor DO_NOT_USE in the mask"})
        if f["reftype"] == "linearity" and "COEFFS" in arrays and "DQ" in arrays:
            n = zero_linearity(arrays["COEFFS"], arrays["DQ"])
            if n:
                violations.append({"rule": "zero_linearity", "files": [Path(path).name],
                                   "pixels": n, "detail": f"{n} pixel(s) with all coefficients "
                                                          "0 and neither DO_NOT_USE nor "
                                                          "NO_LIN_CORR"})
    lins = [v for v in read.values() if v[0]["reftype"] == "linearity" and "COEFFS" in v[2]]
    sats = [v for v in read.values() if v[0]["reftype"] == "saturation" and "SCI" in v[2]]
    checked = {"files": len(read), "detectors": len(by_detector),
               "mask_do_not_use_pixels": int(sum(has_flag(m[2]["DQ"], "DO_NOT_USE").sum()
                                                 for m in masks.values()))}
    for lin in lins:
        for sat in sats:
            if lin[2]["COEFFS"].shape[-2:] != sat[2]["SCI"].shape[-2:]:
                continue                                   # reported as geometry
            n, bad = not_monotonic(lin[2]["COEFFS"], lin[2].get("DQ", 0),
                                   sat[2]["SCI"], sat[2].get("DQ"))
            checked["monotonic_pixels"] = checked.get("monotonic_pixels", 0) + n
            if bad:
                names = [Path(lin[0]["output"]).name, Path(sat[0]["output"]).name]
                violations.append({"rule": "linearity_not_monotonic", "files": names,
                                   "pixels": bad, "detail": f"{bad} of {n} pixel(s): the "
                                   "correction turns over below the saturation level"})
    gains = [v for v in read.values() if v[0]["reftype"] == "gain"]
    ipcs = [v for v in read.values() if v[0]["reftype"] == "ipc"]
    for gain in gains:
        for ipc in ipcs:
            if str(gain[1].get("DETECTOR")) != str(ipc[1].get("DETECTOR")):
                continue
            why = ipc_convention(gain[1], ipc[1])
            if why:
                violations.append({"rule": "ipc_convention", "files": [
                    Path(gain[0]["output"]).name, Path(ipc[0]["output"]).name], "detail": why})
    return {"checked": checked, "violations": violations}


def ipc_convention(gain_hdr: dict, ipc_hdr: dict, tolerance: float = 0.01) -> str | None:
    """Why a gain file and an IPC file of one detector disagree on IPC, or None.

    The gain records whether its variances were corrected for IPC (IPCCORR) and
    by what factor (IPCFACTR); the IPC file its couplings (IPCALPHX/Y/D).  A gain
    not corrected while the IPC file's coupling changes the variances by more than
    ``tolerance`` (or 3 standard errors of the IPC file's factor, IPCFERR, if
    more) is the apparent gain, too high by that factor; a corrected gain's
    factor must be the kernel's within that.
    """
    from .ipc import coupling_kernel, variance_factor
    alphas = [ipc_hdr.get(k) for k in ("IPCALPHX", "IPCALPHY", "IPCALPHD")]
    if any(a is None for a in alphas):
        return None                       # an IPC file that does not say its coupling
    factor = variance_factor(coupling_kernel(*[float(a) for a in alphas]))
    # a small data set measures the kernel no better than its standard error
    tolerance = max(tolerance, 3 * float(ipc_hdr.get("IPCFERR", 0.0) or 0.0))
    corrected = gain_hdr.get("IPCCORR")
    if corrected is None:
        return "the gain file does not record whether it is corrected for IPC (IPCCORR)"
    if not corrected:
        if abs(factor - 1) > tolerance:
            return (f"the gain is not corrected for IPC while the IPC file's coupling "
                    f"(alpha_x {alphas[0]}, alpha_y {alphas[1]}) makes the variances "
                    f"{factor:.4f} x too small (set ipc_correction: true)")
        return None
    measured = float(gain_hdr.get("IPCFACTR", 1.0))
    if abs(measured / factor - 1) > tolerance:
        return (f"the gain's IPC factor {measured:.4f} differs from the IPC file's "
                f"{factor:.4f} by more than {tolerance:.1%}")
    return None

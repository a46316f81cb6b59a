"""Closed-loop verification: each final reference file applied to held-out exposures.

A reference file can be valid in format and still wrong: a readnoise measured
at the wrong stage, a superbias offset, a saturation map turned by 90 degrees,
linearity coefficients left at zero.  Verification applies each final file,
with the calibration pipeline step that uses it, to exposures of the run that
did not go into it (the ``verification: holdout`` latest exposures of each
group, kept out of every reference file by stage 1), and scores the result
against a threshold of the configuration's ``verification`` section:

``superbias`` (held-out darks; dq_init, superbias)
    the superbias-subtracted zero frames: their median lies within
    ``superbias_offset_dn`` (plus 3 standard errors, from the scatter of the
    medians of all the held-out integrations: the bias drifts from one to the
    next) of 0, and their noise, each integration's column
    medians removed, is the readnoise file's one-read noise (readnoise /
    sqrt 2) within ``noise_tolerance``.
``readnoise`` / ``rdnoise`` (held-out darks; dq_init, saturation, superbias, refpix)
    the CDS differences (1-0, 3-2, ...) of the held-out ramps, divided by the
    file's readnoise, have a robust standard deviation of 1 within
    ``readnoise_tolerance``.
``dark`` (held-out darks; dq_init, saturation, superbias, refpix, linearity, dark_current)
    the dark-subtracted ramps' residual signal rate (median of the group
    differences per pixel, then the median over pixels) is 0 within
    ``dark_tolerance`` times the file's median dark rate plus 3 standard errors.
``linearity`` (held-out flats; dq_init, saturation, superbias, refpix, linearity)
    the linearised ramps are straight: a line fitted to each ramp below
    ``linearity_fit_fraction`` of the saturation level, the median fractional
    residual in each tenth of the saturation level up to it lies within
    ``linearity_tolerance`` (a ramp the correction flattens counts as -1); and
    at most ``linearity_max_uncorrected`` of the pixels are left uncorrected by
    the step (NO_LIN_CORR: NaN or all-zero coefficients) without the file
    flagging them NO_LIN_CORR (and without DO_NOT_USE).
``saturation`` (held-out flats; dq_init, saturation with n_pix_grow_sat=0)
    the step's first saturated group agrees with the plateau onset found in the
    held-out ramp (no earlier than 1 group before it, no later than 2 after):
    at most ``saturation_max_rate`` of the pixels whose ramps reach a plateau
    disagree.
``mask`` / ``bpm`` (held-out flats; dq_init, saturation, superbias, refpix, linearity)
    of the pixels the mask leaves unflagged, at most ``mask_max_rate`` are
    outliers of the held-out flat: their signal rate (the median group
    difference of each unsaturated ramp), over a 7x7 median of it,
    deviates by more than ``mask_outlier_sigma`` robust standard deviations in
    every integration.

Other reference types (gain) have no closed-loop test yet: that is recorded.
The scoring functions (``score_*``) are pure functions on arrays; the pipeline
runs in a process of its own per file (:func:`verify_file`), the other
reference files of the chain being this run's final files where it made them
and the configuration's ``reffile4ssb`` ones otherwise.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass

import numpy as np

from .dq import flag_value
from .stats import nanmedian, robust_stats

log = logging.getLogger(__name__)

__all__ = ["TESTS", "score_superbias", "score_readnoise", "score_dark", "score_linearity",
           "score_saturation", "score_mask", "verify_file", "verdict"]


@dataclass(frozen=True)
class Test:
    """One closed-loop test: its name, the held-out image type, the pipeline
    steps before scoring (the tested file's step among them), and the reference
    types without which it cannot run."""

    name: str
    imtype: str
    steps: tuple[str, ...]
    needs: tuple[str, ...]


_DARK_CHAIN = ("dq_init", "saturation", "superbias", "refpix")
_FLAT_CHAIN = ("dq_init", "saturation", "superbias", "refpix", "linearity")

#: reftype (jwst's name: rdnoise and bpm are readnoise and mask) -> its test.
TESTS: dict[str, Test] = {
    "superbias": Test("superbias_residual", "dark", ("dq_init", "superbias"), ("superbias",)),
    "readnoise": Test("readnoise_cds", "dark", _DARK_CHAIN, ("readnoise",)),
    "dark": Test("dark_residual", "dark", _DARK_CHAIN + ("linearity", "dark_current"),
                 ("dark", "superbias")),
    "linearity": Test("linearity_residual", "flat", _FLAT_CHAIN,
                      ("linearity", "saturation", "superbias")),
    "saturation": Test("saturation_onset", "flat", ("dq_init", "saturation"), ("saturation",)),
    "mask": Test("mask_outliers", "flat", _FLAT_CHAIN, ("mask", "saturation", "superbias")),
}

#: Pixel flags that keep a pixel out of a score.
_UNUSABLE = flag_value(["DO_NOT_USE", "REFERENCE_PIXEL"])
_SAT = flag_value("SATURATED")


def _check(quantity: str, value: float, passed: bool, threshold: str,
           band: tuple | None = None, **extra) -> dict:
    """One scored quantity; ``band``: the (low, high) values that pass, for plots."""
    out = {"quantity": quantity, "value": float(value), "threshold": threshold,
           "passed": bool(passed), **extra}
    if band is not None:
        out["band"] = [float(band[0]), float(band[1])]
    return out


def _robust_sigma(values) -> float:
    return robust_stats(values, max_values=None)[1]


def score_superbias(zero: np.ndarray, readnoise: np.ndarray | None, *, offset_dn: float,
                    noise_tolerance: float) -> list[dict]:
    """Score superbias-subtracted zero frames.

    zero : (nints, ny, nx) zero frames less the superbias, NaN where unusable.
    readnoise : (ny, nx) the readnoise file (CDS noise), or None (no noise check).
    """
    z = np.asarray(zero, np.float64)
    meds = np.array([robust_stats(frame)[0] for frame in z])
    meds = meds[np.isfinite(meds)]
    if meds.size == 0:
        return [_check("zero-frame residual median (DN)", np.nan, False, "no usable pixel")]
    m = float(np.mean(meds))
    se = float(np.std(meds, ddof=1) / np.sqrt(meds.size)) if meds.size > 1 else 0.0
    limit = offset_dn + 3 * se
    out = [_check("zero-frame residual median (DN)", m, abs(m) <= limit,
                  f"|x| <= {limit:.3g} ({offset_dn:g} + 3 x {se:.2g}, its standard error)",
                  band=(-limit, limit), per_integration=[round(float(v), 4) for v in meds])]
    if readnoise is not None:
        clean = z - nanmedian(np.moveaxis(z, -2, 0), axis=0)[:, None, :]   # column medians
        with np.errstate(all="ignore"):
            ratio = clean / (np.asarray(readnoise, np.float64) / np.sqrt(2.0))
        s = _robust_sigma(ratio)
        out.append(_check("zero-frame noise / (readnoise / sqrt 2)", s,
                          abs(s - 1) <= noise_tolerance, f"1 +- {noise_tolerance:g}",
                          band=(1 - noise_tolerance, 1 + noise_tolerance)))
    return out


def score_readnoise(cds: np.ndarray, readnoise: np.ndarray, *, tolerance: float) -> list[dict]:
    """Score CDS differences against the readnoise file.

    cds : (n, ny, nx) group differences, NaN where unusable; readnoise : (ny, nx).
    """
    with np.errstate(all="ignore"):
        z = np.asarray(cds, np.float64) / np.asarray(readnoise, np.float64)
    s = _robust_sigma(z)
    return [_check("held-out CDS scatter / readnoise file", s, abs(s - 1) <= tolerance,
                   f"1 +- {tolerance:g}", band=(1 - tolerance, 1 + tolerance))]


def score_dark(ramps: np.ndarray, tgroup: float, dark_rate: float, *,
               tolerance: float) -> list[dict]:
    """Score dark-subtracted dark ramps.

    ramps : (nints, ngroups, ny, nx) after the dark step, NaN where unusable.
    tgroup : [s]; dark_rate : [DN/s] the dark file's median signal rate.
    """
    r = np.asarray(ramps, np.float32)
    d = np.diff(r, axis=1).reshape(-1, *r.shape[2:])          # every difference of every int
    slope = nanmedian(d, axis=0) / tgroup                      # per pixel, robust to jumps
    med, sig = robust_stats(slope, max_values=None)
    n = int(np.isfinite(slope).sum())
    se = 1.2533 * sig / np.sqrt(max(n, 1))
    limit = tolerance * abs(dark_rate) + 3 * se
    return [_check("residual dark rate, median pixel (DN/s)", med, abs(med) <= limit,
                   f"|x| <= {limit:.3g} ({tolerance:g} x the dark's {dark_rate:.3g} DN/s "
                   f"+ 3 x {se:.2g})", band=(-limit, limit), dark_rate=float(dark_rate))]


def score_linearity(corrected: np.ndarray, raw: np.ndarray, usable: np.ndarray,
                    sat_signal: np.ndarray, *, tolerance: float,
                    fit_fraction: float = 0.5) -> list[dict]:
    """Score linearised flat ramps.

    corrected, raw : (nramps, ngroups, npix) the ramps after and before the
    linearity step (superbias subtracted); usable : bool, same shape (not
    saturated, not DO_NOT_USE); sat_signal : (npix,) the saturation level less
    the superbias [DN].
    """
    c = np.asarray(corrected, np.float64)
    raw = np.asarray(raw, np.float64)
    ok = np.asarray(usable, bool) & np.isfinite(c) & np.isfinite(raw)
    sat = np.asarray(sat_signal, np.float64)[None, None, :]
    with np.errstate(all="ignore"):
        u = raw / sat
    g = np.arange(c.shape[1], dtype=np.float64)[None, :, None]
    fit = ok & (u <= fit_fraction)
    w = fit.astype(np.float64)
    n = w.sum(1)
    sx, sy = (w * g).sum(1), (w * np.where(fit, c, 0)).sum(1)
    sxx, sxy = (w * g * g).sum(1), (w * g * np.where(fit, c, 0)).sum(1)
    with np.errstate(all="ignore"):
        det = n * sxx - sx * sx
        slope = (n * sxy - sx * sy) / det
        icpt = (sy - slope * sx) / n
        line = icpt[:, None, :] + slope[:, None, :] * g
        resid = np.where(slope[:, None, :] > 0, c / line - 1, -1.0)
    ramps = (n >= 3) & (det > 0)
    use = ok & ramps[:, None, :] & (u >= 0.1) & (u <= 1.0)
    edges = np.round(np.arange(0.1, 1.0001, 0.1), 2)
    centres, medians = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = use & (u >= lo) & (u < hi)
        if sel.sum() >= 20:
            centres.append(round(float((lo + hi) / 2), 3))
            medians.append(float(np.median(resid[sel])))
    if not medians:
        return [_check("linearised ramp, worst median fractional residual", np.nan, False,
                       "no usable linearised ramp reaches 20 % of saturation")]
    worst = float(np.max(np.abs(medians)))
    return [_check("linearised ramp, worst median fractional residual", worst,
                   worst <= tolerance, f"<= {tolerance:g} up to the saturation level",
                   band=(-tolerance, tolerance), plot={"x": centres, "y": [round(v, 6) for v in medians],
                         "xlabel": "signal / saturation level",
                         "ylabel": "median fractional residual from a line"})]


def score_saturation(raw: np.ndarray, flagged: np.ndarray, usable: np.ndarray, *,
                     max_rate: float, early_groups: int = 1,
                     late_groups: int = 2) -> list[dict]:
    """Score the saturation step's flags against the plateaus of raw flat ramps.

    raw : (nramps, ngroups, npix) dq_init ramps; flagged : bool, same shape
    (SATURATED set by the step); usable : (npix,) bool (pixels to judge).
    """
    from .saturation.saturation import plateau_levels
    raw = np.asarray(raw, np.float64)
    ngroups = raw.shape[1]
    onset = plateau_levels(raw[:, :, None, :])["onset"][:, 0, :]     # (nramps, npix)
    fl = np.asarray(flagged, bool)
    first = np.where(fl.any(1), np.argmax(fl, axis=1), ngroups)
    has = (onset >= 0) & np.asarray(usable, bool)[None, :]
    early = has & (first < onset - early_groups)
    late = has & (first > onset + late_groups) & (onset + late_groups < ngroups)
    judged = has.any(0)
    bad = (early | late).any(0)
    if not judged.any():
        return [_check("pixels whose saturation flags miss the plateau (fraction)", np.nan,
                       False, "no held-out ramp reaches a plateau")]
    rate = float(bad[judged].mean())
    off = (first - onset)[has]
    lo, hi = -4, 5
    hist = np.bincount(np.clip(off, lo, hi) - lo, minlength=hi - lo + 1)
    return [_check("pixels whose saturation flags miss the plateau (fraction)", rate,
                   rate <= max_rate, band=(0, max_rate), threshold=
                   f"<= {max_rate:g} (first flagged group from {early_groups} before to "
                   f"{late_groups} after the plateau onset)",
                   early=int(early.any(0).sum()), late=int(late.any(0).sum()),
                   judged=int(judged.sum()),
                   plot={"x": list(range(lo, hi + 1)), "y": [int(v) for v in hist],
                         "xlabel": "first saturated group - plateau onset (groups; ends clipped)",
                         "ylabel": "ramps", "kind": "bar"})]


def score_mask(signal: np.ndarray, masked: np.ndarray, *, outlier_sigma: float,
               max_rate: float, box: int = 7) -> list[dict]:
    """Score a mask against a held-out flat.

    signal : (nints, ny, nx) signal rate per integration, NaN where unusable;
    masked : (ny, nx) bool, the pixels the mask flags (left out).
    """
    from scipy.ndimage import median_filter
    s = np.asarray(signal, np.float64)
    masked = np.asarray(masked, bool)
    level = nanmedian(s, axis=0)
    fill = np.where(np.isfinite(level) & ~masked, level, np.nan)
    centre = robust_stats(fill)[0]
    smooth = median_filter(np.where(np.isfinite(fill), fill, centre), size=box, mode="nearest")
    with np.errstate(all="ignore"):
        norm = s / smooth[None]
    sigma = _robust_sigma(norm[:, ~masked])
    with np.errstate(all="ignore"):
        dev = np.abs(norm - 1) / sigma
    dev = np.where(np.isfinite(dev), dev, np.inf).min(axis=0)        # deviant in every int
    judged = ~masked
    outliers = judged & (dev > outlier_sigma)
    rate = float(outliers.sum() / max(judged.sum(), 1))
    return [_check("unmasked outliers of the held-out flat (fraction)", rate, rate <= max_rate,
                   band=(0, max_rate), threshold=f"<= {max_rate:g} (beyond {outlier_sigma:g} sigma in every integration)",
                   outliers=int(outliers.sum()), judged=int(judged.sum()),
                   sigma=float(sigma))]


def verdict(checks: list[dict]) -> str:
    return "passed" if checks and all(c["passed"] for c in checks) else "failed"


# ---- the pipeline side: one process per verified file ----------------------

def _steps_parameters(chain, refs: dict, last: str | None = None) -> dict:
    """Detector1Pipeline ``steps``: the chain's steps (up to ``last``) with their
    reference files, every other step skipped."""
    from .pipeline.steps import STEP_INFO
    order = list(chain) if last is None else list(chain[:chain.index(last) + 1])
    params = {}
    for step, (_, _, reftypes) in STEP_INFO.items():
        if step not in order:
            params[step] = {"skip": True}
            continue
        p = {"skip": False}
        for rt in reftypes:
            if refs.get(rt):
                p[f"override_{rt}"] = refs[rt]
        if step == "saturation":
            p["n_pix_grow_sat"] = 0           # the file's own flags, not their neighbours'
        params[step] = p
    return params


def _run_chain(path, chain, refs, last=None):
    from jwst.pipeline import Detector1Pipeline
    return Detector1Pipeline.call(str(path), steps=_steps_parameters(chain, refs, last),
                                  save_results=False)


def _masked_data(model) -> tuple[np.ndarray, np.ndarray]:
    """(data as float32 with NaN where unusable, pixel usable (ny, nx))."""
    data = np.asarray(model.data, np.float32).copy()
    gdq = np.asarray(model.groupdq)
    pdq = np.asarray(model.pixeldq)
    data[(gdq & (_SAT | flag_value("DO_NOT_USE"))) > 0] = np.nan
    usable = (pdq & _UNUSABLE) == 0
    return data, usable


def _sample(npix: int, most: int = 1 << 18) -> slice:
    return slice(None, None, max(1, int(np.ceil(npix / most))))


def _ref_data(model, path, attr: str = "data") -> np.ndarray:
    """An array (SCI, or ``attr``) of reference file ``path`` cut to the exposure's
    subarray, as the pipeline's steps cut it."""
    from jwst.lib.reffile_utils import get_subarray_model, ref_matches_sci
    from stdatamodels.jwst import datamodels as dm
    with dm.open(path) as ref:
        if not ref_matches_sci(model, ref):
            ref = get_subarray_model(model, ref)
        return np.asarray(getattr(ref, attr))


def _zero_frames(path, refs: dict):
    """(superbias-subtracted zero frames with NaN where unusable, the readnoise
    cut to the exposure or None) of one held-out dark."""
    model = _run_chain(path, TESTS["superbias"].steps, refs)
    data, usable = _masked_data(model)
    zero = np.where(usable[None], data[:, 0], np.nan)
    return zero, (_ref_data(model, refs["readnoise"]) if refs.get("readnoise") else None)


def _score_one(test: Test, path, refs: dict, thresholds: dict, reftype: str) -> list[dict]:
    """Run the test's chain on one held-out exposure and score it."""
    th = thresholds
    if test.name == "readnoise_cds":
        model = _run_chain(path, test.steps, refs)
        data, usable = _masked_data(model)
        ng = data.shape[1] - data.shape[1] % 2
        cds = (data[:, 1:ng:2] - data[:, 0:ng:2]).reshape(-1, *data.shape[2:])
        cds[:, ~usable] = np.nan
        return score_readnoise(cds, _ref_data(model, refs[reftype]),
                               tolerance=th["readnoise_tolerance"])
    if test.name == "dark_residual":
        model = _run_chain(path, test.steps, refs)
        data, usable = _masked_data(model)
        data[:, :, ~usable] = np.nan
        tgroup = float(model.meta.exposure.group_time)
        dark = _ref_data(model, refs["dark"])
        dark = dark.reshape(-1, *dark.shape[-3:])[0]                 # (ngroups, ny, nx)
        ng = min(dark.shape[0], data.shape[1])
        rate = float(robust_stats((dark[ng - 1] - dark[0]) / ((ng - 1) * tgroup))[0]) \
            if ng > 1 else 0.0
        return score_dark(data, tgroup, rate, tolerance=th["dark_tolerance"])
    if test.name == "linearity_residual":
        from jwst.linearity import LinearityStep
        model = _run_chain(path, test.steps, refs, last="refpix")
        raw, usable = _masked_data(model)
        done = LinearityStep.call(model, override_linearity=refs["linearity"])
        corr = np.asarray(done.data, np.float32)
        pdq = np.asarray(done.pixeldq)
        nolin = flag_value("NO_LIN_CORR")
        # uncorrected by the step, and the file does not say so (zero coefficients)
        silent = (((pdq & nolin) > 0) & ((pdq & _UNUSABLE) == 0)
                  & ((_ref_data(model, refs["linearity"], "dq") & nolin) == 0))
        usable &= (pdq & flag_value("NO_LIN_CORR")) == 0
        sat = _ref_data(model, refs["saturation"])
        bias = _ref_data(model, refs["superbias"]) if refs.get("superbias") else 0.0
        npix = usable.size
        pick = _sample(npix)
        flat = (lambda a: a.reshape(a.shape[0], a.shape[1], npix)[:, :, pick])
        ok = np.isfinite(flat(raw)) & usable.ravel()[pick][None, None, :]
        frac = float(silent.mean())
        limit = th["linearity_max_uncorrected"]
        return score_linearity(flat(corr), flat(np.nan_to_num(raw)), ok,
                               (sat - bias).ravel()[pick],
                               tolerance=th["linearity_tolerance"],
                               fit_fraction=th["linearity_fit_fraction"]) + [
            _check("pixels the step leaves uncorrected (NO_LIN_CORR) that the file does not "
                   "flag (fraction)", frac, frac <= limit, f"<= {limit:g}", band=(0, limit))]
    if test.name == "saturation_onset":
        model = _run_chain(path, test.steps, refs)
        data = np.asarray(model.data, np.float32)
        gdq = np.asarray(model.groupdq)
        usable = (np.asarray(model.pixeldq)
                  & (_UNUSABLE | flag_value("NO_SAT_CHECK"))) == 0
        npix = usable.size
        pick = _sample(npix)
        shape = (data.shape[0], data.shape[1], npix)
        return score_saturation(data.reshape(shape)[:, :, pick],
                                (gdq.reshape(shape)[:, :, pick] & _SAT) > 0,
                                usable.ravel()[pick], max_rate=th["saturation_max_rate"])
    if test.name == "mask_outliers":
        model = _run_chain(path, test.steps, refs)
        data, _ = _masked_data(model)
        keep = flag_value(["SATURATED", "NO_SAT_CHECK"])
        masked = (np.asarray(model.pixeldq, np.int64) & ~keep) > 0
        tgroup = float(model.meta.exposure.group_time)
        # the median group difference of each ramp: a cosmic ray's jump does not count
        signal = np.stack([nanmedian(np.diff(ramp, axis=0), axis=0) for ramp in data]) / tgroup
        return score_mask(signal, masked, outlier_sigma=th["mask_outlier_sigma"],
                          max_rate=th["mask_max_rate"])
    raise ValueError(f"unknown test {test.name}")


def _verify_process(spec: dict) -> dict:
    """In the verification process: every held-out exposure of one file."""
    from .pipeline.offline import offline_crds
    test = TESTS[spec["reftype"]]
    out = {"test": test.name, "steps": list(test.steps), "heldout": spec["heldout"],
           "refs": spec["refs"]}
    t0 = time.perf_counter()
    try:
        th = spec["thresholds"]
        with offline_crds(spec["crds_dir"]):
            if test.name == "superbias_residual":
                # the zero frames' offset is judged against the drift from one
                # integration to the next: every held-out integration together
                frames = [_zero_frames(p, spec["refs"]) for p in spec["heldout"]]
                per_file = [score_superbias(np.concatenate([f[0] for f in frames]),
                                            frames[0][1], offset_dn=th["superbias_offset_dn"],
                                            noise_tolerance=th["noise_tolerance"])]
            else:
                per_file = [_score_one(test, p, spec["refs"], th, spec["reftype"])
                            for p in spec["heldout"]]
    except Exception as exc:     # noqa: BLE001 - a failing verification is a result
        out.update(status="error", error=f"{type(exc).__name__}: {exc}",
                   traceback=traceback.format_exc(limit=4))
        return out
    # the worst held-out exposure decides each check
    checks = []
    for k, first in enumerate(per_file[0]):
        row = dict(first)
        for other in per_file[1:]:
            c = other[k]
            if not c["passed"] or (row["passed"] and abs(c["value"]) > abs(row["value"])):
                row = dict(c)
        row["per_exposure"] = [round(f[k]["value"], 6) for f in per_file]
        checks.append(row)
    out.update(status=verdict(checks), checks=checks,
               seconds=round(time.perf_counter() - t0, 2))
    return out


def verify_file(path, reftype: str, heldout: list, refs: dict, thresholds: dict, crds_dir,
                timeout: float = 1800.0) -> dict:
    """Verify one final reference file on held-out exposures, offline.

    ``refs``: reftype -> file for the chain's other steps (this file is used for
    its own reftype).  The pipeline runs in a separate process.  Returns the
    test's name, its status (passed, failed, skipped, error), the checks with
    their values and thresholds, and what ran.
    """
    from .pipeline.plan import normalize_reftype
    rt = normalize_reftype(reftype)
    test = TESTS.get(rt)
    if test is None:
        return {"status": "skipped", "reason": f"no closed-loop test for reftype {reftype}"}
    if not heldout:
        return {"status": "skipped", "test": test.name,
                "reason": f"no held-out {test.imtype} exposure of this detector and readout "
                          f"(every one went into the reference files; "
                          f"set verification: holdout: 1 to keep one out)"}
    refs = {normalize_reftype(k): str(v) for k, v in refs.items() if v}
    refs[rt] = str(path)
    for other in ("refpix", "sirskernel"):       # the near-infrared refpix step needs none
        refs.setdefault(other, "N/A")
    lacking = [n for n in test.needs if not refs.get(n)]
    if lacking:
        return {"status": "skipped", "test": test.name,
                "reason": f"no {', '.join(lacking)} reference file for the steps "
                          f"{', '.join(test.steps)} (neither made by this run nor in "
                          f"reffile4ssb)"}
    spec = {"reftype": rt, "heldout": [str(h) for h in heldout], "refs": refs,
            "thresholds": thresholds, "crds_dir": str(crds_dir)}
    try:
        from .pipeline.launch import run_function
        proc = run_function("jwst_reffiles.verify:verify_process", [json.dumps(spec)],
                            timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "error", "test": test.name, "error": f"no result in {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("VERIFY-RESULT ")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1][len("VERIFY-RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"status": "error", "test": test.name,
            "error": f"exit status {proc.returncode}: " + " | ".join(tail)}


def summary_line(result: dict) -> str:
    """One line: the test, its verdict and its checks' values."""
    if result.get("status") in ("passed", "failed"):
        parts = [f"{c['quantity']} {c['value']:.4g} ({'ok' if c['passed'] else 'FAIL'}, "
                 f"{c['threshold']})" for c in result["checks"]]
        return (f"{result['test']} {result['status'].upper()} on "
                f"{len(result['heldout'])} held-out exposure(s): " + "; ".join(parts))
    return (f"{result.get('test', 'verification')} {result.get('status')}: "
            f"{result.get('reason') or result.get('error', '')}")


def verify_process(argv) -> int:
    """The verification process (:func:`jwst_reffiles.pipeline.launch.run_function`):
    ``argv[0]`` the JSON spec; the result on a ``VERIFY-RESULT`` line of stdout."""
    logging.disable(logging.WARNING)
    from .pipeline.offline import prepare_pipeline_process
    prepare_pipeline_process()
    print("VERIFY-RESULT " + json.dumps(_verify_process(json.loads(argv[0])), default=str))
    return 0


if __name__ == "__main__":   # the verification process, started by hand
    sys.exit(verify_process(sys.argv[1:]))

"""HOT, WARM, RC, low-pedestal, TELEGRAPH (many jumps) and noisy pixels from darks.

Status: on simulated SUB320 darks (5 files x 2 integrations x 30 groups, through
the real pipeline, ``hot_threshold=0.7``, ``max_jump_limit=1``) HOT, RC, low
pedestal and TELEGRAPH pixels are found with precision and recall 1.0; WARM
with precision 1.0 and recall 0.6 (the faintest are below a 5 sigma detection
in 32 s ramps).  The same holds for every class on the demo's SUB160 darks
(4 files x 25 integrations x 30 groups of 8 s, ``mkrefs demo``).

Inputs, per dark exposure: the slope image (``*_rate.fits``; ``*_rateints.fits``
beside it is used for per-integration slopes when present), the jump-step
product (``*_jump.fits``: GROUPDQ with JUMP_DET and SATURATED) and the ramp
fitting's optional product (``*_fitopt.fits``: PEDESTAL).  They should be
calibrated *without* dark subtraction (the dark current is what is searched)
and with a mask that does not make pixels DO_NOT_USE (such pixels get no
slope).  For MIRI, raw ramps are not needed by this implementation.

Per file the search accumulates (memory does not grow with the number of
files):

* saturated in the first group -> counts towards HOT (``max_saturated_fraction``
  of all integrations);
* clean slopes (integrations with no jump in the pixel): their mean and
  scatter; a mean more than ``noisy_threshold`` clipped standard deviations
  above the clipped mean is HOT (or WARM below ``hot_threshold`` DN/s when it
  is given); a scatter that far above the typical scatter is noisy
  (UNRELIABLE_SLOPE) -- pixels with fewer than ``min_clean_slopes`` clean
  slopes are not judged (the predecessor flagged every such pixel);
* the pedestal (ramp intercept, less the level expected for the pixel's dark
  rate: :func:`pedestal_residual`) more than ``pedestal_sigma_threshold``
  above (RC) or below (low pedestal) the detector's clipped mean (where it was
  measured in at least half the integrations), and, per
  integration, more than ``max_jump_limit`` jumps (high_cr) with jumps
  concentrated early in the ramp (``jump_ratio_threshold``,
  ``early_cutoff_fraction``: RC, when so in at least half a file's
  integrations).  A pixel counts as RC, low pedestal or
  high_cr when it is so in at least the given fraction of the files;
* the pedestal integration by integration: one that switches between an
  ordinary level and one common high level (:func:`switching_pedestal`) is
  random telegraph noise (high_cr), however few steps its ramps show, and not
  reset decay (whose pedestal is high in every integration).

Jumps count only where the ramp really steps (:func:`real_jumps`): jwst also
flags the four neighbours of every jump, and misses small telegraph switches,
so steps are also found in the ramps themselves, measured against the noise of
the pixel's unsaturated differences (a hot pixel's plateau is flat; its rising
groups carry shot noise).  A high dark rate from a straight
ramp is HOT (or WARM); from a ramp that rises early and flattens it is RC, and
a straight high-rate pixel is HOT even if its pedestal is high (the pedestal of
a hot pixel is unreliable).  RC and saturated pixels are not also TELEGRAPH; a
pixel whose pedestal switches is not RC.  ``flag_values`` maps each type to DQ mnemonics
(``noisy`` -> UNRELIABLE_SLOPE and ``warm`` -> WARM unless given);
``do_not_use`` lists the types also flagged DO_NOT_USE.  Defaults are never
shared mutable objects.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..detectors import reference_pixel_mask
from ..detectors import strip_border as _strip
from ..dq import flag_value
from ..io import RampFile
from ..stats import (ROBUST_MAX_VALUES, as_float, concurrently, image_stats, in_threads,
                     robust_stats, subsample_step)

log = logging.getLogger(__name__)

__all__ = ["find_bad_pix", "real_jumps", "ramp_slopes", "find_pix_with_many_jumps", "pedestal_stats",
           "pedestal_deviation", "pedestal_residual", "switching_pedestal",
           "saturated_in_all_groups", "slopes_not_cr", "combine_clean_slopes",
           "combine_bad_pixel_types", "apply_flags", "check_metadata", "add_refpix",
           "read_pedestal_data", "read_slope_data", "read_slope_files",
           "read_slope_integrations", "extract_group2", "plot_image",
           "plot_histogram_stats", "DEFAULT_FLAG_VALUES", "DEFAULT_DO_NOT_USE"]

DEFAULT_FLAG_VALUES = {"hot": ("HOT",), "rc": ("RC",), "low_pedestal": ("OTHER_BAD_PIXEL",),
                       "high_cr": ("TELEGRAPH",), "warm": ("WARM",),
                       "noisy": ("UNRELIABLE_SLOPE",)}
DEFAULT_DO_NOT_USE = ("hot", "rc", "low_pedestal", "high_cr")


# ---- pure functions ---------------------------------------------------------

def _early_groups(ngroups, early_cutoff_fraction):
    """The number of groups counted as the early part of a ramp (at least 1)."""
    if not 0 < early_cutoff_fraction <= 0.5:
        raise ValueError(f"early_cutoff_fraction must be in (0, 0.5], got {early_cutoff_fraction}")
    return max(1, int(round(ngroups * early_cutoff_fraction)))


def find_pix_with_many_jumps(jump_map, max_jump_limit=10, jump_ratio_threshold=5,
                             early_cutoff_fraction=0.25):
    """(high_jumps, potential_rc, number_of_jumps) from one integration's jump flags
    (ngroups, y, x), as documented.

    high_jumps: at least ``max_jump_limit`` jumps.  potential_rc: high_jumps whose
    jump rate in the first ``int(early_cutoff_fraction * ngroups)`` groups is at least
    ``jump_ratio_threshold`` times the rate in as many last groups (a late rate of 0
    counts as 1e-6).  Boolean maps and the count of jumps per pixel.
    """
    if early_cutoff_fraction > 0.5:
        raise ValueError("early_cutoff_fraction must be less than or equal to 0.5, got "
                         f"{early_cutoff_fraction}")
    jumps = np.asarray(jump_map).astype(np.int32)
    ngroups = jumps.shape[0]
    number = jumps.sum(axis=0)
    high = number >= max_jump_limit
    n_early = int(early_cutoff_fraction * ngroups)
    late_start = int(ngroups - early_cutoff_fraction * ngroups)
    with np.errstate(divide="ignore", invalid="ignore"):
        early_rate = jumps[:n_early].sum(axis=0) / n_early
        late_rate = jumps[late_start:].sum(axis=0) / (ngroups - late_start)
    late_rate[late_rate == 0] = 1e-6
    with np.errstate(invalid="ignore"):
        potential_rc = (early_rate / late_rate >= jump_ratio_threshold) & high
    return high, potential_rc, number


def _pixels(a):
    """A (ngroups, y, x) array as (ngroups, npix) without copying when possible."""
    a = np.asarray(a)
    return a.reshape(a.shape[0], -1)


def _dq(groupdq):
    """A GROUPDQ array as it is when of an unsigned type (jwst's are uint8), else uint32."""
    groupdq = np.asarray(groupdq)
    return groupdq if groupdq.dtype in (np.uint8, np.uint16, np.uint32) else \
        groupdq.astype(np.uint32)


def _difference_noise(ramp, groupdq, skip_bits=None):
    """(median, robust sigma) of each pixel's group differences, leaving out those
    onto a group with any of ``skip_bits`` (default JUMP_DET and SATURATED).

    A pixel that jumps often must not hide its jumps by inflating its own noise
    estimate; nor do differences on a saturation plateau count (they are flat,
    and would make the shot noise of a hot pixel's rising groups look like
    steps).  A pixel with every difference left out gets the statistics of all
    of them.  The sigma is 1.4826 x the median absolute deviation.
    """
    from ._rampkernel import difference_noise
    skip = flag_value(["JUMP_DET", "SATURATED"]) if skip_bits is None else skip_bits
    ramp = as_float(ramp)
    shape = ramp.shape[1:]
    med = np.empty(int(np.prod(shape)))
    sigma = np.empty_like(med)
    r, dq = _pixels(ramp), _pixels(_dq(groupdq))
    in_threads(lambda a, b: difference_noise(r[:, a:b], dq[:, a:b], int(skip), med[a:b],
                                             sigma[a:b]), med.size)
    return med.reshape(shape), sigma.reshape(shape)


def real_jumps(ramp, groupdq, nsigma=5.0, step_nsigma=4.0, sigma=None):
    """Groups (ngroups, y, x) where the pixel's own ramp steps.

    jwst's jump step also flags the four neighbours of every jump; such a flag
    marks no step in the pixel's own ramp, so a flag counts only when the group
    difference it sits on is more than ``nsigma`` robust standard deviations
    (from the pixel's unflagged differences) from their median.  Steps jwst
    did not flag count too when beyond ``step_nsigma`` from the running median
    of 5 differences (the ends repeated): small random telegraph switches often
    escape its threshold; not on, or within three groups before, a saturated
    group (nonlinearity is strongest there).

    ``sigma`` (per pixel) replaces the scatter estimated from this ramp alone:
    the pixel's noise from all its integrations is far more precise than from
    one short ramp, whose underestimates would pass for steps.  With fewer
    than 3 groups there is no noise to judge by: jwst's JUMP_DET flags count.
    """
    from ._rampkernel import real_jumps as kernel
    groupdq = _dq(groupdq)
    ramp = as_float(ramp)
    out = np.empty(ramp.shape, dtype=bool)
    use_sigma = sigma is not None
    sig = (np.ascontiguousarray(np.broadcast_to(np.asarray(sigma, np.float64),
                                                ramp.shape[1:]).ravel())
           if use_sigma else np.empty(0))
    r, dq, o = _pixels(ramp), _pixels(groupdq), _pixels(out)
    bits = int(flag_value("JUMP_DET")), int(flag_value("SATURATED"))

    pairs = _difference_network(r.shape[0])

    def work(a, b):
        kernel(r[:, a:b], dq[:, a:b], bits[0], bits[1], float(nsigma), float(step_nsigma),
               sig[a:b] if use_sigma else sig, use_sigma, pairs, o[:, a:b])
    in_threads(work, o.shape[1])
    return out


def _difference_network(ngroups: int) -> np.ndarray:
    """The sorting network of a ramp's ngroups - 1 differences for the
    kernels' tile path (empty where the per-pixel path does every pixel:
    fewer than 3 groups, or more differences than networks are used for)."""
    from .._clipkernel import NETWORK_MAX, sorting_network
    if 3 <= ngroups <= NETWORK_MAX + 1:
        return sorting_network(ngroups - 1)
    return np.empty((0, 2), np.int64)


def ramp_slopes(ramp):
    """(whole-ramp slope, second-half slope) per pixel of one integration, per group.

    Least-squares slopes of a ramp (ngroups, y, x); the second half is the
    groups from ngroups // 2 on (the whole ramp when that leaves one group).
    NaN for a ramp of one group.
    """
    from ._rampkernel import ramp_slopes as kernel
    ramp = as_float(ramp)
    if ramp.shape[0] < 2:
        nan = np.full(ramp.shape[1:], np.nan)
        return nan, nan.copy()
    r = _pixels(ramp)
    whole = np.empty(r.shape[1])
    late = np.empty(r.shape[1])
    in_threads(lambda a, b: kernel(r[:, a:b], whole[a:b], late[a:b]), r.shape[1])
    return whole.reshape(ramp.shape[1:]), late.reshape(ramp.shape[1:])


#: find_bad_pix's per-pixel accumulators, in _rampkernel.integration_pass's order
_ACCUMULATORS = ("sat_count", "bright_count", "ped_high_n", "ped_normal_n", "ped_n",
                 "ped_high_sum", "ped_high_sq", "s_sum", "s_sq", "n_clean", "whole_sum",
                 "late_sum", "diff_sq", "n_curv")
_COUNTS = {"sat_count", "bright_count", "ped_high_n", "ped_normal_n", "ped_n", "n_clean",
           "n_curv"}


def _integration_pass(ramp, groupdq, slope, pedestal, noise, ref, acc, high_file, rc_ints,
                      pedestal_sigma_threshold, max_jump_limit, jump_ratio_threshold,
                      early_cutoff_fraction):
    """Add one integration to the accumulators ``acc`` (and the file's
    ``high_file`` / ``rc_ints`` maps); the compiled pass reads each pixel's
    ramp once (:func:`_rampkernel.integration_pass`; the tests compare it with
    :func:`real_jumps`, :func:`ramp_slopes`
    and :func:`pedestal_deviation` composed).

    Detector-wide levels first: saturated by the second read counts only
    where the pixel's own level is far above the detector's (jwst also flags
    the neighbours of a saturating pixel, whose values are ordinary); a last
    group far above the rest is "bright" (reset decay never gets there); the
    pedestal is judged in the detector's clipped standard deviations.
    """
    from ._rampkernel import integration_pass
    ramp = as_float(ramp)
    ngroups = ramp.shape[0]
    groupdq = _dq(groupdq)
    g1 = min(1, ngroups - 1)
    (med, mad), (last_med, last_sig), (ped_mean, ped_std) = concurrently(
        lambda: robust_stats(ramp[g1]), lambda: robust_stats(ramp[-1]),
        lambda: _mean_std(pedestal, mask=ref))
    r, dq = _pixels(ramp), _pixels(groupdq)
    slope = np.ravel(as_float(slope))
    pedestal = np.ravel(as_float(pedestal))
    use_sigma = noise is not None
    sig = np.ravel(np.asarray(noise, np.float64)) if use_sigma else np.empty(0)
    flat = [acc[k].reshape(-1) for k in _ACCUMULATORS]
    hf, rc = high_file.reshape(-1), rc_ints.reshape(-1)
    args = (int(flag_value("JUMP_DET")), int(flag_value("SATURATED")), 5.0, 4.0,
            _difference_network(ngroups), g1,
            float(med + 20 * max(mad, 1.0)), float(last_med + 20 * max(last_sig, 1.0) + 1000),
            float(ped_mean), float(ped_std), float(pedestal_sigma_threshold),
            int(max_jump_limit), _early_groups(ngroups, early_cutoff_fraction),
            float(jump_ratio_threshold))

    def work(a, b):
        integration_pass(r[:, a:b], dq[:, a:b], slope[a:b], pedestal[a:b],
                         sig[a:b] if use_sigma else sig, use_sigma, *args,
                         *(f[a:b] for f in flat[:7]), hf[a:b], rc[a:b],
                         *(f[a:b] for f in flat[7:]))
    in_threads(work, slope.size)


def pedestal_stats(pedestal_array, threshold=5, mask=None):
    """The map of suspicious pedestals, as documented: more than ``threshold``
    standard deviations above or below the median (of the pixels outside ``mask``)."""
    ped = np.asarray(pedestal_array)
    values = ped if mask is None else ped[~np.asarray(mask, bool)]
    median, std = np.median(values), np.std(values)
    return (ped > median + std * threshold) | (ped < median - std * threshold)


def _pedestal_outliers(pedestal_array, threshold=5, mask=None):
    """(high, low) maps: pedestal more than ``threshold`` clipped stdevs above / below the mean."""
    mean, std = _mean_std(pedestal_array, mask)
    ped = np.asarray(pedestal_array)
    with np.errstate(invalid="ignore"):
        return ((ped > mean + threshold * std).astype(np.uint8),
                (ped < mean - threshold * std).astype(np.uint8))


def pedestal_residual(pedestal_image, slope_image, mask=None, nsigma=5.0, iterations=3):
    """The pedestal less the level expected for the pixel's dark rate.

    A ramp fit's pedestal (its intercept) falls with the pixel's dark rate
    (the superbias holds the dark signal of the zero frame, and the fit
    extrapolates back from it), so a pixel with no dark current -- a dead one
    -- has a pedestal above the detector's, significantly so once many
    integrations are averaged.  The line pedestal = a + b * rate is fitted over
    the ordinary pixels (those outside ``mask``, iteratively clipped at
    ``nsigma`` robust standard deviations of rate and residual; on an even
    subsample of ``stats.ROBUST_MAX_VALUES`` pixels on larger detectors) and
    taken off.
    """
    # float32 images as they are: converted to float64 in the arithmetic
    ped, rate = as_float(pedestal_image), as_float(slope_image)
    full = (ped, rate)
    # the line is a detector-wide quantity: fitted on an even subsample of
    # at most ROBUST_MAX_VALUES pixels (every k-th; all on smaller detectors)
    step = subsample_step(ped.shape, ROBUST_MAX_VALUES)
    ped, rate = (np.ascontiguousarray(a.ravel()[::step], dtype=np.float64) for a in full)
    use = np.isfinite(ped) & np.isfinite(rate)
    if mask is not None:
        use &= ~np.asarray(mask, bool).ravel()[::step]
    if use.sum() < 10:
        return full[0].astype(np.float64)

    med, sig = robust_stats(rate[use])
    use &= np.abs(rate - med) <= nsigma * max(sig, 1e-12)
    a, b = 0.0, np.median(ped[use]) if use.any() else 0.0
    for _ in range(iterations):
        if use.sum() < 10:
            break
        a, b = _line_fit(rate[use], ped[use])
        res = ped - (a * rate + b)
        rmed, rsig = robust_stats(res[use])
        new = use & (np.abs(res - rmed) <= nsigma * max(rsig, 1e-12))
        if new.sum() == use.sum():
            break
        use = new
    ped, rate = full
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.multiply(rate, a, dtype=np.float64)
        out += b
        np.subtract(ped, out, out=out, dtype=np.float64)
        # a pixel with no finite rate: its pedestal less the line's intercept
        blank = ~np.isfinite(rate)
        if blank.any():
            out[blank] = ped[blank].astype(np.float64) - b
    return out


def _line_fit(x, y):
    """(slope, intercept) of the least-squares line through (x, y) (closed form:
    np.polyfit's Vandermonde least squares is 20x slower on a full frame)."""
    xm, ym = x.mean(), y.mean()
    dx = x - xm
    var = float(np.dot(dx, dx))
    slope = float(np.dot(dx, y - ym)) / var if var > 0 else 0.0
    return slope, float(ym - slope * xm)


def pedestal_deviation(pedestal_image, mask=None):
    """One integration's pedestal in clipped standard deviations from the detector's clipped mean."""
    mean, std = _mean_std(pedestal_image, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.asarray(pedestal_image, dtype=np.float64) - mean) / std


def switching_pedestal(n_high, n_normal, high_sum, high_sq, min_integrations=2,
                       max_spread=3.0):
    """Pixels whose pedestal switches between two levels from one integration to the next.

    Random telegraph noise leaves the reset level in one of two states: high in
    some integrations (``n_high``: more than the pedestal threshold above the
    detector), ordinary in others (``n_normal``), and the high values share one
    level (their standard deviation, from ``high_sum`` and ``high_sq`` in units
    of the pedestal noise, at most ``max_spread``).  Reset decay raises the
    pedestal in every integration, and a cosmic ray before the first read
    raises it by a random amount, so neither looks like this.
    """
    n_high = np.asarray(n_high)
    out = (n_high >= min_integrations) & (np.asarray(n_normal) >= min_integrations)
    # the spread only where both counts allow (a few pixels: no full-frame arithmetic)
    idx = np.flatnonzero(out)
    n = n_high.ravel()[idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.asarray(high_sum).ravel()[idx] / n
        spread = np.sqrt(np.maximum(np.asarray(high_sq).ravel()[idx] / n - mean ** 2, 0) * n
                         / np.maximum(n - 1, 1))
    out.ravel()[idx] = spread <= max_spread
    return out


def saturated_in_all_groups(pedestal_array, first_group_sat):
    """1 where a pixel is saturated in all groups: pedestal 0 and the first group's
    DQ SATURATED (2; a float map of 0/2 too), else 0."""
    first = np.asarray(first_group_sat)
    if first.dtype.kind in "iub":
        sat = (first & flag_value("SATURATED")) > 0
    else:
        sat = first == flag_value("SATURATED")
    return ((np.asarray(pedestal_array) == 0) & sat).astype(int)


def slopes_not_cr(slope, number_of_jumps):
    """(clean_slope, iclean): the slope where no jump was found (NaN elsewhere), and 1/0."""
    clean = np.asarray(number_of_jumps) == 0
    return np.where(clean, slope, np.nan).astype(float), clean.astype(int)


def combine_clean_slopes(slope_stack, islope_stack):
    """(mean, stdev, number of good slopes) through a stack of clean slopes (NaN
    where a slope had a jump) and their 1/0 flags, as documented: the mean and
    (ddof 0) standard deviation of the finite slopes; the deviation NaN where fewer
    than 5 slopes are good."""
    slopes = np.asarray(slope_stack, dtype=np.float64)
    n = np.asarray(islope_stack).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # all-NaN pixels
        mean, std = np.nanmean(slopes, axis=0), np.nanstd(slopes, axis=0)
    std[n < 5] = np.nan
    return mean, std, n


def apply_flags(pixmap, flag_list):
    """A 0/1 map turned into DQ values of the given mnemonics."""
    return np.where(np.asarray(pixmap) > 0, np.uint32(flag_value(list(flag_list))), np.uint32(0))


def combine_bad_pixel_types(sat_map, rc_map, low_pedestal_map, high_cr_map):
    """The bitwise OR of the four maps of DQ values (each from :func:`apply_flags`)."""
    return np.bitwise_or.reduce([np.asarray(m) for m in (sat_map, rc_map, low_pedestal_map,
                                                         high_cr_map)])


def _combine_types(sat_map, rc_map, low_pedestal_map, high_cr_map, flag_values=None,
                   do_not_use=DEFAULT_DO_NOT_USE, **other_maps):
    """The DQ map of the bad pixel types from 0/1 maps (hot = saturated map, plus
    any other types), each with its ``flag_values`` and DO_NOT_USE if in ``do_not_use``."""
    flag_values = {**DEFAULT_FLAG_VALUES, **(flag_values or {})}
    maps = {"hot": sat_map, "rc": rc_map, "low_pedestal": low_pedestal_map,
            "high_cr": high_cr_map, **other_maps}
    final = np.zeros(np.shape(sat_map), np.uint32)
    for name, pixmap in maps.items():
        if pixmap is None:
            continue
        flags = list(flag_values[name]) + (["DO_NOT_USE"] if name in do_not_use else [])
        # in place where the map is set (apply_flags's image of the same, unallocated)
        np.bitwise_or(final, np.uint32(flag_value(flags)), out=final,
                      where=np.asarray(pixmap) > 0)
    return final


def check_metadata(hdr, comp):
    """ValueError when two headers differ in their exposure (EFFEXPTM, TFRAME,
    TGROUP, NFRAMES, NGROUPS, SUBARRAY: the documented keys; times within 0.001 s)
    or in INSTRUME, DETECTOR, READPATT; the message names both files and the keys."""
    diff = []
    for key in ("EFFEXPTM", "TFRAME", "TGROUP", "NFRAMES", "NGROUPS", "SUBARRAY", "INSTRUME",
                "DETECTOR", "READPATT"):
        a, b = hdr.get(key), comp.get(key)
        if isinstance(a, float) and isinstance(b, (int, float)):
            same = abs(a - b) <= 0.001
        else:
            same = a == b
        if not same:
            diff.append(f"{key}: {a!r} vs {b!r}")
    if diff:
        raise ValueError(f"Inconsistent input files {hdr.get('FILENAME')} and "
                         f"{comp.get('FILENAME')}: " + "; ".join(diff))


def add_refpix(array, to_add):
    """Pad a science-pixel map with (left, right, bottom, top) reference columns/rows."""
    left, right, bottom, top = to_add
    return np.pad(np.asarray(array), ((bottom, top), (left, right)))


def _mean_std(image, mask=None):
    """The detector's clipped (mean, std), from an even subsample of
    ``stats.ROBUST_MAX_VALUES`` values on larger detectors (a threshold's
    precision, not a pixel's)."""
    mean, _, std = image_stats(image, sigma=3.0, maxiters=5, mask=mask,
                               max_values=ROBUST_MAX_VALUES)
    return mean, std


# ---- reading ----------------------------------------------------------------

def _sibling(path: Path, suffix: str) -> Path:
    name = path.name
    for end in ("_rateints.fits", "_rate.fits"):
        if name.endswith(end):
            return path.with_name(name[: -len(end)] + f"_{suffix}.fits")
    return path.with_name(path.stem + f"_{suffix}.fits")


def _native(data) -> np.ndarray:
    """FITS data (big-endian) in native byte order, of their own type: a
    float32 image stays float32 (half the memory of float64, no conversion)."""
    data = np.asarray(data)
    return data.astype(data.dtype.newbyteorder("="))


def read_slope_data(filename, refpix=None):
    """The SCI slopes of ``filename`` as (nints, y, x) ((1, y, x) for a rate image),
    ``refpix`` (left, right, bottom, top) outer columns and rows stripped off (None:
    the whole frame), in the file's own float type."""
    data = _native(fits.getdata(filename, "SCI"))
    return _strip(data if data.ndim == 3 else data[None], refpix)


def _read_slopes(filename, refpix=None):
    """Slopes of a file: (nints, y, x) from its rateints sibling if any, else (1, y, x).

    ``refpix`` (left, right, bottom, top): that many outer reference columns and
    rows stripped off (None: the whole frame).  In the file's own float type.
    """
    path = Path(filename)
    ints = _sibling(path, "rateints")
    if path.name.endswith("_rateints.fits"):
        ints = path
    return read_slope_data(ints if ints.exists() else path, refpix)


def _science_box(dq):
    """(left, right, bottom, top) reference columns/rows of a DQ image: the border
    around the pixels without REFERENCE_PIXEL."""
    science = (np.asarray(dq) & flag_value("REFERENCE_PIXEL")) == 0
    if not science.any():
        raise ValueError("every pixel is a reference pixel")
    rows, cols = np.nonzero(science.any(axis=1))[0], np.nonzero(science.any(axis=0))[0]
    return (np.int64(cols[0]), np.int64(science.shape[1] - cols[-1] - 1), np.int64(rows[0]),
            np.int64(science.shape[0] - rows[-1] - 1))


def _slopes_and_box(filename):
    with fits.open(filename) as hdul:
        slopes = _native(hdul["SCI"].data)
        dq = hdul["DQ"].data
        instrument = hdul[0].header.get("INSTRUME")
    if slopes.ndim not in (2, 3):
        raise ValueError(f"{filename}: slope image should be 2-D or 3-D, got {slopes.shape}")
    box = _science_box(dq if dq.ndim == 2 else dq[0])
    return instrument, _strip(slopes if slopes.ndim == 3 else slopes[None], box), box


def read_slope_files(filenames):
    """(instrument, slopes, (left, right, bottom, top)) of the rateints files of
    jump files (``*jump.fits`` named as ``*rateints.fits``): every integration's
    science pixels stacked, the reference border from the DQ's REFERENCE_PIXEL."""
    instrument, stacks, box = None, [], None
    for f in filenames:
        instrument, slopes, box = _slopes_and_box(str(f).replace("jump.fits", "rateints.fits"))
        stacks.append(slopes)
    return instrument, np.concatenate(stacks), box


def read_slope_integrations(filenames):
    """(instrument, slopes of every integration's science pixels, the index where
    each file's integrations start (and the total), (left, right, bottom, top))."""
    instrument, stacks, starts, box = None, [], [], None
    for f in filenames:
        if not Path(f).is_file():
            raise FileNotFoundError(f"input slope file {f} does not exist")
        instrument, slopes, box = _slopes_and_box(f)
        starts.append(sum(len(s) for s in stacks))
        stacks.append(slopes)
    starts.append(sum(len(s) for s in stacks))
    return instrument, np.concatenate(stacks), starts, box


def read_pedestal_data(filename, refpix=None):
    """PEDESTAL (nints, y, x) from a fitopt file, in the file's own float type;
    ``refpix`` as :func:`read_slope_data`."""
    data = _native(fits.getdata(filename, "PEDESTAL"))
    return _strip(data if data.ndim == 3 else data[None], refpix)



def extract_group2(filename, refpix):
    """The second group of every integration of an uncal file, (nints, y, x), with
    ``refpix`` (left, right, bottom, top) outer columns and rows stripped off (MIRI
    darks: the first group is affected by the reset)."""
    data = _native(fits.getdata(filename, "SCI"))
    if data.ndim not in (3, 4) or data.shape[-3] < 2:
        raise ValueError(f"{filename}: SCI {data.shape} has no second group")
    group2 = data[:, 1] if data.ndim == 4 else data[1][None]
    return _strip(group2, refpix)


# ---- plots --------------------------------------------------------------------

def plot_image(image, image_max, outdir, titleplot, fileout):
    """Save ``image`` (colour scale 0 to ``image_max``) as ``outdir/fileout``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 9))
    ny, nx = np.shape(image)
    im = ax.imshow(image, extent=[0, nx, 0, ny], interpolation="none", cmap="RdYlGn",
                   origin="lower", vmin=0, vmax=image_max)
    fig.colorbar(im)
    ax.set_title(titleplot)
    fig.tight_layout()
    fig.savefig(f"{outdir}/{fileout}", bbox_inches="tight")
    plt.close(fig)


def plot_histogram_stats(data_array, cut_limit, nbins, outdir, titleplot, fileout,
                         xaxis_log=False):
    """Save a histogram of the finite values of ``data_array`` with the cut at
    ``cut_limit`` marked and the number of values beyond it in the title, as
    ``outdir/fileout`` (log-spaced bins and axis with ``xaxis_log``)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    data = np.asarray(data_array, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    fig, ax = plt.subplots(figsize=(9, 9))
    bins = nbins
    if xaxis_log:
        positive = data[data > 0]
        lo = positive.min() if positive.size else 1e-3
        hi = max(data.max() if data.size else 1.0, lo * 10)
        bins = np.logspace(np.log10(lo), np.log10(hi), int(nbins) + 1)
        ax.set_xscale("log")
        ax.set_xlabel("Log Pixel Slope Standard Deviation")
    else:
        ax.set_xlabel("Pixel Slope Standard Deviation")
    counts, _, _ = ax.hist(data, bins=bins)
    ax.plot([cut_limit, cut_limit], [0, counts.max() if len(counts) else 1])
    ax.set_ylabel("Number of Pixels")
    ax.set_title(f"{titleplot} # beyond limit {int((data > cut_limit).sum()):6d}")
    fig.tight_layout()
    fig.savefig(f"{outdir}/{fileout}", bbox_inches="tight")
    plt.close(fig)

# ---- main ---------------------------------------------------------------------

def find_bad_pix(filenames, uncal_filenames=None, jump_filenames=None, fitopt_filenames=None,
                 clipping_sigma=5.0, max_clipping_iters=5, noisy_threshold=5,
                 max_saturated_fraction=0.5, max_jump_limit=10, jump_ratio_threshold=5,
                 early_cutoff_fraction=0.25, pedestal_sigma_threshold=5,
                 rc_fraction_threshold=0.8, low_pedestal_fraction=0.8, high_cr_fraction=0.8,
                 flag_values=None, do_not_use=None, outfile=None, plot=False,
                 hot_threshold=None, min_clean_slopes=5, return_maps=False, metadata=None):
    """Find bad pixels in dark exposures; return the DQ map (and save it with ``outfile``).

    ``metadata`` (author, description, pedigree, useafter) goes into the saved
    file's CRDS metadata.

    With ``return_maps`` also a dict of the intermediate maps (mean and scatter
    of the clean slopes, their counts, and the per-type file counts).
    """
    filenames = [Path(f) for f in filenames]
    if not filenames:
        raise ValueError("badpix_from_darks.find_bad_pix: no input files")
    flag_values = {**DEFAULT_FLAG_VALUES, **(flag_values or {})}
    do_not_use = tuple(DEFAULT_DO_NOT_USE if do_not_use is None else do_not_use)
    jump_files = [Path(f) for f in jump_filenames] if jump_filenames else \
        [_sibling(f, "jump") for f in filenames]
    fitopt_files = [Path(f) for f in fitopt_filenames] if fitopt_filenames else \
        [_sibling(f, "fitopt") for f in filenames]
    missing = [str(p) for p in jump_files + fitopt_files if not p.exists()]
    if missing:
        raise FileNotFoundError("missing jump / fitopt products: " + ", ".join(missing))
    first_hdr = fits.getheader(filenames[0], 0)
    shape = fits.getdata(filenames[0], "SCI").shape[-2:]
    ref = reference_pixel_mask(first_hdr.get("INSTRUME", "NIRCAM"), int(first_hdr.get("SUBSTRT1", 1)),
                               int(first_hdr.get("SUBSTRT2", 1)), shape[1], shape[0])

    # per-pixel accumulators over every integration (_integration_pass)
    acc = {name: np.zeros(shape, np.int32 if name in _COUNTS else np.float64)
           for name in _ACCUMULATORS}
    ped_rc_count = np.zeros(shape, np.int32)
    jump_rc_count = np.zeros(shape, np.int32)
    low_count = np.zeros(shape, np.int32)
    high_count = np.zeros(shape, np.int32)
    n_ints = 0
    buffers = {}
    for f, jf, of in zip(filenames, jump_files, fitopt_files):
        check_metadata(fits.getheader(f, 0), first_hdr)
        slopes = _read_slopes(f)
        pedestal = read_pedestal_data(of)
        rc_ints = np.zeros(shape, np.int32)      # integrations whose jumps bunch early
        high_file = np.zeros(shape, bool)
        # native float32 and flags once (FITS data are big-endian; every step
        # below would otherwise convert its own copy)
        with RampFile(jf) as ramp_file, RampFile(jf, "GROUPDQ") as dq_file:
            # into buffers kept from file to file (new ones page-fault again)
            sci = ramp_file.read(out=_buffer(buffers, "sci", ramp_file.shape, np.float32))
            gdq = dq_file.read(out=_buffer(buffers, "gdq", dq_file.shape, dq_file.flag_dtype))
            # each pixel's difference noise: the median of its integrations'
            # (robust to the integrations where it switches when there are 3 or
            # more; with fewer, each integration's own)
            noise = None
            if slopes.shape[0] >= 3:
                noise = np.median([_difference_noise(sci[i], gdq[i])[1]
                                   for i in range(slopes.shape[0])], axis=0)
            for i in range(slopes.shape[0]):
                _integration_pass(sci[i], gdq[i], slopes[i], pedestal[i], noise, ref, acc,
                                  high_file, rc_ints, pedestal_sigma_threshold, max_jump_limit,
                                  jump_ratio_threshold, early_cutoff_fraction)
                n_ints += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)     # all-NaN pixels
            ped = pedestal_residual(*(a[0] if a.shape[0] == 1
                                      else np.nanmean(a, axis=0, dtype=np.float64)
                                      for a in (pedestal, slopes)), mask=ref)
        high_ped, low_ped = _pedestal_outliers(ped, pedestal_sigma_threshold, mask=ref)
        ped_rc_count += high_ped                 # (0/1 maps)
        # reset decay makes every integration's jumps bunch early; random
        # telegraph switches do so only now and then: at least half of them
        jump_rc_count += rc_ints * 2 >= slopes.shape[0]
        low_count += low_ped
        high_count += high_file
    nfiles = len(filenames)
    (sat_count, bright_count, ped_high_n, ped_normal_n, ped_n, ped_high_sum, ped_high_sq,
     s_sum, s_sq, n_clean, whole_sum, late_sum, diff_sq, n_curv) = (acc[k] for k in _ACCUMULATORS)

    with np.errstate(invalid="ignore", divide="ignore"):
        mean_slope = s_sum / n_clean
        # sqrt((s_sq - n mean^2) / (n - 1)) in one array (no full-frame temporaries)
        std_slope = np.square(mean_slope)
        std_slope *= n_clean
        np.subtract(s_sq, std_slope, out=std_slope)
        std_slope /= n_clean - 1
        np.sqrt(std_slope, out=std_slope)
    sci = ~ref
    judged = sci & (n_clean >= 1)
    m, s = _mean_std(mean_slope, mask=~judged)
    # above the detector's cut, and significant for the pixel itself: slopes
    # from a few groups (e.g. next to a saturating pixel) are noisy.  The
    # per-pixel tests below are evaluated on the (few) pixels above the cut:
    # elsewhere they cannot change the result (full-frame float64 arithmetic
    # was a fifth of the search)
    above = np.flatnonzero(judged & (mean_slope > m + noisy_threshold * s))
    with np.errstate(invalid="ignore", divide="ignore"):
        stderr = std_slope.ravel()[above] / np.sqrt(n_clean.ravel()[above])
    # the excess over the detector's dark rate significant for the pixel itself
    # (a NaN standard error, from one clean slope, does not hold it back)
    rate_pix = above[~(mean_slope.ravel()[above] - m <= noisy_threshold * stderr)]
    high_rate = np.zeros(shape, bool)
    high_rate.ravel()[rate_pix] = True
    # a high dark rate from a straight ramp is hot (or warm); from a ramp that
    # rises early and flattens (second-half slope under 30 % of the whole) it is
    # reset decay: RC.  The pedestal of a hot pixel is unreliable
    # (nonlinearity, saturation), so a straight high-rate pixel stays hot.
    # (Only of the high-rate pixels: ``curved`` is used with ``high_rate`` alone.)
    nc, ws, ls = (a.ravel()[rate_pix] for a in (n_curv, whole_sum, late_sum))
    with np.errstate(invalid="ignore", divide="ignore"):
        # significant curvature: the mean (whole - late) slope difference more
        # than 5 standard errors, and the late slope under 30 % of the whole
        mean_diff = (ws - ls) / nc
        var_diff = (diff_sq.ravel()[rate_pix] / nc - mean_diff ** 2) * nc / (nc - 1)
        stderr = np.sqrt(var_diff / nc)
        # measured above the detector's ordinary dark rate m, so that a high
        # dark current does not hide the curvature
        late_ex = ls / nc - m
        whole_ex = ws / nc - m
        curved_pix = (judged.ravel()[rate_pix] & (nc >= 2) & (late_ex < 0.6 * whole_ex)
                      & (mean_diff > 5 * stderr))
    curved = np.zeros(shape, bool)
    curved.ravel()[rate_pix[curved_pix]] = True
    # straight: measured so, or bright at the end of most integrations (reset
    # decay never gets there)
    linear_high = high_rate & ~curved & ((n_curv >= 2) | (bright_count * 2 >= max(1, n_ints)))
    # random telegraph noise: many steps in most files, or a pedestal that
    # switches between two levels from one integration to the next
    # (not a pixel of high dark rate: its pedestal carries shot noise)
    switching = (sci & ~high_rate
                 & switching_pedestal(ped_high_n, ped_normal_n, ped_high_sum, ped_high_sq))
    many_jumps = sci & ((high_count >= high_cr_fraction * nfiles) | switching)
    # a high pedestal of a pixel with many jumps (telegraph noise high at the
    # reset) or of a hot pixel is not reset decay; jumps bunched early are
    # The pedestal counts where it was measured in at least half the
    # integrations (jwst flags the neighbours of a saturating pixel, whose
    # pedestals then come from a group or two).  High in nearly every
    # integration it is reset decay even when the ramps jump a lot; telegraph
    # noise is high in some integrations only.
    ped_measured = ped_n * 2 >= max(1, n_ints)
    ped_always_high = ped_measured & (ped_high_n >= rc_fraction_threshold * ped_n)
    rc_routes = {"pedestal": ((ped_rc_count >= rc_fraction_threshold * nfiles) & ped_measured
                              & ~linear_high & (~many_jumps | ped_always_high)),
                 "early_jumps": jump_rc_count >= rc_fraction_threshold * nfiles,
                 "curvature": high_rate & curved}
    rc = sci & ~switching & (rc_routes["pedestal"] | rc_routes["early_jumps"]
                             | rc_routes["curvature"])
    # the pedestal (ramp-fit intercept) of a pixel with a raised or curved
    # ramp is not its reset level: such pixels are hot, warm or RC
    low_pedestal = (sci & (low_count >= low_pedestal_fraction * nfiles) & ped_measured
                    & ~high_rate & ~rc)
    saturated = sci & (sat_count >= max_saturated_fraction * max(1, n_ints))
    high_cr = many_jumps & ~rc & ~saturated
    # a raised slope of a pixel that steps often is telegraph noise, not dark current
    high_rate &= ~rc & ~many_jumps
    if hot_threshold is not None:
        hot = saturated | (high_rate & (mean_slope >= hot_threshold))
        warm = high_rate & (mean_slope < hot_threshold) & ~saturated
    else:
        hot, warm = saturated | high_rate, np.zeros(shape, bool)
    judged_noise = sci & (n_clean >= min_clean_slopes)
    ms, ss = _mean_std(std_slope, mask=~judged_noise)
    noisy = judged_noise & (std_slope > ms + noisy_threshold * ss) & ~hot & ~warm & ~rc
    log.info("darks: %d hot, %d warm, %d RC, %d low pedestal, %d high-CR, %d noisy pixels",
             hot.sum(), warm.sum(), rc.sum(), low_pedestal.sum(), high_cr.sum(), noisy.sum())

    final = _combine_types(hot, rc, low_pedestal, high_cr, flag_values=flag_values,
                                    do_not_use=do_not_use, warm=warm, noisy=noisy)
    if outfile is not None:
        from ..reffile import save_mask
        dq = final | np.where(ref, np.uint32(flag_value("REFERENCE_PIXEL")), np.uint32(0))
        save_mask(dq, outfile, filenames,
                  **{"description": "Bad pixels from darks", **(metadata or {})})
    if plot and outfile is not None:
        _plot_counts(mean_slope, Path(outfile).with_name(Path(outfile).stem + "_slopes.png"),
                     m + noisy_threshold * s)
    if return_maps:
        return final, {"mean_slope": mean_slope, "std_slope": std_slope, "n_clean": n_clean,
                       "saturated_count": sat_count, "pedestal_rc_count": ped_rc_count,
                       "jump_rc_count": jump_rc_count,
                       "low_pedestal_count": low_count, "high_cr_count": high_count,
                       "switching_pedestal": switching,
                       **{f"rc_by_{k}": v & sci for k, v in rc_routes.items()},
                       "pedestal_high_integrations": ped_high_n,
                       "pedestal_integrations": ped_n,
                       "n_ints": n_ints, "n_files": nfiles, "hot_rate_cut": m + noisy_threshold * s}
    return final


def _buffer(buffers: dict, name: str, shape, dtype) -> np.ndarray:
    """``buffers[name]``, (re)allocated when it is not of this shape and type."""
    buf = buffers.get(name)
    if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
        buf = buffers[name] = np.empty(shape, dtype)
    return buf


def _plot_counts(mean_slope, path, threshold):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..reffile import atomic_write
    values = mean_slope[np.isfinite(mean_slope)]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(values, bins=200, log=True, color="0.3")
    ax.axvline(threshold, color="r", label=f"hot threshold {threshold:.3g} DN/s")
    ax.set_xlabel("mean clean dark slope [DN/s]")
    ax.legend()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)

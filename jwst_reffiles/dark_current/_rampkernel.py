"""Compiled per-pixel loops over short ramps for :mod:`badpix_from_darks`.

A dark ramp has a handful of groups and millions of pixels: numpy's whole-array
steps (differences, NaN masks, medians along the short axis, a running median
filter) each make a pass over the frame and sort tiny rows through generic
machinery.  Here the pixels are taken a tile of :data:`TILE` at a time, read
once into small buffers: the pixels with nothing flagged and finite reads
(nearly all) a step at a time across the tile, branch-free (sorting networks,
min/max medians, sums in a fixed order), the others one by one with the same
arithmetic.  Semantics: those documented in
``badpix_from_darks._difference_noise`` and ``badpix_from_darks.real_jumps``
(the tests there compare these kernels with plain numpy formulations).

Not part of the public API.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._clipkernel import _run_median, _sort, _sort_tile
from ..stats import MAD_TO_SIGMA


@njit(cache=True, nogil=True, inline="always")
def _sorted4(a, b, c, d):
    """Four values (no NaN) in order, by five min/max in registers."""
    a, b = min(a, b), max(a, b)
    c, d = min(c, d), max(c, d)
    a, c = min(a, c), max(a, c)
    b, d = min(b, d), max(b, d)
    b, c = min(b, c), max(b, c)
    return a, b, c, d


@njit(cache=True, nogil=True, inline="always")
def _median_mad4(a, b, c, d):
    """(median, MAD sigma) of four finite values (a ramp of 5 groups, the
    benchmark's and a common full-frame dark's), in registers: the same
    arithmetic on the same order as sorting them and their deviations (the
    general path is 3x slower, dominated by the insertion sort's branches)."""
    a, b, c, d = _sorted4(a, b, c, d)
    med = (b + c) / 2.0
    e, f, g, h = _sorted4(abs(a - med), abs(b - med), abs(c - med), abs(d - med))
    return med, MAD_TO_SIGMA * ((f + g) / 2.0)


@njit(cache=True, nogil=True, inline="always")
def _noise_of_pixel(ramp, gdq, p, skip_bits, d, quiet, dev):
    """(median, MAD sigma) of pixel p's group differences not on a group with
    ``skip_bits``; all differences (NaN if any is NaN) when every one is skipped."""
    ngroups = ramp.shape[0]
    m = 0
    for g in range(ngroups - 1):
        v = np.float64(ramp[g + 1, p]) - np.float64(ramp[g, p])
        d[g] = v
        if (gdq[g + 1, p] & skip_bits) == 0 and not np.isnan(v):
            quiet[m] = v
            m += 1
    if m == 0:
        # every difference skipped: all of them (np.median: NaN if any is NaN)
        m = ngroups - 1
        for g in range(m):
            quiet[g] = d[g]
            if np.isnan(d[g]):
                return np.nan, np.nan
    if m == 4 and abs(quiet[0]) + abs(quiet[1]) + abs(quiet[2]) + abs(quiet[3]) < np.inf:
        return _median_mad4(quiet[0], quiet[1], quiet[2], quiet[3])
    _sort(quiet, m)
    med = _run_median(quiet, 0, m)
    for k in range(m):
        dev[k] = abs(quiet[k] - med)
    _sort(dev, m)
    return med, MAD_TO_SIGMA * _run_median(dev, 0, m)


@njit(cache=True, nogil=True)
def difference_noise(ramp, gdq, skip_bits, med_out, sigma_out):
    """Per pixel of ``ramp`` (ngroups, npix): median and robust sigma of the differences."""
    ngroups, npix = ramp.shape
    d = np.empty(max(ngroups - 1, 1))
    quiet = np.empty(max(ngroups - 1, 1))
    dev = np.empty(max(ngroups - 1, 1))
    for p in range(npix):
        med, sig = _noise_of_pixel(ramp, gdq, p, skip_bits, d, quiet, dev)
        med_out[p] = med
        sigma_out[p] = sig


@njit(cache=True, nogil=True, inline="always")
def _median5_finite(a, b, c, d, e):
    """Median of five values (no NaN) by seven min/max: no branches, no memory."""
    f = max(min(a, b), min(c, d))
    g = min(max(a, b), max(c, d))
    return max(min(e, f), min(max(e, f), g))


@njit(cache=True, nogil=True, inline="always")
def _median5(a, b, c, d, e):
    """:func:`_median5_finite`, NaN when any value is NaN (the caller then sorts)."""
    if np.isnan(a) or np.isnan(b) or np.isnan(c) or np.isnan(d) or np.isnan(e):
        return np.nan
    return _median5_finite(a, b, c, d, e)


@njit(cache=True, nogil=True, inline="always")
def _jumps_of_pixel(ramp, gdq, p, jump_bit, sat_bit, nsigma, step_nsigma, sigma, use_sigma,
                    d, quiet, dev, window, flags):
    """flags[g] (ngroups): whether pixel p's own ramp steps onto group g.

    With 3 or more groups: a difference flagged JUMP_DET counts when more than
    ``nsigma`` sigma from the median difference; any difference counts when
    more than ``step_nsigma`` sigma from the running median of 5 differences
    (edges repeat the end values), except on or within three groups before a
    saturated group.  ``sigma`` (npix) replaces the pixel's own robust sigma
    when ``use_sigma``.  With fewer groups, jwst's JUMP_DET flags as they are.
    """
    ngroups = ramp.shape[0]
    if ngroups < 3:
        for g in range(ngroups):
            flags[g] = (gdq[g, p] & jump_bit) != 0
        return
    nd = ngroups - 1
    flags[0] = False
    med, own = _noise_of_pixel(ramp, gdq, p, jump_bit | sat_bit, d, quiet, dev)
    s = sigma[p] if use_sigma else own
    if not np.isnan(s) and s < 1e-6:
        s = 1e-6
    for k in range(nd):
        # the running median of 5 differences, edges repeated ('nearest')
        local = _median5(d[max(k - 2, 0)], d[max(k - 1, 0)], d[k], d[min(k + 1, nd - 1)],
                         d[min(k + 2, nd - 1)])
        if np.isnan(local):
            # a NaN difference: sorted with NaNs last, as np.sort would
            for w in range(5):
                window[w] = d[min(max(k + w - 2, 0), nd - 1)]
            _sort(window, 5)
            local = window[2]
        step = abs(d[k] - local) / s > step_nsigma
        if step:
            # not on, or within three groups before, a saturated group
            for j in range(k + 1, min(k + 5, ngroups)):
                if (gdq[j, p] & sat_bit) != 0:
                    step = False
                    break
        flagged = (gdq[k + 1, p] & jump_bit) != 0
        flags[k + 1] = (flagged and abs(d[k] - med) / s > nsigma) or step


@njit(cache=True, nogil=True, inline="always")
def _jump_scratch(ngroups):
    """The buffers :func:`_jumps_of_pixel` works in (differences, the quiet
    ones, deviations, a 5-value window, the flags), allocated once per call."""
    nd = max(ngroups - 1, 1)
    return (np.empty(nd), np.empty(nd), np.empty(nd), np.empty(5),
            np.empty(ngroups, dtype=np.bool_))


#: pixels per tile of :func:`_tile_flags`
TILE = 128


@njit(cache=True, nogil=True, inline="always")
def _tile_scratch(ngroups):
    """The buffers of :func:`_tile_flags` (differences, their sorted copy,
    deviations: (ngroups - 1, TILE); median, sigma and the clean mask:
    (TILE,); the tile's flags (ngroups, TILE)), allocated once per call."""
    nd = max(ngroups - 1, 1)
    return (np.empty((nd, TILE)), np.empty((nd, TILE)), np.empty((nd, TILE)), np.empty(TILE),
            np.empty(TILE), np.empty(TILE, dtype=np.bool_),
            np.empty((ngroups, TILE), dtype=np.bool_))


@njit(cache=True, nogil=True, inline="always")
def _column_median(a, n, q):
    """Median of the sorted column q of a[:n]."""
    h = n // 2
    return a[h, q] if n % 2 == 1 else (a[h - 1, q] + a[h, q]) / 2.0


@njit(cache=True, nogil=True, inline="always")
def _tile_flags(ramp, gdq, p0, m, jump_bit, sat_bit, nsigma, step_nsigma, sigma, use_sigma,
                pairs, d, srt, dev, med, sig, clean, tflags, scratch):
    """tflags[g, q]: :func:`_jumps_of_pixel`'s flags of pixels p0 .. p0+m-1.

    Pixels whose groups carry no JUMP_DET or SATURATED flag and whose reads
    are all finite -- nearly all of a dark -- are done together, a step at a
    time across the tile (branch-free, vectorised): the median and MAD of the
    differences from columns sorted by the network ``pairs`` (of ngroups - 1
    values; empty: no such path), the running median by :func:`_median5_finite`.
    The same arithmetic in the same order as the per-pixel path, which does
    the other pixels.  ``scratch``: :func:`_jump_scratch`'s buffers.
    """
    ngroups = ramp.shape[0]
    nd = ngroups - 1
    bits = jump_bit | sat_bit
    if ngroups >= 3 and pairs.shape[0] > 0:
        # rows taken as 1-D views: indexed as a[g, q] these loops are not
        # vectorised (2x slower)
        for q in range(m):
            clean[q] = True
        for g in range(ngroups):
            rg = ramp[g, p0:p0 + m]
            fg = gdq[g, p0:p0 + m]
            for q in range(m):
                clean[q] = clean[q] & ((fg[q] & bits) == 0) & np.isfinite(rg[q])
        for k in range(nd):
            ra = ramp[k, p0:p0 + m]
            rb = ramp[k + 1, p0:p0 + m]
            dk = d[k]
            sk = srt[k]
            for q in range(m):
                v = np.float64(rb[q]) - np.float64(ra[q])
                dk[q] = v
                sk[q] = v
        _sort_tile(srt, m, pairs)
        for q in range(m):
            med[q] = _column_median(srt, nd, q)
        if not use_sigma:
            for k in range(nd):
                sk = srt[k]
                dv = dev[k]
                for q in range(m):
                    dv[q] = abs(sk[q] - med[q])
            _sort_tile(dev, m, pairs)
        for q in range(m):
            s = sigma[p0 + q] if use_sigma else MAD_TO_SIGMA * _column_median(dev, nd, q)
            sig[q] = 1e-6 if s < 1e-6 else s          # (NaN stays NaN)
            tflags[0, q] = False
        for k in range(nd):
            # the running median of 5 differences, edges repeated
            r0 = d[max(k - 2, 0)]
            r1 = d[max(k - 1, 0)]
            r2 = d[k]
            r3 = d[min(k + 1, nd - 1)]
            r4 = d[min(k + 2, nd - 1)]
            tf = tflags[k + 1]
            for q in range(m):
                local = _median5_finite(r0[q], r1[q], r2[q], r3[q], r4[q])
                tf[q] = abs(r2[q] - local) / sig[q] > step_nsigma
    else:
        for q in range(m):
            clean[q] = False
    dd, quiet, dv, window, flags = scratch
    for q in range(m):
        if not clean[q]:
            _jumps_of_pixel(ramp, gdq, p0 + q, jump_bit, sat_bit, nsigma, step_nsigma, sigma,
                            use_sigma, dd, quiet, dv, window, flags)
            for g in range(ngroups):
                tflags[g, q] = flags[g]


@njit(cache=True, nogil=True, error_model="numpy")
def real_jumps(ramp, gdq, jump_bit, sat_bit, nsigma, step_nsigma, sigma, use_sigma, pairs, out):
    """``out`` (ngroups, npix) bool: the groups where each pixel's own ramp
    steps (:func:`_jumps_of_pixel`, a tile at a time: :func:`_tile_flags`)."""
    ngroups, npix = ramp.shape
    scratch = _jump_scratch(ngroups)
    d, srt, dev, med, sig, clean, tflags = _tile_scratch(ngroups)
    for p0 in range(0, npix, TILE):
        m = min(TILE, npix - p0)
        _tile_flags(ramp, gdq, p0, m, jump_bit, sat_bit, nsigma, step_nsigma, sigma, use_sigma,
                    pairs, d, srt, dev, med, sig, clean, tflags, scratch)
        for g in range(ngroups):
            og = out[g, p0:p0 + m]
            tg = tflags[g]
            for q in range(m):
                og[q] = tg[q]


@njit(cache=True, nogil=True, inline="always")
def _tile_slopes(ramp, p0, m, g0, g1, mean, out):
    """out[q]: the least-squares slope (per group) of the groups g0..g1-1 of
    pixels p0 .. p0+m-1, a step at a time across the tile (``mean``: scratch)."""
    n = g1 - g0
    tm = (n - 1) / 2.0
    den = 0.0
    for g in range(g0, g1):
        t = (g - g0) - tm
        den += t * t
    for q in range(m):
        mean[q] = 0.0
        out[q] = 0.0
    for g in range(g0, g1):
        rg = ramp[g, p0:p0 + m]
        for q in range(m):
            mean[q] += np.float64(rg[q])
    for q in range(m):
        mean[q] /= n
    for g in range(g0, g1):
        t = (g - g0) - tm
        rg = ramp[g, p0:p0 + m]
        for q in range(m):
            out[q] += t * (np.float64(rg[q]) - mean[q])
    for q in range(m):
        out[q] /= den


@njit(cache=True, nogil=True, error_model="numpy")
def ramp_slopes(ramp, whole, late):
    """Per pixel of ``ramp`` (ngroups >= 2, npix): the slope of the whole ramp and
    of its second half (the whole ramp's when the half has fewer than 2 groups)."""
    ngroups, npix = ramp.shape
    h = ngroups // 2
    mean = np.empty(TILE)
    for p0 in range(0, npix, TILE):
        m = min(TILE, npix - p0)
        _tile_slopes(ramp, p0, m, 0, ngroups, mean, whole[p0:p0 + m])
        if ngroups - h >= 2:
            _tile_slopes(ramp, p0, m, h, ngroups, mean, late[p0:p0 + m])
        else:
            late[p0:p0 + m] = whole[p0:p0 + m]


@njit(cache=True, nogil=True, error_model="numpy")
def integration_pass(ramp, gdq, slope, pedestal, sigma, use_sigma, jump_bit, sat_bit,
                     nsigma, step_nsigma, pairs, g1, sat_level, bright_level, ped_mean, ped_std,
                     ped_threshold, max_jump_limit, n_early, jump_ratio_threshold,
                     sat_count, bright_count, ped_high_n, ped_normal_n, ped_n, ped_high_sum,
                     ped_high_sq, high_file, rc_ints, s_sum, s_sq, n_clean, whole_sum,
                     late_sum, diff_sq, n_curv):
    """One dark integration's contribution to every per-pixel accumulator of
    ``badpix_from_darks.find_bad_pix``, reading each pixel's ramp once.

    Per pixel (``ramp``/``gdq`` (ngroups, npix), the rest (npix)): the real
    jumps (as :func:`real_jumps`) and from them the many-jumps and early-jumps
    maps (the search's rule: more than max_jump_limit jumps, early rate
    over late); saturation from the first read
    (``sat_level``; or before the third group with a bright last group) and a
    bright last group (``bright_level``); the pedestal
    in detector standard deviations where no group saturated; the clean slope
    (no real jump, three unsaturated groups, finite); and, for clean
    never-saturated ramps, the whole and second-half ramp slopes.  The tests
    compare it with those functions composed.
    """
    ngroups, npix = ramp.shape
    scratch = _jump_scratch(ngroups)
    d, srt, dev, med, sig, clean, tflags = _tile_scratch(ngroups)
    h = ngroups // 2
    n_late_groups = max(1, ngroups - n_early)
    total = np.empty(TILE, dtype=np.int64)
    early = np.empty(TILE, dtype=np.int64)
    nsat = np.empty(TILE, dtype=np.int64)
    whole = np.empty(TILE)
    late = np.empty(TILE)
    mean = np.empty(TILE)
    for p0 in range(0, npix, TILE):
        m = min(TILE, npix - p0)
        _tile_flags(ramp, gdq, p0, m, jump_bit, sat_bit, nsigma, step_nsigma, sigma, use_sigma,
                    pairs, d, srt, dev, med, sig, clean, tflags, scratch)
        # real jumps (total and in the first n_early groups), saturated groups,
        # the slopes of the whole ramp and its second half: across the tile
        for q in range(m):
            total[q] = 0
            early[q] = 0
            nsat[q] = 0
        for g in range(ngroups):
            tg = tflags[g]
            fg = gdq[g, p0:p0 + m]
            for q in range(m):
                f = 1 if tg[q] else 0
                total[q] += f
                if g < n_early:
                    early[q] += f
                nsat[q] += 1 if (fg[q] & sat_bit) != 0 else 0
        _tile_slopes(ramp, p0, m, 0, ngroups, mean, whole)
        if ngroups - h >= 2:
            _tile_slopes(ramp, p0, m, h, ngroups, mean, late)
        else:
            late[:m] = whole[:m]
        for q in range(m):
            p = p0 + q
            late_jumps = total[q] - early[q]
            ratio = (early[q] / n_early) / (late_jumps / n_late_groups)
            if total[q] > max_jump_limit:
                high_file[p] = True
                if (late_jumps == 0 and early[q] > 0) or ratio > jump_ratio_threshold:
                    rc_ints[p] += 1
            # saturation
            # (or saturated before its third group with a bright ramp: no clean
            # slope comes from fewer than three groups)
            if ((gdq[g1, p] & sat_bit) != 0 and ramp[g1, p] > sat_level) or \
                    (nsat[q] > 0 and ngroups - nsat[q] < 3
                     and ramp[ngroups - 1, p] > bright_level):
                sat_count[p] += 1
            if ramp[ngroups - 1, p] > bright_level:
                bright_count[p] += 1
            never_sat = nsat[q] == 0
            # the pedestal where no group saturated (jwst flags the neighbours of
            # a saturating pixel too, and their pedestals from a few groups are noisy)
            if never_sat:
                dv = (np.float64(pedestal[p]) - ped_mean) / ped_std
                ped_n[p] += 1
                if dv > ped_threshold:
                    ped_high_n[p] += 1
                    ped_high_sum[p] += dv
                    ped_high_sq[p] += dv * dv
                if abs(dv) < 3.0:
                    ped_normal_n[p] += 1
            # the clean slope and, from clean never-saturated ramps, the curvature
            v = np.float64(slope[p])
            if total[q] == 0 and ngroups - nsat[q] >= 3 and np.isfinite(v):
                s_sum[p] += v
                s_sq[p] += v * v
                n_clean[p] += 1
                # curvature from clean, never-saturated ramps only (a saturation
                # plateau is not reset decay); a slope here has 3 groups or more
                if never_sat:
                    whole_sum[p] += whole[q]
                    late_sum[p] += late[q]
                    diff_sq[p] += (whole[q] - late[q]) ** 2
                    n_curv[p] += 1

"""Compiled per-pixel loops over short ramps for :mod:`badpix_from_darks`.

A dark ramp has a handful of groups and millions of pixels: numpy's whole-array
steps (differences, NaN masks, medians along the short axis, a running median
filter) each make a pass over the frame and sort tiny rows through generic
machinery.  Here each pixel's ramp is read once and everything is done in
registers and a small buffer.  Semantics: those documented in
``badpix_from_darks._difference_noise`` and ``badpix_from_darks.real_jumps``
(the tests there compare these kernels with plain numpy formulations).

Not part of the public API.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._clipkernel import _run_median, _sort
from ..stats import MAD_TO_SIGMA


@njit(cache=True, nogil=True)
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


@njit(cache=True, nogil=True)
def real_jumps(ramp, gdq, jump_bit, sat_bit, nsigma, step_nsigma, sigma, use_sigma, out):
    """``out`` (ngroups, npix) bool: the groups where each pixel's own ramp steps.

    A difference flagged JUMP_DET counts when more than ``nsigma`` sigma from
    the median difference; any difference counts when more than ``step_nsigma``
    sigma from the running median of 5 differences (edges repeat the end
    values), except on or within three groups before a saturated group.
    ``sigma`` (npix) replaces the pixel's own robust sigma when ``use_sigma``.
    """
    ngroups, npix = ramp.shape
    nd = ngroups - 1
    d = np.empty(nd)
    quiet = np.empty(nd)
    dev = np.empty(nd)
    window = np.empty(5)
    for p in range(npix):
        for g in range(ngroups):
            out[g, p] = False
        med, own = _noise_of_pixel(ramp, gdq, p, jump_bit | sat_bit, d, quiet, dev)
        s = sigma[p] if use_sigma else own
        if not np.isnan(s) and s < 1e-6:
            s = 1e-6
        for k in range(nd):
            # the running median of 5 differences, edges repeated ('nearest')
            for w in range(5):
                idx = min(max(k + w - 2, 0), nd - 1)
                window[w] = d[idx]
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
            out[k + 1, p] = (flagged and abs(d[k] - med) / s > nsigma) or step


@njit(cache=True, nogil=True)
def _slope(ramp, p, g0, g1):
    """Least-squares slope (per group) of pixel p's groups g0..g1-1."""
    m = g1 - g0
    tm = (m - 1) / 2.0
    ym = 0.0
    for g in range(g0, g1):
        ym += np.float64(ramp[g, p])
    ym /= m
    num = 0.0
    den = 0.0
    for g in range(g0, g1):
        t = (g - g0) - tm
        num += t * (np.float64(ramp[g, p]) - ym)
        den += t * t
    return num / den


@njit(cache=True, nogil=True)
def ramp_slopes(ramp, whole, late):
    """Per pixel of ``ramp`` (ngroups >= 2, npix): the slope of the whole ramp and
    of its second half (the whole ramp's when the half has fewer than 2 groups)."""
    ngroups, npix = ramp.shape
    h = ngroups // 2
    for p in range(npix):
        whole[p] = _slope(ramp, p, 0, ngroups)
        late[p] = _slope(ramp, p, h, ngroups) if ngroups - h >= 2 else whole[p]

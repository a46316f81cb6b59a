"""Compiled per-pixel sigma clipping: the inner loop of :mod:`jwst_reffiles.stats`.

For one pixel, the values that survive median-centred sigma clipping are always
a contiguous run of its sorted finite values (rejection is by value: below
``centre - sigma_lower*spread`` or above ``centre + sigma_upper*spread``).  So
each pixel's values are sorted once, and every clipping iteration only moves
the two ends of the run inward; the median of the run is read off its middle,
the mean and (two-pass) standard deviation are sums over it.

A short stack (up to :data:`NETWORK_MAX` values per pixel) is done in one
pass, :func:`clip_short_stack`: a tile of pixels sorted by a sorting network
(branch-free min/max steps), the statistics of the pixels with nothing to
reject taken across the tile, the others clipped one by one; nothing of the
stack's size is allocated.  A deeper one in three steps: :func:`gather_rows`
transposes a block (N, npix) into one row of N values per pixel (non-finite
values -> NaN), numpy sorts the rows (its vectorised sort, NaNs last; far
faster than a per-pixel sort in compiled code, which is dominated by branch
mispredictions), and :func:`clip_sorted_rows` iterates on each sorted row.
Both give the statistics of :func:`astropy.stats.sigma_clip` with ``axis=0``
(the tests in ``tests/test_stats.py`` compare them).

Compiled with numba (``cache=True``: compiled once per installation, loaded in
milliseconds by later processes); ``nogil``, so threads of a Dask worker run
it side by side.  Not part of the public API: call :mod:`jwst_reffiles.stats`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .stats import MAD_TO_SIGMA


@njit(cache=True, nogil=True, inline="always")
def _sort(a, m):
    """Sort a[:m] in place (NaNs last): insertion sort for a few values (numba's
    general sort costs far more per call), its sort above 32."""
    if m > 32:
        a[:m].sort()
        return
    for i in range(1, m):
        v = a[i]
        j = i - 1
        if np.isnan(v):
            continue
        while j >= 0 and (np.isnan(a[j]) or a[j] > v):
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@njit(cache=True, nogil=True, inline="always")
def _run_median(s, lo, hi):
    """Median of the sorted run s[lo:hi] (NaN if empty)."""
    m = hi - lo
    if m <= 0:
        return np.nan
    mid = lo + m // 2
    if m % 2 == 1:
        return s[mid]
    return (s[mid - 1] + s[mid]) / 2.0


@njit(cache=True, nogil=True)
def _run_stats(s, lo, hi):
    """(median, mean, standard deviation ddof=0) of the sorted run s[lo:hi]."""
    m = hi - lo
    if m <= 0:
        return np.nan, np.nan, np.nan
    total = 0.0
    for k in range(lo, hi):
        total += s[k]
    avg = total / m
    ss = 0.0
    for k in range(lo, hi):
        d = s[k] - avg
        ss += d * d
    return _run_median(s, lo, hi), avg, np.sqrt(ss / m)


@njit(cache=True, nogil=True)
def gather_rows(data, out):
    """out[p, j] = data[j, p] as float64, NaN where not finite (a tiled transpose)."""
    nstack, npix = data.shape
    tile = 64
    for p0 in range(0, npix, tile):
        p1 = min(npix, p0 + tile)
        for j in range(nstack):
            for p in range(p0, p1):
                v = np.float64(data[j, p])
                out[p, j] = v if np.isfinite(v) else np.nan


def sorting_network(n: int) -> np.ndarray:
    """Compare-exchange pairs (k, 2) of Batcher's odd-even merge sort of ``n`` values.

    Built for the next power of two and cut to ``n`` (a pair reaching past
    ``n`` would compare with +inf, which never moves).  Used for short stacks,
    where one fixed sequence of branch-free min/max steps on a tile of pixels
    beats numpy's per-row sort (whose cost per call dominates a row of a few
    values).
    """
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


#: stacks up to this deep are sorted by a sorting network in
#: :func:`clip_short_stack` (measured: 5x faster than a gather and numpy's row
#: sort at 3 values, 1.6x at 10, even at about 32)
NETWORK_MAX = 24


@njit(cache=True, nogil=True)
def _sort_tile(buf, m, pairs):
    """Sort the first ``m`` columns of ``buf`` (N, tile) by the network ``pairs``:
    each compare-exchange a branch-free min/max across the columns.

    The rows are taken as 1-D views first: indexed as buf[a, q] the loop is
    not vectorised (2x slower; the same holds for every tile loop here)."""
    for k in range(pairs.shape[0]):
        ra = buf[pairs[k, 0]]
        rb = buf[pairs[k, 1]]
        for q in range(m):
            x = ra[q]
            y = rb[q]
            ra[q] = x if x < y else y           # branch-free (a select)
            rb[q] = y if x < y else x


@njit(cache=True, nogil=True)
def clip_short_stack(data, pairs, sigma_lower, sigma_upper, maxiters, use_mad, reinclude,
                     companion, use_companion, mean, median, std, count, companion_sum):
    """:func:`clip_sorted_rows` on a short stack ``data`` (N, npix) as it is:
    a tile of pixels at a time is loaded in the data's own float type
    (non-finite -> +inf), sorted by the sorting network ``pairs``
    (:func:`sorting_network` of N; branch-free min/max steps across the tile)
    and clipped.  Nothing of the size of the stack is allocated.

    Most pixels of a stack have N finite values of which the first iteration
    rejects none: their statistics are taken across the tile at once (the
    same sums in the same order as :func:`_run_stats`), and only the others
    -- a value rejected or not finite, or the MAD spread, or a companion --
    go through :func:`clip_sorted_rows`.
    """
    nstack, npix = data.shape
    tile = 128
    buf = np.empty((nstack, tile), dtype=data.dtype)
    rows = np.empty((tile, nstack))
    total = np.empty(tile)
    ss = np.empty(tile)
    done = np.empty(tile, dtype=np.bool_)
    fast = nstack > 0 and not use_mad and not use_companion
    h = nstack // 2
    for p0 in range(0, npix, tile):
        p1 = min(npix, p0 + tile)
        m = p1 - p0
        for j in range(nstack):
            src = data[j, p0:p1]
            dst = buf[j]
            for q in range(m):
                v = src[q]
                dst[q] = v if np.isfinite(v) else np.inf
        _sort_tile(buf, m, pairs)
        for q in range(m):
            done[q] = False
        if fast:
            for q in range(m):
                total[q] = 0.0
                ss[q] = 0.0
            for j in range(nstack):
                row = buf[j]
                for q in range(m):
                    total[q] += np.float64(row[q])
            for q in range(m):
                total[q] = total[q] / nstack             # the mean
            for j in range(nstack):
                row = buf[j]
                for q in range(m):
                    dv = np.float64(row[q]) - total[q]
                    ss[q] += dv * dv
            for q in range(m):
                avg = total[q]
                sd = np.sqrt(ss[q] / nstack)
                lo_v = np.float64(buf[0, q])
                hi_v = np.float64(buf[nstack - 1, q])
                centre = (np.float64(buf[h, q]) if nstack % 2 == 1
                          else (np.float64(buf[h - 1, q]) + np.float64(buf[h, q])) / 2.0)
                # all finite (+inf sorts last), and nothing outside the first bounds
                ok = hi_v != np.inf and (maxiters == 0 or (
                    lo_v >= centre - sigma_lower * sd and hi_v <= centre + sigma_upper * sd))
                if ok:
                    p = p0 + q
                    mean[p] = avg
                    median[p] = centre
                    std[p] = sd
                    count[p] = nstack
                    done[q] = True
        for q in range(m):
            if done[q]:
                continue
            for j in range(nstack):
                v = np.float64(buf[j, q])
                rows[q, j] = v if v != np.inf else np.nan
            p = p0 + q
            clip_sorted_rows(rows[q:q + 1], sigma_lower, sigma_upper, maxiters, use_mad,
                             reinclude, data[:, p:p + 1],
                             companion[:, p:p + 1] if use_companion else companion,
                             use_companion, mean[p:p + 1], median[p:p + 1], std[p:p + 1],
                             count[p:p + 1], companion_sum[p:p + 1] if use_companion
                             else companion_sum)


@njit(cache=True, nogil=True)
def clip_sorted_rows(rows, sigma_lower, sigma_upper, maxiters, use_mad, reinclude,
                     data, companion, use_companion, mean, median, std, count, companion_sum):
    """Sigma-clip each row of ``rows`` (npix, N): sorted float64, NaNs last.

    ``maxiters < 0`` iterates until nothing more is rejected.  ``use_mad``: the
    spread is 1.4826 x the median absolute deviation instead of the standard
    deviation.  ``reinclude``: the values kept are all those within the last
    bounds (astropy's ``sigma_clip`` along an axis), not only the survivors of
    every iteration (its ``sigma_clipped_stats(axis=None)``).  With
    ``use_companion``, the sum of ``companion`` (N, npix) over the values of
    ``data`` (N, npix) that were kept goes to ``companion_sum``.
    A pixel with no value left gets NaN statistics and count 0.
    """
    npix, nstack = rows.shape
    dev = np.empty(nstack)
    for p in range(npix):
        s = rows[p]
        hi = nstack
        while hi > 0 and np.isnan(s[hi - 1]):
            hi -= 1
        lo = 0
        n = hi
        iteration = 0
        bounded = False
        lower = 0.0
        upper = 0.0
        centre, avg, sd = _run_stats(s, lo, hi)
        while hi > lo and (maxiters < 0 or iteration < maxiters):
            iteration += 1
            if use_mad:
                m = hi - lo
                for k in range(m):
                    dev[k] = abs(s[lo + k] - centre)
                _sort(dev, m)
                spread = MAD_TO_SIGMA * _run_median(dev, 0, m)
            else:
                spread = sd
            lower = centre - sigma_lower * spread
            upper = centre + sigma_upper * spread
            bounded = True
            new_lo = lo
            while new_lo < hi and s[new_lo] < lower:
                new_lo += 1
            new_hi = hi
            while new_hi > new_lo and s[new_hi - 1] > upper:
                new_hi -= 1
            if new_lo == lo and new_hi == hi:
                break
            lo = new_lo
            hi = new_hi
            centre, avg, sd = _run_stats(s, lo, hi)
        if bounded and reinclude:
            # astropy's sigma_clip(axis=...) keeps every value within the last
            # bounds, so a value rejected early comes back if they widened
            grown = False
            while lo > 0 and s[lo - 1] >= lower:
                lo -= 1
                grown = True
            while hi < n and s[hi] <= upper:
                hi += 1
                grown = True
            if grown:
                centre, avg, sd = _run_stats(s, lo, hi)
        if hi <= lo:
            mean[p] = np.nan
            median[p] = np.nan
            std[p] = np.nan
            count[p] = 0
            if use_companion:
                companion_sum[p] = 0.0
            continue
        mean[p] = avg
        median[p] = centre
        std[p] = sd
        count[p] = hi - lo
        if use_companion:
            # values are rejected by value, so "kept" is "within the run's ends"
            kmin = s[lo]
            kmax = s[hi - 1]
            total = 0.0
            for j in range(nstack):
                v = np.float64(data[j, p])
                if v >= kmin and v <= kmax:
                    total += companion[j, p]
            companion_sum[p] = total

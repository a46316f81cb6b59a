"""Sigma-clipped statistics through a stack of images: the one kernel.

Every algorithm that reduces a stack (N images of ny x nx) to per-pixel
statistics calls :func:`stack_stats` (or the convenience wrappers).  The
semantics are those of :func:`astropy.stats.sigma_clipped_stats` with
``axis=0``: non-finite values are ignored; each iteration computes, per pixel,
the median (centre) and the standard deviation (ddof=0) of the values still in,
and rejects values strictly below ``median - sigma_lower*std`` or above
``median + sigma_upper*std``; iterations stop when nothing more is rejected or
after ``maxiters`` (``None``: until convergence).  As in astropy, the values
finally kept are all those within the last bounds (a value rejected in an early
iteration comes back if the bounds widened since).  Results are the mean,
median, standard deviation and number of the values kept.  (:func:`image_stats`
follows ``sigma_clipped_stats(axis=None)`` instead, which keeps only the values
that survived every iteration.)

The stack is processed in blocks of rows so that memory stays under a budget
whatever N is; the rows come from a *source*: an array, or any object with
``shape`` (N, ny, nx) and ``read(y0, y1)`` returning the (N, y1-y0, nx) block
(the file-reading layers provide such sources).  The computation runs in
float64, in a compiled per-pixel kernel (:mod:`jwst_reffiles._clipkernel`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import partial

import numpy as np

__all__ = ["StackStats", "ArraySource", "stack_stats", "clipped_mean", "clipped_std",
           "image_stats", "nanmedian", "robust_stats", "subsample_step", "as_float",
           "MAD_TO_SIGMA", "kernel_threads", "in_threads", "concurrently",
           "DEFAULT_MEMORY_BYTES", "THREADS_ENV"]

#: Default working-memory budget of one stack_stats call.
DEFAULT_MEMORY_BYTES = 512 * 2**20


@dataclass
class StackStats:
    """Per-pixel results (ny, nx) of :func:`stack_stats`."""

    mean: np.ndarray
    median: np.ndarray
    std: np.ndarray
    count: np.ndarray
    #: per pixel, the sum of the companion stack over the values kept (or None)
    companion_sum: np.ndarray | None = None


class ArraySource:
    """A stack held in memory, as a source for :func:`stack_stats`."""

    def __init__(self, array):
        array = np.asarray(array)
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3:
            raise ValueError(f"a stack must be 3-D (N, ny, nx), got shape {array.shape}")
        self.array = array
        self.shape = array.shape

    def read(self, y0: int, y1: int) -> np.ndarray:
        return self.array[:, y0:y1]


#: 1 / Phi^-1(3/4): the median absolute deviation of a normal sample, in sigma
MAD_TO_SIGMA = 1.482602218505602

#: above this many values, :func:`robust_stats` (and :func:`image_stats` when
#: asked) judges an even subsample: a detector-wide threshold's precision, not
#: a pixel's (2**18 normal values give the median to 0.0025 sigma and the
#: spread to 0.3 %, one standard deviation; a 5-sigma cut moves by 0.015 sigma)
ROBUST_MAX_VALUES = 1 << 18


def subsample_step(shape, max_values: int | None) -> int:
    """The k of the even subsample (every k-th pixel of the raveled image) that
    keeps at most about ``max_values`` of an image of ``shape``; 1 (all) when
    it has no more or ``max_values`` is None.

    k is the smallest step at least size / max_values that shares no factor
    with the row length, so that the pixels taken move along the row from
    one row to the next and every column is represented: a step dividing
    2048 would judge a full frame by one column in k only (even/odd column
    offsets, the amplifiers' columns).
    """
    shape = tuple(shape)
    size = math.prod(shape)
    if max_values is None or size <= max_values:
        return 1
    k = -(-size // int(max_values))
    row = int(shape[-1]) if len(shape) >= 2 else 1
    while math.gcd(k, row) != 1:
        k += 1
    return k


def as_float(a) -> np.ndarray:
    """``a`` as an array the compiled kernels take: native float32 or float64 as
    it is (no copy), anything else (integers, big-endian FITS data) as float64."""
    a = np.asarray(a)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def robust_stats(values, max_values: int | None = ROBUST_MAX_VALUES) -> tuple[float, float]:
    """(median, 1.4826 x median absolute deviation) of the finite ``values``.

    For a detector-wide level and scatter (thresholds of bad-pixel searches):
    above ``max_values`` values an even, deterministic subsample of about that
    many (every k-th value, :func:`subsample_step`) is judged
    (:data:`ROBUST_MAX_VALUES`: a sixteenth of a full frame).  ``max_values=None``
    uses every value.  (NaN, NaN) if none is finite.
    """
    v = np.asarray(values)
    v = v.ravel()[::subsample_step(v.shape, max_values)]
    v = v.astype(np.float64)            # converted after subsampling: not the whole frame
    v = v[np.isfinite(v)]               # (a copy: ours to reorder)
    if v.size == 0:
        return float("nan"), float("nan")
    med = float(np.median(v, overwrite_input=True))       # v is our own copy
    dev = np.abs(v - med, out=v)
    return med, float(MAD_TO_SIGMA * np.median(dev, overwrite_input=True))


def nanmedian(a, axis: int = 0) -> np.ndarray:
    """Median along ``axis`` ignoring NaN (NaN where none); a fast, silent
    ``np.nanmedian`` for the short axes of stacks (the clipping kernel with no
    clipping: one gather and sort, threaded, no warnings)."""
    a = np.moveaxis(as_float(a), axis, 0)
    shape = a.shape[1:]
    data = a.reshape(a.shape[0], -1)
    _, med, _, _, _ = _clip_columns(data, 0.0, 0.0, 0)
    return med.reshape(shape)


#: Environment variable: threads one kernel call uses (default: the cores this
#: process may run on).  The executors set it for their worker processes so that
#: workers x threads stays at the number of cores.
THREADS_ENV = "JWST_REFFILES_THREADS"

#: below this many pixels a block is not split between threads
_MIN_PIXELS_PER_THREAD = 1 << 16


def kernel_threads() -> int:
    """Threads a :func:`stack_stats` call splits its blocks between."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"{THREADS_ENV}={value!r}: not a number of threads") from None
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)


def concurrently(*calls, threads: int | None = None) -> list:
    """The results of the argument-less ``calls``, run side by side in up to
    ``threads`` threads (default :func:`kernel_threads`): independent numpy or
    compiled work that releases the GIL, e.g. several detector-wide statistics."""
    threads = min(kernel_threads() if threads is None else int(threads), len(calls))
    if threads <= 1:
        return [call() for call in calls]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result() for f in futures]


def in_threads(work, npix: int, threads: int | None = None) -> None:
    """Call ``work(a, b)`` on consecutive ranges of ``range(npix)`` in ``threads``
    threads (default :func:`kernel_threads`); for compiled kernels that release
    the GIL.  Small ranges are not split."""
    threads = kernel_threads() if threads is None else threads
    threads = max(1, min(int(threads), npix // _MIN_PIXELS_PER_THREAD))
    if threads == 1:
        work(0, npix)
        return
    edges = np.linspace(0, npix, threads + 1).astype(int)
    concurrently(*(partial(work, int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])),
                 threads=threads)


def _clip_columns(data: np.ndarray, sigma_lower: float, sigma_upper: float, maxiters,
                  stdfunc: str = "std", companion: np.ndarray | None = None,
                  scratch: np.ndarray | None = None, reinclude: bool = True,
                  threads: int | None = None, out=None):
    """Sigma-clip each column of a (N, npix) block; (mean, median, std, count, companion sum).

    A short stack (N <= ``_clipkernel.NETWORK_MAX``) is sorted a tile of pixels
    at a time by a sorting network and clipped in the same pass; a deeper one
    is gathered into one row per pixel (``scratch``: a float64 buffer of at
    least N x npix values to reuse, saving the page faults of a new one),
    the rows sorted by numpy and then clipped (:mod:`jwst_reffiles._clipkernel`).
    ``threads``: the columns are split between this many threads (default
    :func:`kernel_threads`; the kernels and numpy's sort release the GIL).
    ``out``: (mean, median, std, count[, companion sum]) 1-D arrays of npix to
    write into (any float type; count int32), else float64 ones are made.
    """
    from ._clipkernel import (NETWORK_MAX, clip_short_stack, clip_sorted_rows, gather_rows,
                              sorting_network)

    data = as_float(data)
    nstack, npix = data.shape
    use_companion = companion is not None
    if out is None:
        mean, med, std = np.empty(npix), np.empty(npix), np.empty(npix)
        n = np.empty(npix, dtype=np.int32)
        csum = np.empty(npix) if use_companion else np.empty(0)
    else:
        mean, med, std, n = out[:4]
        csum = out[4] if use_companion else np.empty(0)
    comp = np.asarray(companion, dtype=np.float64) if use_companion else np.empty((0, 0))
    iters = -1 if maxiters is None else int(maxiters)
    args = (float(sigma_lower), float(sigma_upper), iters, stdfunc == "mad_std", reinclude)

    def outputs(a, b):
        return (comp[:, a:b] if use_companion else comp, use_companion, mean[a:b], med[a:b],
                std[a:b], n[a:b], csum[a:b] if use_companion else csum)

    if nstack <= NETWORK_MAX:
        network = sorting_network(nstack)

        def work(a, b):
            clip_short_stack(data[:, a:b], network, *args, *outputs(a, b))
    else:
        if scratch is None or scratch.size < nstack * npix:
            scratch = np.empty(nstack * npix)
        rows = scratch[:nstack * npix].reshape(npix, nstack)

        def work(a, b):
            part = rows[a:b]
            gather_rows(data[:, a:b], part)
            part.sort(axis=1)
            clip_sorted_rows(part, *args, data[:, a:b], *outputs(a, b))

    in_threads(work, npix, threads)
    return mean, med, std, n, (csum if use_companion else None)


def stack_stats(source, sigma: float = 3.0, maxiters: int | None = 5,
                sigma_lower: float | None = None, sigma_upper: float | None = None,
                memory_bytes: int = DEFAULT_MEMORY_BYTES, companion=None,
                stdfunc: str = "std", dtype=np.float64) -> StackStats:
    """Sigma-clipped mean, median, std and count through a stack, per pixel.

    Parameters
    ----------
    source : ndarray (N, ny, nx) or (ny, nx), or a source object
        The stack, or an object with ``shape`` and ``read(y0, y1)``.
    sigma, sigma_lower, sigma_upper : float
        Clipping thresholds in standard deviations (lower/upper default to sigma).
    maxiters : int or None
        Maximum number of clipping iterations (None: until nothing changes).
    memory_bytes : int
        Working-memory budget: rows are processed in blocks that fit it.
    companion : stack or source of the same shape, optional
        A quantity summed, per pixel, over the values the clipping kept (e.g.
        the squared errors of the inputs, to propagate them into the mean).

    stdfunc : "std" or "mad_std"
        The spread the clipping thresholds are in (astropy's ``stdfunc``):
        the standard deviation, or the median absolute deviation x 1.4826,
        which can reject an outlier among a handful of values (with N values
        no value can be more than (N-1)/sqrt(N) standard deviations out).

    dtype : float type
        Of the mean, median and std images (computed in float64 whatever it is).

    ``maxiters=0`` gives the plain (unclipped) statistics of the finite values.
    """
    if stdfunc not in ("std", "mad_std"):
        raise ValueError(f"stdfunc must be 'std' or 'mad_std', got {stdfunc!r}")
    if not hasattr(source, "read"):
        source = ArraySource(source)
    if companion is not None and not hasattr(companion, "read"):
        companion = ArraySource(companion)
    nstack, ny, nx = source.shape
    if companion is not None and tuple(companion.shape) != (nstack, ny, nx):
        raise ValueError(f"companion stack shape {companion.shape} differs from the "
                         f"stack's {source.shape}")
    sl = sigma if sigma_lower is None else sigma_lower
    su = sigma if sigma_upper is None else sigma_upper
    from ._clipkernel import NETWORK_MAX
    # the data block (float64 at most) and, for a deep stack, its gathered
    # float64 rows; the companion's the same again; the kernels need no more
    # (a short stack is sorted a tile at a time in the kernel's own buffers)
    per_value = 8 * (1 if nstack <= NETWORK_MAX else 2) * (1 if companion is None else 2)
    per_row = max(1, nstack) * nx * per_value
    rows = int(max(1, min(ny, memory_bytes // per_row)))
    out = {k: np.empty((ny, nx), dtype=dtype) for k in ("mean", "median", "std")}
    count = np.empty((ny, nx), dtype=np.int32)
    csum = None if companion is None else np.empty((ny, nx), dtype=np.float64)
    scratch = np.empty(nstack * min(ny, rows) * nx) if nstack > NETWORK_MAX else None
    for y0 in range(0, ny, rows):
        y1 = min(ny, y0 + rows)
        data = np.asarray(source.read(y0, y1)).reshape(nstack, -1)
        comp = None
        if companion is not None:
            comp = np.asarray(companion.read(y0, y1)).reshape(nstack, -1)
        # written straight into the images' rows y0:y1
        block = [a[y0:y1].reshape(-1) for a in (out["mean"], out["median"], out["std"], count)]
        if companion is not None:
            block.append(csum[y0:y1].reshape(-1))
        _clip_columns(data, sl, su, maxiters, stdfunc, comp, scratch, out=block)
    return StackStats(mean=out["mean"], median=out["median"], std=out["std"], count=count,
                      companion_sum=csum)


def clipped_mean(stack, sigma: float = 3.0, maxiters: int | None = 3, **kw) -> np.ndarray:
    """Sigma-clipped mean image through a stack."""
    return stack_stats(stack, sigma=sigma, maxiters=maxiters, **kw).mean


def clipped_std(stack, sigma: float = 3.0, maxiters: int | None = 3, **kw) -> np.ndarray:
    """Sigma-clipped standard deviation image through a stack."""
    return stack_stats(stack, sigma=sigma, maxiters=maxiters, **kw).std


def image_stats(image, sigma: float = 3.0, maxiters: int | None = 5, mask=None,
                max_values: int | None = None):
    """Sigma-clipped (mean, median, std) of all the pixels of one image.

    ``mask`` (True = leave out) and non-finite values are ignored.
    ``max_values``: above that many pixels an even, deterministic subsample
    (every k-th pixel, :func:`subsample_step`, its unmasked values) is judged
    -- for detector-wide thresholds (:data:`ROBUST_MAX_VALUES`).  None: every
    value (astropy's result).
    """
    values = np.asarray(image)
    # every k-th pixel first, then its unmasked ones (a selection over the
    # whole frame would cost more than the statistics)
    step = subsample_step(values.shape, max_values)
    values = values.ravel()[::step]
    mask = None if mask is None else np.asarray(mask, dtype=bool).ravel()[::step]
    if mask is not None:
        values = values[~mask]
    values = as_float(values)
    # astropy's axis=None clipping: the values that survived every iteration
    mean, med, std, _, _ = _clip_columns(values[:, None], sigma, sigma, maxiters,
                                         reinclude=False)
    return float(mean[0]), float(med[0]), float(std[0])


def _masked(image, count):
    """``image`` as the documented functions return it: a float64 masked array
    (masked where no value survived the clipping)."""
    return np.ma.masked_array(np.asarray(image).astype(np.float64, copy=False),
                              mask=np.asarray(count) == 0)


def calculate_mean(stack, clipping_sigma=3.0, max_clipping_iters=3):
    """Sigma-clipped mean image through a 3-D stack (the predecessor's signature):
    a masked array, masked where every value was clipped."""
    st = stack_stats(stack, sigma=clipping_sigma, maxiters=max_clipping_iters)
    return _masked(st.mean, st.count)


def calculate_stddev(stack, clipping_sigma=3.0, max_clipping_iters=3):
    """Sigma-clipped standard deviation image through a 3-D stack (ddof=0): a masked
    array, masked where every value was clipped."""
    st = stack_stats(stack, sigma=clipping_sigma, maxiters=max_clipping_iters)
    return _masked(st.std, st.count)

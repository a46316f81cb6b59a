"""Gain by the photon transfer method, from pairs of flats (and of darks).

For two flat exposures taken at the same illumination, the difference of their
signals cancels the fixed pattern (the flat field), and what is left is noise:
half the variance of the difference of two CDS images ``g_k - g_0`` is the
shot noise of the charge collected, ``signal / gain`` [DN^2], plus the CDS
read noise.  A pair of darks with the same readout gives that read-noise part
(and anything else the flats share with the darks) directly:

    gain = signal / (var(F1 - F2) / 2 - var(D1 - D2) / 2)

The second flat is scaled to the first, box by box (median ratio), so that a
small difference in illumination leaves no flat-field pattern in the
difference; the expected shot noise is scaled accordingly.

Every group ``k`` of the ramps is a signal level.  The photon transfer curve
(PTC: variance against signal over the levels) is fitted per region (square
boxes of pixels, statistics over the pixels of a box):

    variance = [a0] + signal / gain + a2 * signal**2

``a2`` takes the non-linearity (a detector that loses sensitivity as it fills
gives less variance than its signal suggests, 3 alpha m^2 for ``m = L - alpha
L^2``); ``a0``, the read-noise term, is fitted when there are no darks and is
zero when the dark pair's variance has been subtracted.  Pixels that are not
finite, flagged saturated, or out by more than ``sigma`` (the one
sigma-clipping kernel, :func:`jwst_reffiles.stats.stack_stats`, over the box)
are left out of each level.

Inter-pixel capacitance (IPC) couples neighbouring pixels: the signal is
unchanged but the variance of each pixel is lower, by sum(kernel^2), and
neighbours covary.  With ``ipc_correction`` the variance is replaced by the
sum of the autocovariances over the lags of a 5x5 neighbourhood (the
variance of the noise before the coupling, as the kernel sums to 1); the
ratio of that sum to the variance is measured over the whole image and every
group-to-group increment, and applied to every region (per region it would be
too noisy).
Without darks the read noise, which IPC does not couple, is in the variance
too: the correction is then approximate at low signal.

Every integration of the pair is a separate estimate; the gain is fitted to
the mean PTC of all of them and its uncertainty is the scatter of the
per-integration fits (standard error of the mean).

Per pixel, where the data allow (many integrations), the same PTC is made
from the temporal statistics of each pixel (:func:`pixel_ptc`); the
uncertainty of a pixel's gain says whether to use it.

The functions here work on arrays; :mod:`jwst_reffiles.gain.gain` reads the
files and writes the GainModel.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..linalg import solve_batched
from ..stats import nanmedian, stack_stats
from ._lagkernel import box_lag_sums

__all__ = ["to_boxes", "from_boxes", "box_noise", "ptc_levels", "fit_ptc", "PTCFit",
           "pixel_ptc", "ipc_factor", "IPC_LAGS"]

#: Lags (dy, dx) of the half-plane of a 5x5 neighbourhood; with lag (0, 0) and
#: the mirrored lags they hold every autocovariance an IPC kernel of up to 3x3
#: produces.
IPC_LAGS = tuple((dy, dx) for dy in range(0, 3) for dx in range(-2, 3)
                 if (dy, dx) > (0, 0))


def to_boxes(image: np.ndarray, box: int) -> np.ndarray:
    """An image (ny, nx) as a stack (box*box, nby, nbx) of its boxes, NaN-padded."""
    ny, nx = image.shape
    nby, nbx = -(-ny // box), -(-nx // box)
    padded = np.full((nby * box, nbx * box), np.nan)
    padded[:ny, :nx] = image
    return (padded.reshape(nby, box, nbx, box).transpose(1, 3, 0, 2)
            .reshape(box * box, nby, nbx))


def from_boxes(stack: np.ndarray, box: int, shape: tuple[int, int]) -> np.ndarray:
    """The inverse of :func:`to_boxes` (padding dropped)."""
    _, nby, nbx = stack.shape
    image = stack.reshape(box, box, nby, nbx).transpose(2, 0, 3, 1).reshape(nby * box, nbx * box)
    return image[:shape[0], :shape[1]]


def _box_sum(image: np.ndarray, box: int) -> np.ndarray:
    return np.nansum(to_boxes(image, box), axis=0)


def _box_ratio(a: np.ndarray, b: np.ndarray, box: int) -> np.ndarray:
    """Per box, median(a) / median(b), as an image (1 where undefined)."""
    ma = nanmedian(to_boxes(a, box), axis=0)
    mb = nanmedian(to_boxes(b, box), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(np.isfinite(ma / mb) & (mb > 0), ma / mb, 1.0)
    ny, nx = a.shape
    return np.repeat(np.repeat(r, box, 0), box, 1)[:ny, :nx]


def box_noise(diff: np.ndarray, box: int, sigma: float = 5.0, maxiters: int | None = 5,
              covariances: bool = False, per_lag: bool = False):
    """Clipped variance of a difference image in boxes.

    Parameters
    ----------
    diff : (ny, nx) array, NaN where a pixel is not to be used.
    box : box side [pixels].
    sigma, maxiters : clipping of the values of each box.
    covariances : also return twice the sum of the autocovariances over
        :data:`IPC_LAGS` (per box), for the IPC correction.

    Returns
    -------
    variance, npix : (nby, nbx) arrays (ddof=1; NaN where fewer than 3 pixels)
    kept : (ny, nx) bool, the pixels used
    covsum : (nby, nbx) array, or None; with ``per_lag`` a dict lag -> (nby, nbx)
        autocovariance at that lag instead (not doubled, not summed)
    """
    stack = to_boxes(np.asarray(diff, dtype=np.float64), box)
    st = stack_stats(stack, sigma=sigma, maxiters=maxiters)
    with np.errstate(invalid="ignore"):
        keep = np.abs(stack - st.median) <= sigma * st.std
    dev = np.where(keep, stack - st.mean, 0.0)
    n = keep.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(n >= 3, (dev * dev).sum(axis=0) / (n - 1), np.nan)
    shape = diff.shape
    kept = from_boxes(keep, box, shape)
    covsum = None
    if covariances:
        covsum = {} if per_lag else np.zeros_like(var)
        dev_img = from_boxes(dev, box, shape)
        sums, counts = box_lag_sums(dev_img, kept, box, IPC_LAGS)
        with np.errstate(invalid="ignore", divide="ignore"):
            # + var/n: deviations from the box's own mean covary by -var/n
            cov = sums / counts + var / n
        for k, lag in enumerate(IPC_LAGS):
            if per_lag:
                covsum[lag] = cov[k]
            else:
                covsum += 2.0 * cov[k]
    return var, n, kept, covsum


def ptc_levels(flat1: np.ndarray, flat2: np.ndarray, dark1: np.ndarray | None = None,
               dark2: np.ndarray | None = None, box: int = 32, sigma: float = 5.0,
               maxiters: int | None = 5, ipc_correction: bool = False,
               levels=None) -> dict[str, np.ndarray]:
    """Photon transfer points of one integration of a flat pair (and a dark pair).

    Parameters
    ----------
    flat1, flat2 : (ngroups, ny, nx) ramps of one integration, NaN where a
        value is not usable (saturated, flagged).
    dark1, dark2 : the same for two darks of the same readout, or None.
    box : region size [pixels].
    ipc_correction : scale the variances by :func:`ipc_factor` of this
        integration (measured over the whole image: per box the covariances
        are too noisy to use).
    levels : groups k used as levels (CDS g_k - g_0); default every k >= 1.

    Returns a dict of (nlevels, nby, nbx) arrays: ``signal`` [DN] (mean CDS
    signal of the two flats, less the darks'), ``variance`` [DN^2] (half the
    variance of the flat difference, less the darks'), ``npix`` (pixels used),
    the (nlevels,) ``level`` indices and ``ipc_factor`` (1 without correction).
    """
    ngroups = flat1.shape[0]
    if flat2.shape != flat1.shape:
        raise ValueError(f"the two flats differ in shape: {flat1.shape} and {flat2.shape}")
    if (dark1 is None) != (dark2 is None):
        raise ValueError("give both darks of the pair or neither")
    if dark1 is not None and (dark1.shape != flat1.shape or dark2.shape != flat1.shape):
        raise ValueError(f"the darks' shape {dark1.shape}/{dark2.shape} differs from the "
                         f"flats' {flat1.shape}")
    levels = list(range(1, ngroups)) if levels is None else list(levels)
    if not levels:
        raise ValueError(f"ramps of {ngroups} group(s) give no signal level (need >= 2 groups)")
    factor = ipc_factor(flat1, flat2, dark1, dark2, box, sigma, maxiters) if ipc_correction else 1.0
    out = {k: [] for k in ("signal", "variance", "npix")}
    for k in levels:
        a = flat1[k] - flat1[0]
        b = flat2[k] - flat2[0]
        # a slightly different illumination of the second flat would leave the
        # flat field in the difference: scale it to the first, box by box
        ratio = _box_ratio(a, b, box)
        var, n, kept, _ = box_noise(a - ratio * b, box, sigma, maxiters)
        # shot noise of a - r b is (S_a + r^2 S_b) / gain = S_a (1 + r) / gain
        s_a = _box_sum(np.where(kept, a, np.nan), box) / np.maximum(n, 1)
        rb = to_boxes(ratio, box)[0]
        signal = 0.5 * s_a * (1.0 + rb)
        var = 0.5 * var
        if dark1 is not None:
            da = dark1[k] - dark1[0]
            db = dark2[k] - dark2[0]
            dvar, dn, dkept, _ = box_noise(da - db, box, sigma, maxiters)
            dsig = _box_sum(np.where(dkept, 0.5 * (da + db), np.nan), box) / np.maximum(dn, 1)
            var = var - 0.5 * dvar
            signal = signal - dsig
            n = np.minimum(n, dn)
        out["signal"].append(signal)
        out["variance"].append(var * factor)
        out["npix"].append(n)
    result = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
    result["level"] = np.asarray(levels)
    result["ipc_factor"] = np.float64(factor)
    return result


def ipc_factor(flat1, flat2, dark1=None, dark2=None, box: int = 32, sigma: float = 5.0,
               maxiters: int | None = 5) -> float:
    """Ratio of the noise variance before IPC to the variance measured, from one integration.

    The sum over all lags of the autocovariance of the flat-pair difference,
    over its variance, pooled over the whole image and every group-to-group
    increment (independent samples of the shot noise).  The dark pair's
    variance and covariances, when given, are subtracted first (read noise is
    not coupled by IPC).  1 means no coupling.
    """
    var_sum = cov_sum = 0.0
    for k in range(1, flat1.shape[0]):
        var, n, _, cov = box_noise((flat1[k] - flat1[k - 1]) - (flat2[k] - flat2[k - 1]),
                                   box, sigma, maxiters, covariances=True)
        if dark1 is not None:
            dvar, dn, _, dcov = box_noise((dark1[k] - dark1[k - 1]) - (dark2[k] - dark2[k - 1]),
                                          box, sigma, maxiters, covariances=True)
            var, cov, n = var - dvar, cov - dcov, np.minimum(n, dn)
        good = np.isfinite(var) & np.isfinite(cov) & (n > 0)
        var_sum += float(np.sum((n * var)[good]))
        cov_sum += float(np.sum((n * cov)[good]))
    if var_sum <= 0:
        return 1.0
    return 1.0 + cov_sum / var_sum


@dataclass
class PTCFit:
    """Result of :func:`fit_ptc`, arrays over the regions (or pixels)."""

    gain: np.ndarray          # e-/DN (NaN where no fit)
    coefficients: np.ndarray  # (ncoeff, ...) a0 (or 0), a1, a2...
    nlevels: np.ndarray       # levels used


def fit_ptc(signal: np.ndarray, variance: np.ndarray, npix: np.ndarray,
            intercept: bool = False, degree: int = 2, max_signal: float | None = None,
            min_npix: int = 10, min_levels: int | None = None, offset=None) -> PTCFit:
    """Fit variance = [a0] + a1 signal + ... + a_degree signal^degree, per region.

    ``signal``, ``variance``, ``npix``: (nlevels, ...).  Levels with fewer than
    ``min_npix`` pixels, non-finite values or signal above ``max_signal`` are
    left out.  Weights are those of a variance estimated from ``npix`` values:
    npix / variance^2.  The gain is 1 / a1.

    ``offset`` (per region, DN): the signal already collected at the reference
    group g_0 (CDS signals are counted from it).  For a detector with
    ``m = L - alpha L^2`` the PTC of CDS signals from an offset L0 is
    ``var = (1 - 2 alpha L0) s / gain - 3 alpha s^2 / gain``: with degree >= 2
    the gain is then ``(1 + 2 a2 L0 / (3 a1)) / a1``.
    """
    if degree not in (1, 2, 3):
        raise ValueError(f"PTC degree must be 1, 2 or 3, got {degree}")
    sig = np.asarray(signal, dtype=np.float64)
    var = np.asarray(variance, dtype=np.float64)
    n = np.asarray(npix, dtype=np.float64)
    use = np.isfinite(sig) & np.isfinite(var) & (n >= min_npix) & (sig > 0) & (var > 0)
    if max_signal is not None:
        use &= sig <= max_signal
    powers = ([0] if intercept else []) + list(range(1, degree + 1))
    p = len(powers)
    min_levels = p + 1 if min_levels is None else max(min_levels, p)
    # scale the signal for conditioning
    scale = np.nanmax(np.where(use, sig, np.nan)) if use.any() else 1.0
    x = np.where(use, sig / scale, 0.0)
    w = np.where(use, n / np.where(use, var, 1.0) ** 2, 0.0)
    cols = np.stack([x ** q for q in powers])                # (p, nlevels, ...)
    ata = np.einsum("ik...,jk...,k...->...ij", cols, cols, w)
    aty = np.einsum("ik...,k...->...i", cols, w * np.where(use, var, 0.0))
    nlev = use.sum(axis=0)
    ok = nlev >= min_levels              # (pixels with fewer levels: NaN below)
    coef, solved = solve_batched(ata, aty)
    coef = np.where(solved[..., None], coef, np.nan)
    coef = np.moveaxis(coef, -1, 0)                          # (p, ...)
    # back to unscaled signal: a_q x^q = a_q / scale^q signal^q
    coef = coef / np.asarray([scale ** q for q in powers]).reshape((p,) + (1,) * (coef.ndim - 1))
    full = np.zeros((degree + 1,) + coef.shape[1:])
    for i, q in enumerate(powers):
        full[q] = coef[i]
    a1 = full[1]
    with np.errstate(all="ignore"):
        gain = np.where(ok & (a1 > 0), 1.0 / a1, np.nan)
        if offset is not None and degree >= 2:
            gain = gain * (1.0 + 2.0 * full[2] * np.asarray(offset) / (3.0 * a1))
    full[:, ~ok] = np.nan
    return PTCFit(gain=gain, coefficients=full, nlevels=nlev)


def pixel_ptc(flat_stack: np.ndarray, dark_stack: np.ndarray | None = None,
              min_samples: int = 10) -> dict[str, np.ndarray]:
    """Per-pixel photon transfer points from temporal statistics.

    ``flat_stack``: (nsamples, ngroups, ny, nx) CDS-able ramps of one
    illumination (integrations of several files), NaN where unusable.  For
    every level k the CDS values g_k - g_0 of each pixel over the samples give
    a mean (signal) and a variance; the dark stack's variance (read noise) is
    subtracted when given, else the fit needs an intercept.  The spread of the
    flat field does not enter: every statistic is of one pixel.

    Returns ``signal``, ``variance`` and ``npix`` (the samples used) as
    (nlevels, ny, nx) arrays, for :func:`fit_ptc`.
    """
    f = np.asarray(flat_stack, dtype=np.float64)
    cds = f[:, 1:] - f[:, :1]
    n = np.isfinite(cds).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        signal = np.nanmean(cds, axis=0)
        variance = np.nanvar(cds, axis=0, ddof=1)
    if dark_stack is not None:
        d = np.asarray(dark_stack, dtype=np.float64)
        dcds = d[:, 1:] - d[:, :1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            variance = variance - np.nanvar(dcds, axis=0, ddof=1)
            signal = signal - np.nanmean(dcds, axis=0)
        n = np.minimum(n, np.isfinite(dcds).sum(axis=0))
    variance = np.where(n >= min_samples, variance, np.nan)
    return {"signal": signal, "variance": variance, "npix": n}

"""IPC reference file: the inter-pixel capacitance kernel from flat-pair differences.

Inter-pixel capacitance shares a fraction of each pixel's signal with its
neighbours: the measured image is the collected one convolved with a small
kernel K (``alpha`` to each side neighbour, ``alpha_d`` to each corner, the
rest kept).  Shot noise is white before the coupling, so after it the noise
of a flat-pair difference is correlated: its autocovariance at lag l is
``sigma^2 A(l)`` with A the autocorrelation of K.  :func:`lag_ratios` pools,
over every group-to-group increment of every integration, the per-box
autocovariances of the flat-pair differences (dark-pair differences taken
off: read noise is not coupled) -- the same statistics the gain's
``ipc_correction`` uses (:func:`jwst_reffiles.gain.photon_transfer.box_noise`)
-- as ratios to the variance; :func:`fit_kernel` finds the K whose A matches
them (least squares over the lags up to 2 pixels, separate side couplings
along x and y).  The reference file holds what the jwst ipc step convolves
the data with: the 3x3 deconvolution kernel (:func:`deconvolution_kernel`),
with the couplings in the header (IPCALPHX, IPCALPHY, IPCALPHD).

Where darks have hot pixels, :func:`hot_pixel_couplings` measures the same
couplings directly: an isolated hot pixel's neighbours collect no more dark
current than their surroundings, so what they gain over the ring around them is
the coupled share of the hot pixel's signal (ratios to the centre of
``alpha / (1 - 2 alpha_x - 2 alpha_y - 4 alpha_d)``).  :func:`make_ipc` records
that estimate beside the flats' (IPCHOTX/Y/D, IPCHOTN) and uses it when no
flats are given.

The functions on arrays are pure; :func:`make_ipc` reads the calibrated ramps a
band of rows at a time and writes the IPCModel.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..dq import flag_value
from ..gain.photon_transfer import IPC_LAGS, box_noise

log = logging.getLogger(__name__)

__all__ = ["coupling_kernel", "kernel_ratios", "variance_factor", "header_cards", "factor_error",
           "fit_kernel", "deconvolution_kernel", "lag_ratios", "hot_pixel_stamps",
           "hot_pixel_couplings", "make_ipc"]

#: Values left out: saturated or unusable groups and reference pixels (no photons).
UNUSABLE = flag_value(["SATURATED", "DO_NOT_USE", "REFERENCE_PIXEL"])


def coupling_kernel(alpha_x: float, alpha_y: float, alpha_d: float = 0.0) -> np.ndarray:
    """The 3x3 coupling kernel (rows are y): side couplings along x and y, corners."""
    c = 1.0 - 2 * alpha_x - 2 * alpha_y - 4 * alpha_d
    return np.array([[alpha_d, alpha_y, alpha_d], [alpha_x, c, alpha_x],
                     [alpha_d, alpha_y, alpha_d]], np.float64)


def kernel_ratios(kernel: np.ndarray, lags=IPC_LAGS) -> np.ndarray:
    """A(lag) / A(0) of a kernel's autocorrelation A, at ``lags`` ((dy, dx) pairs)."""
    from scipy.signal import correlate2d
    k = np.asarray(kernel, np.float64)
    a = correlate2d(k, k, mode="full")
    cy, cx = k.shape[0] - 1, k.shape[1] - 1
    return np.array([a[cy + dy, cx + dx] for dy, dx in lags]) / a[cy, cx]


def variance_factor(kernel: np.ndarray) -> float:
    """The sum of a kernel's autocorrelation over its centre value: how much
    smaller than the shot noise a coupled pixel's variance is (the factor the
    gain's ``ipc_correction`` measures)."""
    return float(1.0 + 2.0 * kernel_ratios(kernel, IPC_LAGS).sum())


def fit_kernel(ratios: np.ndarray, lags=IPC_LAGS, iterations: int = 20) -> dict:
    """The coupling kernel whose autocorrelation matches measured ``ratios``.

    ``ratios``: the autocovariance over the variance at each of ``lags``.
    Gauss-Newton on (alpha_x, alpha_y, alpha_d).  Returns the kernel, the three
    couplings and the rms residual of the ratios.
    """
    rho = np.asarray(ratios, np.float64)
    lag_index = {lag: i for i, lag in enumerate(lags)}

    def at(lag):
        return rho[lag_index[lag]] if lag in lag_index else 0.0
    theta = np.array([at((0, 1)) / 2, at((1, 0)) / 2, (at((1, 1)) + at((1, -1))) / 4])
    for _ in range(iterations):
        pred = kernel_ratios(coupling_kernel(*theta), lags)
        jac = np.empty((len(lags), 3))
        for j in range(3):
            step = np.zeros(3)
            step[j] = 1e-6
            jac[:, j] = (kernel_ratios(coupling_kernel(*(theta + step)), lags) - pred) / 1e-6
        delta, *_ = np.linalg.lstsq(jac, rho - pred, rcond=None)
        theta = theta + delta
        if np.max(np.abs(delta)) < 1e-9:
            break
    resid = rho - kernel_ratios(coupling_kernel(*theta), lags)
    return {"kernel": coupling_kernel(*theta), "alpha_x": float(theta[0]),
            "alpha_y": float(theta[1]), "alpha_d": float(theta[2]),
            "rms_residual": float(np.sqrt(np.mean(resid ** 2)))}


def deconvolution_kernel(kernel: np.ndarray, size: int = 3, grid: int = 64) -> np.ndarray:
    """The ``size`` x ``size`` kernel that undoes a coupling ``kernel``: the centre of
    its exact inverse (by FFT on a ``grid`` x ``grid`` torus), scaled to sum to 1
    (the jwst ipc step convolves the data with it)."""
    k = np.asarray(kernel, np.float64)
    pad = np.zeros((grid, grid))
    h = k.shape[0] // 2
    for dy in range(-h, h + 1):
        for dx in range(-h, h + 1):
            pad[dy % grid, dx % grid] = k[dy + h, dx + h]
    inv = np.real(np.fft.ifft2(1.0 / np.fft.fft2(pad)))
    r = size // 2
    out = np.array([[inv[dy % grid, dx % grid] for dx in range(-r, r + 1)]
                    for dy in range(-r, r + 1)])
    return out / out.sum()


def factor_error(samples: float, lags=IPC_LAGS) -> float:
    """Standard error of :func:`variance_factor` measured from ``samples`` pixel
    samples (each lag's ratio to about 1/sqrt(samples))."""
    return float(2.0 * np.sqrt(len(lags)) / np.sqrt(max(samples, 1.0)))


def header_cards(deconvolution: np.ndarray, factor_err: float | None = None) -> list:
    """The IPCALPHX/Y/D header cards of a deconvolution kernel (the couplings of
    the kernel it undoes), as stdatamodels' extra_fits takes them; IPCFERR, the
    standard error of the variance factor they imply, when given."""
    k = deconvolution_kernel(np.asarray(deconvolution, np.float64))     # the inverse's inverse
    ax, ay = (k[1, 0] + k[1, 2]) / 2, (k[0, 1] + k[2, 1]) / 2
    ad = (k[0, 0] + k[0, 2] + k[2, 0] + k[2, 2]) / 4
    return [["IPCALPHX", round(float(ax), 6), "IPC coupling to each x neighbour"],
            ["IPCALPHY", round(float(ay), 6), "IPC coupling to each y neighbour"],
            ["IPCALPHD", round(float(ad), 6), "IPC coupling to each corner"]] + (
        [] if factor_err is None else
        [["IPCFERR", round(float(factor_err), 6), "standard error of the IPC variance factor"]])


def lag_ratios(flat_diffs, dark_diffs=None, box: int = 32, sigma: float = 5.0,
               maxiters: int | None = 5, lags=IPC_LAGS) -> tuple[np.ndarray, float]:
    """Pooled autocovariance / variance of difference images at ``lags``.

    ``flat_diffs``: iterable of (ny, nx) flat-pair difference images (NaN where
    unusable), each an independent sample of the shot noise (one group-to-group
    increment of one integration); ``dark_diffs``: the matching dark-pair
    differences (or None), whose variance and covariances are taken off.
    Returns (ratios, samples): the pooled ratios and the pixel count behind them.
    """
    var_sum = 0.0
    cov_sum = np.zeros(len(lags))
    samples = 0.0
    darks = iter(dark_diffs) if dark_diffs is not None else None
    for diff in flat_diffs:
        var, n, _, cov = box_noise(diff, box, sigma, maxiters, covariances=True, per_lag=True)
        if darks is not None:
            dvar, dn, _, dcov = box_noise(next(darks), box, sigma, maxiters, covariances=True,
                                          per_lag=True)
            var = var - dvar
            cov = {lag: cov[lag] - dcov[lag] for lag in cov}
            n = np.minimum(n, dn)
        good = np.isfinite(var) & (n > 0)
        for lag in lags:
            good &= np.isfinite(cov[lag])
        var_sum += float(np.sum((n * var)[good]))
        cov_sum += np.array([np.sum((n * cov[lag])[good]) for lag in lags])
        samples += float(np.sum(n[good]))
    if var_sum <= 0:
        raise ValueError("no usable pixel in the flat-pair differences: no IPC can be measured")
    return cov_sum / var_sum, samples


#: Left out of the hot pixels' stamps: saturated groups and reference pixels (a
#: hot pixel is DO_NOT_USE in a real mask; the inputs are calibrated without one).
HOT_UNUSABLE = flag_value(["SATURATED", "REFERENCE_PIXEL"])


def hot_pixel_stamps(ramp: np.ndarray, min_signal: float = 500.0, max_signal: float = 3000.0,
                     isolation: float = 0.05, rows=None) -> np.ndarray:
    """The isolated hot pixels of one integration, each as (centre, x sides, y
    sides, corners) signals over the ring around it.

    ``ramp``: (ngroups, ny, nx), NaN where unusable.  Each pixel's signal is its
    group less the first group; a hot pixel is a local maximum of the 5x5 box
    whose signal over the median of the 16-pixel ring around its 3x3 box reaches
    ``min_signal`` in a group whose 3x3 box is usable throughout, and no ring
    pixel exceeds ``isolation`` of it (no second hot pixel couples into the box).
    The group used is the last whose centre signal stays below ``max_signal``
    (so that its nonlinearity stays small).  ``rows``: the (first, end) rows
    whose pixels may be centres (a band read with a halo of 2 rows); default all
    but the border.  Returns an (n, 4) array: the centre signal, the mean of its
    two x neighbours', of its two y neighbours' and of its four corners' (each
    over the ring's median).
    """
    from scipy.ndimage import maximum_filter
    r = np.asarray(ramp, np.float64)
    if r.shape[0] < 2:
        return np.zeros((0, 4))
    sig = r[1:] - r[0]                                      # (G-1, ny, nx)
    top = np.max(np.where(np.isfinite(sig), sig, -np.inf), axis=0)    # best usable group
    ny, nx = top.shape
    y0, y1 = (2, ny - 2) if rows is None else (max(2, rows[0]), min(ny - 2, rows[1]))
    peak = (top == maximum_filter(top, size=5, mode="nearest")) & (top >= min_signal)
    peak[:y0], peak[y1:], peak[:, :2], peak[:, nx - 2:] = False, False, False, False
    ring = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
            if max(abs(dy), abs(dx)) == 2]
    out = []
    for y, x in zip(*np.nonzero(peak)):
        box = sig[:, y - 2:y + 3, x - 2:x + 3]              # (G-1, 5, 5)
        inner = box[:, 1:4, 1:4].reshape(len(box), 9)
        bkg = np.median(np.stack([box[:, 2 + dy, 2 + dx] for dy, dx in ring], axis=1), axis=1)
        centre = box[:, 2, 2] - bkg
        ok = np.all(np.isfinite(inner), axis=1) & np.isfinite(bkg) & (centre <= max_signal)
        if not ok.any():
            continue
        g = int(np.nonzero(ok)[0][-1])
        if centre[g] < min_signal:
            continue
        b = box[g] - bkg[g]
        if max(b[2 + dy, 2 + dx] for dy, dx in ring) > isolation * centre[g]:
            continue
        out.append((centre[g], (b[2, 1] + b[2, 3]) / 2, (b[1, 2] + b[3, 2]) / 2,
                    (b[1, 1] + b[1, 3] + b[3, 1] + b[3, 3]) / 4))
    return np.array(out, np.float64).reshape(-1, 4)


def hot_pixel_couplings(stamps: np.ndarray, sigma: float = 5.0, maxiters: int = 5) -> dict:
    """The couplings from hot pixels' stamps (:func:`hot_pixel_stamps`, pooled).

    Each neighbour class's signal is proportional to the centre's: the ratio is
    the least-squares slope through the origin, clipped at ``sigma`` robust
    standard deviations of its residuals (a cosmic ray or a warm neighbour);
    with the ratios r, the centre keeps c = 1 / (1 + 2 r_x + 2 r_y + 4 r_d)
    and alpha = r c.  Returns alpha_x, alpha_y, alpha_d, their standard errors
    (alpha_x_err ...), the kernel and the number of stamps used.
    """
    from ..stats import MAD_TO_SIGMA
    st = np.asarray(stamps, np.float64).reshape(-1, 4)
    if len(st) < 3:
        raise ValueError(f"{len(st)} isolated hot pixel(s): too few to measure the IPC")
    c = st[:, 0]
    ratios, errors, used = [], [], len(st)
    for k in (1, 2, 3):
        v = st[:, k]
        keep = np.ones(len(c), bool)
        for _ in range(maxiters):
            r = np.sum(v[keep] * c[keep]) / np.sum(c[keep] ** 2)
            res = v - r * c
            spread = MAD_TO_SIGMA * np.median(np.abs(res[keep] - np.median(res[keep])))
            new = np.abs(res) <= sigma * max(spread, 1e-12)
            if new.sum() < 3 or np.array_equal(new, keep):
                break
            keep = new
        r = np.sum(v[keep] * c[keep]) / np.sum(c[keep] ** 2)
        res = (v - r * c)[keep]
        ratios.append(r)
        errors.append(float(np.sqrt(np.sum(res ** 2) / max(keep.sum() - 1, 1)
                                    / np.sum(c[keep] ** 2))))
        used = min(used, int(keep.sum()))
    rx, ry, rd = ratios
    centre = 1.0 / (1.0 + 2 * rx + 2 * ry + 4 * rd)
    ax, ay, ad = rx * centre, ry * centre, rd * centre
    return {"alpha_x": float(ax), "alpha_y": float(ay), "alpha_d": float(ad),
            "alpha_x_err": float(errors[0] * centre), "alpha_y_err": float(errors[1] * centre),
            "alpha_d_err": float(errors[2] * centre), "kernel": coupling_kernel(ax, ay, ad),
            "stamps": used}


def _pairs(files, what):
    if len(files) < 2 or len(files) % 2:
        raise ValueError(f"the IPC needs pairs of {what}; got {len(files)} file(s)")
    return [(files[k], files[k + 1]) for k in range(0, len(files), 2)]


def make_ipc(flat_files, dark_files=None, output_file=None, box: int = 32, sigma: float = 5.0,
             max_clipping_iters: int = 5, memory_mb: float = 512.0, hot_pixels: bool = True,
             hot_min_signal: float = 500.0, hot_max_signal: float = 3000.0,
             author: str = "jwst_reffiles",
             description: str = "IPC deconvolution kernel from flat-pair autocorrelation",
             pedigree: str = "GROUND", useafter: str = "2022-01-01T00:00:00",
             history: str = "") -> dict:
    """Make an IPC reference file from pairs of flats (and pairs of darks).

    Parameters
    ----------
    flat_files : list of str
        Calibrated flats (superbias and refpix done, saturated groups flagged)
        of one illumination, in pairs of consecutive files.
    dark_files : list of str, optional
        Darks of the same readout, in pairs: their differences' read noise is
        taken off the flats'.
    output_file : str
        The IPCModel to write (required).
    box : int
        Side of the boxes whose own mean is taken off before the covariances.
    sigma, max_clipping_iters : clipping of each box's values.
    memory_mb : budget for one band of rows of the four ramps.
    hot_pixels : also measure the couplings from the darks' isolated hot pixels
        (:func:`hot_pixel_stamps`; recorded as IPCHOTX/Y/D and IPCHOTN); with
        no flats, the kernel is theirs.
    hot_min_signal, hot_max_signal : the hot pixels' signal range [DN].
    author, description, pedigree, useafter, history : CRDS metadata.

    Returns the fit (:func:`fit_kernel`), the measured ratios, the samples,
    the hot pixels' couplings (``hot``, or None) and the deconvolution kernel
    written.
    """
    from stdatamodels.jwst import datamodels as dm

    from ..io import READOUT_KEYS, RampFile, check_consistent
    from ..reffile import crds_info_from_file, save_reference
    if output_file is None:
        raise ValueError("make_ipc: output_file must be given")
    flats = [Path(f) for f in flat_files or ()]
    darks = [Path(f) for f in (dark_files or ())]
    if not flats and not (darks and hot_pixels):
        raise ValueError("make_ipc: no flats (and no darks with hot_pixels) to measure the IPC")
    fpairs = _pairs(flats, "flats") if flats else []
    dpairs = _pairs(darks, "darks") if darks and flats else []
    check_consistent(flats + darks, READOUT_KEYS, "IPC inputs (flats and darks)")
    ramps = {p: RampFile(p) for p in flats + darks}
    first = (flats or darks)[0]
    try:
        nints, ngroups, ny, nx = ramps[first].shape
        if ngroups < 2:
            raise ValueError(f"{first}: {ngroups} group(s); the IPC needs at least 2")
        band = int(memory_mb * 2**20 // (ngroups * nx * 8 * 4))
        band = min(ny, max(box, band // box * box))
        hot = None
        if darks and hot_pixels:
            stamps = []
            for d in darks:
                for i in range(ramps[d].shape[0]):
                    for y0 in range(0, ny, band):
                        y1 = min(ny, y0 + band)
                        lo, hi = max(0, y0 - 2), min(ny, y1 + 2)       # a halo of 2 rows
                        r = ramps[d].read_usable(lo, hi, slice(i, i + 1),
                                                 bad_flags=HOT_UNUSABLE)[0]
                        stamps.append(hot_pixel_stamps(r, hot_min_signal, hot_max_signal,
                                                       rows=(y0 - lo, y1 - lo)))
            try:
                hot = hot_pixel_couplings(np.concatenate(stamps), sigma, max_clipping_iters)
            except ValueError as exc:
                if not flats:
                    raise ValueError(f"{darks[0]} ...: {exc}") from None
                log.info("IPC: %s (darks' hot pixels)", exc)

        def diffs(a, b):
            inc = np.diff(a, axis=0) - np.diff(b, axis=0)
            return list(inc)

        ratios_parts = []
        for y0 in range(0, ny, band):
            y1 = min(ny, y0 + band)
            flat_d, dark_d = [], ([] if dpairs else None)
            for k, (f1, f2) in enumerate(fpairs):
                nint = min(ramps[f1].shape[0], ramps[f2].shape[0])
                for i in range(nint):
                    one = slice(i, i + 1)
                    flat_d += diffs(ramps[f1].read_usable(y0, y1, one, bad_flags=UNUSABLE)[0],
                                    ramps[f2].read_usable(y0, y1, one, bad_flags=UNUSABLE)[0])
                    if dpairs:
                        d1, d2 = dpairs[(k * nint + i) % len(dpairs)]
                        j = slice(i % min(ramps[d1].shape[0], ramps[d2].shape[0]),
                                  i % min(ramps[d1].shape[0], ramps[d2].shape[0]) + 1)
                        dark_d += diffs(ramps[d1].read_usable(y0, y1, j, bad_flags=UNUSABLE)[0],
                                        ramps[d2].read_usable(y0, y1, j, bad_flags=UNUSABLE)[0])
            try:
                ratios_parts.append(lag_ratios(flat_d, dark_d, box, sigma, max_clipping_iters))
            except ValueError:
                continue
    finally:
        for r in ramps.values():
            r.close()
    if flats and not ratios_parts:
        raise ValueError(f"{flats[0]}: no usable pixel in the flat pairs: no IPC measured")
    lines = [history] if history else []
    cards = []
    if hot is not None:
        cards = [["IPCHOTX", round(hot["alpha_x"], 6), "IPC x coupling from hot pixels"],
                 ["IPCHOTY", round(hot["alpha_y"], 6), "IPC y coupling from hot pixels"],
                 ["IPCHOTD", round(hot["alpha_d"], 6), "IPC corner coupling from hot pixels"],
                 ["IPCHOTN", hot["stamps"], "hot pixel stamps behind IPCHOTX/Y/D"]]
        lines.append(f"IPC coupling from {hot['stamps']} hot pixel stamp(s) of {len(darks)} "
                     f"dark(s): alpha_x {hot['alpha_x']:.5f} +- {hot['alpha_x_err']:.5f}, "
                     f"alpha_y {hot['alpha_y']:.5f} +- {hot['alpha_y_err']:.5f}, alpha_d "
                     f"{hot['alpha_d']:.5f} +- {hot['alpha_d_err']:.5f}")
        log.info("IPC (hot pixels): %s", lines[-1])
    if flats:
        weights = np.array([s for _, s in ratios_parts])
        ratios = np.sum([r * s for r, s in ratios_parts], axis=0) / weights.sum()
        samples = float(weights.sum())
        fit = fit_kernel(ratios)
        lines.append(f"IPC coupling from {len(fpairs)} flat pair(s)"
                     + (f" less {len(dpairs)} dark pair(s)" if dpairs else "")
                     + f", {samples:.3g} pixel samples: alpha_x {fit['alpha_x']:.5f}, alpha_y "
                     f"{fit['alpha_y']:.5f}, alpha_d {fit['alpha_d']:.5f} (rms residual of the "
                     f"autocorrelation ratios {fit['rms_residual']:.2g})")
        ferr = factor_error(samples)
    else:                                      # the hot pixels' kernel
        ratios, samples, ferr = None, float(hot["stamps"]), None
        fit = {k: hot[k] for k in ("kernel", "alpha_x", "alpha_y", "alpha_d")}
        fit["rms_residual"] = float("nan")
    kernel = deconvolution_kernel(fit["kernel"])
    info = crds_info_from_file(first)
    info = {**info, "subarray": None}                 # a kernel serves every subarray
    model = dm.IPCModel(data=kernel.astype(np.float32))
    model.extra_fits = {"PRIMARY": {"header": header_cards(kernel, ferr) + cards}}
    save_reference(model, output_file, reftype="IPC", input_files=[str(f) for f in flats + darks],
                   info=info, author=author, description=description, pedigree=pedigree,
                   useafter=useafter, history=lines)
    log.info("IPC: alpha_x %.5f, alpha_y %.5f, alpha_d %.5f from %.3g samples -> %s",
             fit["alpha_x"], fit["alpha_y"], fit["alpha_d"], samples, output_file)
    return {**fit, "ratios": ratios, "samples": samples, "hot": hot, "deconvolution": kernel}

"""Linearity reference file from flat ramps that reach saturation.

The jwst convention (LinearityModel): a measured signal ``m`` (DN, after the
superbias and reference-pixel corrections) is made linear by the polynomial
``L = sum_k c_k m^k``.  Here ``c_0 = 0`` and ``c_1 = 1`` (the correction
vanishes with the signal) and ``c_2 .. c_degree`` are fitted per pixel.

Under constant illumination the linear signal of a ramp grows linearly in
time, ``L(t) = r t + b``.  The group times are exact and the noise (shot noise,
adding up along the ramp) is in the measured values, so the fit is made in
that direction: the forward model ``m = F(L) = L + sum_{j>=2} beta_j L^j`` with
``L = r_i t + b_i``, each ramp with its own rate and offset and ``beta`` shared
by all the ramps of a pixel (:func:`fit_linearity`, Gauss-Newton with the
ramps' parameters eliminated ramp by ramp).  Regressing ``L`` on the noisy
``m`` instead (linear least squares) is biased by that noise - badly, as the
noise of a ramp's later groups is mostly the shot noise of its earlier ones.
The forward model is then inverted into the correction polynomial
(:func:`invert_forward`) over the range of signal fitted.

Usable groups: up to ``max_fraction`` of the ramp's saturation plateau
(:func:`jwst_reffiles.saturation.saturation.plateau_levels`), before the first
cosmic-ray jump (:func:`jump_onset`: a group-to-group difference that stands
out of the ramp's own smooth trend), and not flagged.  Pixels with too few
usable groups, or whose ramps never get past ``min_fit_fraction`` of the
typical saturation level, get ``NO_LIN_CORR`` and the identity polynomial.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels as dm

from ..detectors import group_times
from ..dq import dq_def_records, flag_value
from ..io import RampFile, check_consistent
from ..reffile import crds_info_from_file, save_reference
from ..saturation.saturation import plateau_levels
from ..linalg import solve_batched
from ..stats import MAD_TO_SIGMA, in_threads
from . import _kernel

log = logging.getLogger(__name__)

__all__ = ["fit_linearity", "invert_forward", "jump_onset", "usable_groups", "make_linearity",
           "group_times"]


def jump_onset(ramp: np.ndarray, nsigma: float = 6.0, window: int = 2) -> np.ndarray:
    """Index of the first group after a jump, per pixel (ngroups if none).

    ``ramp`` (ngroups, ny, nx).  A difference d_k = m_{k+1} - m_k is a jump when
    it exceeds the median of its neighbours (``window`` on each side) by more
    than ``nsigma`` robust standard deviations of the ramp's differences about
    that local trend.  Non-finite values never make a jump.
    """
    r = np.asarray(ramp, dtype=np.float64)
    ng, shape = r.shape[0], r.shape[1:]
    flat = np.ascontiguousarray(r.reshape(ng, -1))
    first = np.empty(flat.shape[1], np.int64)
    in_threads(lambda a0, a1: _kernel.jump_onset(flat, float(nsigma), int(window),
                                                 MAD_TO_SIGMA, first, a0, a1), flat.shape[1])
    return first.reshape(shape)


def usable_groups(ramp: np.ndarray, max_fraction: float = 0.95, jump_sigma: float = 6.0,
                  plateau_kw: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(usable, plateau) for one ramp (ngroups, ny, nx): the groups to fit, and
    the plateau level (NaN when the ramp does not saturate)."""
    r = np.asarray(ramp, dtype=np.float64)
    ng = r.shape[0]
    p = plateau_levels(r[None], **(plateau_kw or {}))
    level, onset = p["level"][0], p["onset"][0]
    k = np.arange(ng)[:, None, None]
    use = np.isfinite(r)
    use &= np.logical_and.accumulate(use, axis=0)          # up to the first flagged value
    sat = np.isfinite(level)
    with np.errstate(invalid="ignore"):
        use &= ~sat[None] | ((r <= max_fraction * level[None]) & (k < onset[None]))
    use &= k < jump_onset(np.where(use, r, np.nan), jump_sigma)[None]
    return use, level


def fit_linearity(ramps, times, usable, degree: int = 5, model_degree: int = 3,
                  scale: float | None = None, iterations: int = 8, tolerance: float = 1e-7,
                  min_groups: int | None = None, min_ramps: int = 1):
    """Fit the non-linearity of a block of pixels from several ramps.

    Parameters
    ----------
    ramps : list of (ngroups_i, ny, nx) arrays, measured signal [DN] after
        the superbias and reference-pixel corrections.
    times : list of (ngroups_i,) group times [s] (only their ratios matter).
    usable : list of (ngroups_i, ny, nx) bool: the values to fit.
    degree : degree of the correction polynomial returned (c0 = 0, c1 = 1).
    model_degree : degree of the forward model fitted, ``m = F(L) = L +
        sum_{j=2..model_degree} beta_j L^j`` with ``L = r_i t + b_i`` per ramp.
        The time of each group is exact and the noise (shot noise adding up
        along the ramp) is on the measured side, so the model is fitted in
        that direction (Gauss-Newton, the ramps' rates and offsets eliminated
        ramp by ramp); regressing L on the noisy m instead would bias it.
    scale : signal scale [DN] for the conditioning (default: the largest value).
    iterations, tolerance : Gauss-Newton stops after ``iterations`` or when no
        coefficient (in units of the scale) changes by more than ``tolerance``.
    min_groups : usable groups a ramp needs to count (model_degree + 2).

    Returns (coeffs (degree+1, ny, nx), fitted (ny, nx) bool, reach (ny, nx)):
    the correction polynomial, where it could be fitted, and the largest
    linearised signal it was fitted to [DN].
    """
    if degree < 2 or model_degree < 2:
        raise ValueError(f"polynomial degrees must be >= 2, got {degree} and {model_degree}")
    if not ramps:
        raise ValueError("fit_linearity: no ramps")
    shape = ramps[0].shape[1:]
    min_groups = model_degree + 2 if min_groups is None else min_groups
    if scale is None:
        scale = max(float(np.nanmax(np.where(u, r, np.nan))) if u.any() else 0.0
                    for r, u in zip(ramps, usable)) or 1.0
    tmax = max(float(np.max(t)) for t in times)
    npix = int(np.prod(shape))
    nr, gmax = len(ramps), max(len(t) for t in times)
    # every ramp's values in one (R, G, P) block; a ramp with fewer groups is padded
    # with weight 0
    xs = np.zeros((npix, nr, gmax))         # each pixel's values together (the kernel's order)
    ws = np.zeros((npix, nr, gmax))
    ts = np.zeros((nr, gmax))
    thetas = np.zeros((npix, nr, 2))
    nramps = np.zeros(npix, np.int32)
    for i, (r, t, u) in enumerate(zip(ramps, times, usable)):
        ng = len(t)
        ts[i, :ng] = np.asarray(t, np.float64) / tmax
        r = np.asarray(r, np.float64).reshape(ng, npix)
        u = np.asarray(u, bool).reshape(ng, npix)
        # each pixel's usable values (scaled) and weights into the block, and the start:
        # the straight line through them (compiled, in threads)
        in_threads(lambda a0, a1: _kernel.pack_ramp(r, u, ts[i, :ng], float(scale),
                                                     int(min_groups), i, xs, ws, thetas,
                                                     nramps, a0, a1), npix)
    q = model_degree - 1
    beta = np.zeros((npix, q))
    h, g = np.zeros((npix, q, q)), np.zeros((npix, q))
    ainv, gth = np.zeros((npix, nr, 2, 2)), np.zeros((npix, nr, 2))
    cmat = np.zeros((npix, nr, 2, q))
    ok_b = np.zeros(npix, bool)
    for _ in range(iterations):
        # each pixel's normal equations summed over its groups, the ramps' parameters
        # eliminated (compiled, in threads); the reduced systems solved as one batch
        in_threads(lambda a0, a1: _kernel.accumulate(xs, ws, ts, thetas, beta, a0, a1, h, g,
                                                       ainv, gth, cmat), npix)
        dbeta, ok_b = solve_batched(h, g)
        beta = beta + dbeta
        done = float(np.max(np.abs(dbeta))) < tolerance if dbeta.size else True
        in_threads(lambda a0, a1: _kernel.update_theta(thetas, ainv, gth, cmat, dbeta, a0, a1),
                   npix)
        if done:
            break
    fitted = ok_b & (nramps >= min_ramps)
    # reach: the largest linear signal fitted
    lin = thetas[:, :, 0:1] * ts[None]                                 # (P, R, G), in place
    lin += thetas[:, :, 1:2]
    lin[ws <= 0] = 0.0
    reach = lin.reshape(npix, -1).max(axis=1)
    del lin
    coeffs = invert_forward(beta.reshape(shape + (q,)), reach.reshape(shape), degree)
    coeffs[2:] = coeffs[2:] * (scale ** (1.0 - np.arange(2, degree + 1)))[:, None, None]
    fitted = fitted.reshape(shape)
    coeffs[:, ~fitted] = 0.0
    coeffs[1, ~fitted] = 1.0
    return coeffs, fitted, reach.reshape(shape) * scale


def invert_forward(beta: np.ndarray, reach: np.ndarray, degree: int,
                   npoints: int = 64) -> np.ndarray:
    """Correction polynomial (degree+1, ny, nx), c0 = 0 and c1 = 1, of the forward
    model ``m = L + sum_j beta_j L^j`` (``beta`` (ny, nx, q)), least squares on
    ``0 < L <= reach`` (scaled units in, scaled units out)."""
    shape = beta.shape[:-1]
    q, p = beta.shape[-1], degree - 1
    flat_beta = np.ascontiguousarray(beta.reshape(-1, q), dtype=np.float64)
    flat_reach = np.ascontiguousarray(np.asarray(reach, np.float64).reshape(-1))
    n = flat_reach.size
    h, gvec = np.zeros((n, p, p)), np.zeros((n, p))
    in_threads(lambda a0, a1: _kernel.inversion_system(flat_beta, flat_reach, int(npoints),
                                                       int(degree), a0, a1, h, gvec), n)
    h, gvec = h.reshape(shape + (p, p)), gvec.reshape(shape + (p,))
    c, _ = solve_batched(h, gvec)
    out = np.zeros((degree + 1,) + shape)
    out[1] = 1.0
    out[2:] = np.moveaxis(c, -1, 0)
    return out


def make_linearity(files, output_file=None, degree: int = 5, model_degree: int = 3,
                   max_fraction: float = 0.95, min_fit_fraction: float = 0.5,
                   jump_sigma: float = 6.0, min_ramps: int = 1, iterations: int = 8,
                   flat_fraction: float = 0.05, min_step: float = 30.0,
                   memory_mb: float = 512.0, author: str = "jwst_reffiles",
                   description: str = "Linearity correction from flat ramps",
                   pedigree: str = "GROUND", useafter: str = "2022-01-01T00:00:00",
                   history: str = "") -> Path:
    """Make a linearity reference file from flat ramps that reach saturation.

    Parameters
    ----------
    files : list of str
        Flat ramps calibrated through superbias and refpix (not linearity),
        reaching saturation; any illuminations, several files and integrations.
    output_file : str
        The LinearityModel to write (required).
    degree : int
        Degree of the correction polynomial (c0 = 0 and c1 = 1 fixed).
    model_degree : int
        Degree of the forward model fitted to the ramps (see :func:`fit_linearity`).
    max_fraction : float
        Groups above this fraction of a ramp's saturation plateau are not fitted.
    min_fit_fraction : float
        Pixels whose fitted signal never reaches this fraction of the median
        plateau level get NO_LIN_CORR (the polynomial would be extrapolated).
    jump_sigma : float
        Cosmic-ray jump threshold (see :func:`jump_onset`).
    min_ramps : int
        Ramps a pixel needs for a fit.
    iterations : int
        Gauss-Newton iterations.
    flat_fraction, min_step : plateau detection (see ``plateau_levels``).
    memory_mb : float
        Budget for one block of rows of all the ramps and the fit's work arrays.
    author, description, pedigree, useafter, history : str
        CRDS metadata.
    """
    if output_file is None:
        raise ValueError("make_linearity: output_file must be given")
    if not 0 < max_fraction <= 1:
        raise ValueError(f"max_fraction must be in (0, 1], got {max_fraction}")
    files = [Path(f) for f in files]
    headers = check_consistent(files, keys=("INSTRUME", "DETECTOR", "SUBARRAY", "NFRAMES",
                                            "GROUPGAP"), what="linearity inputs")
    ramps = [RampFile(f) for f in files]
    plateau_kw = {"flat_fraction": flat_fraction, "min_step": min_step}
    try:
        ny, nx = ramps[0].shape[2:]
        nramps = sum(r.shape[0] for r in ramps)
        gmax = max(r.shape[1] for r in ramps)
        q = model_degree - 1
        # bytes per row of a block: every ramp's values (float64) and usable flags,
        # the fit's packed values and weights, and its linear signal at the end
        # (34 bytes per ramp, group and pixel); the ramps' parameters and systems;
        # one ramp's work arrays while its usable groups are found; the solves
        per_row = nx * (34 * nramps * gmax + 8 * nramps * (8 + 2 * q)
                        + 8 * gmax * (3 * q + 10) + 8 * (4 * q * q + 4 * degree))
        rows = int(max(1, min(ny, memory_mb * 2**20 // per_row)))
        coeffs = np.zeros((degree + 1, ny, nx))
        fitted = np.zeros((ny, nx), bool)
        reach = np.zeros((ny, nx))
        levels_seen = []
        times = {}
        for f, r in zip(files, ramps):
            h = headers[f]
            times[f] = group_times(r.shape[1], int(h.get("NFRAMES", 1)),
                                   int(h.get("GROUPGAP", 0)), float(h.get("TFRAME", 1.0)))
        log.info("linearity: %d files, %d ramps, degree %d (model %d), %d rows per block",
                 len(files), nramps, degree, model_degree, rows)
        for y0 in range(0, ny, rows):
            y1 = min(ny, y0 + rows)
            block, tlist, ulist = [], [], []
            for f, r in zip(files, ramps):
                for i in range(r.shape[0]):
                    ramp = r.read_usable(y0, y1, ints=slice(i, i + 1))[0]
                    use, level = usable_groups(ramp, max_fraction, jump_sigma, plateau_kw)
                    if np.isfinite(level).any():
                        levels_seen.append(float(np.nanmedian(level)))
                    block.append(ramp), tlist.append(times[f]), ulist.append(use)
            c, ok, rch = fit_linearity(block, tlist, ulist, degree, model_degree,
                                       iterations=iterations, min_ramps=min_ramps)
            coeffs[:, y0:y1], fitted[y0:y1], reach[y0:y1] = c, ok, rch
    finally:
        for r in ramps:
            r.close()
    typical = float(np.median(levels_seen)) if levels_seen else np.nan
    if np.isfinite(typical):
        fitted &= reach >= min_fit_fraction * typical
    dq = np.where(fitted, 0, flag_value("NO_LIN_CORR")).astype(np.uint32)
    coeffs[:, ~fitted] = 0.0
    coeffs[1, ~fitted] = 1.0
    notes = [f"Forward model of degree {model_degree} fitted per pixel to {nramps} ramp(s) up to "
             f"{max_fraction:.2f} of saturation (median plateau {typical:.0f} DN), inverted to "
             f"a correction of degree {degree} (c0=0, c1=1); {int(fitted.sum())} of "
             f"{fitted.size} pixels fitted, the others NO_LIN_CORR"]
    if history:
        notes.insert(0, history)
    info = crds_info_from_file(files[0], shape=(ny, nx))
    model = dm.LinearityModel(coeffs=coeffs.astype(np.float32), dq=dq, dq_def=dq_def_records(dq))
    path = save_reference(model, output_file, reftype="LINEARITY", input_files=files, info=info,
                          author=author, description=description, pedigree=pedigree,
                          useafter=useafter, history=notes)
    model.close()
    log.info("linearity: %d pixels fitted -> %s", int(fitted.sum()), path)
    return path

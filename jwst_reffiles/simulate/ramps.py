"""Ramp generation: the physics of one exposure, as a pure function on arrays.

The detector is followed frame by frame.  Between two reads each pixel collects
Poisson-distributed electrons from dark current and light; cosmic rays add
charge at random times; the accumulated charge (in DN through the gain) goes
through inter-pixel capacitance (a 3x3 kernel, when the truth has one), the
nonlinearity and the saturation plateau; reset-decay (RC) and
random telegraph noise add their signal; every read adds bias, a drift common
to the pixels of one amplifier (with an even/odd column offset), and white read
noise.  A group is the average of its NFRAMES frames; GROUPGAP frames after
each group are skipped (charge still accumulates).

Frame ``f`` (0-based, counting skipped frames) of an integration is read at
``t = (f + 1) * tframe`` after the reset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.table import Table

from .detectors import ReadoutPattern, Subarray
from .truth import DetectorTruth

__all__ = ["RampResult", "simulate_ramps", "frame_read_times", "group_times"]


@dataclass
class RampResult:
    """Output of :func:`simulate_ramps`.

    data : uint16 array (nints, ngroups, ny, nx)
    cosmic_rays : Table with one row per pixel hit (integration, group where the
        jump first appears, y, x in the subarray, electrons, time [s])
    drift : float32 array (nints, ngroups, namps, 2): the group-averaged drift
        common to each amplifier's even (index 0) and odd (1) columns [DN]
    """

    data: np.ndarray
    cosmic_rays: Table
    drift: np.ndarray


def frame_read_times(pattern: ReadoutPattern, ngroups: int, tframe: float) -> np.ndarray:
    """Read time (s since reset) of every frame read, shape (ngroups, nframes)."""
    step = pattern.nframes + pattern.groupgap
    f = np.arange(ngroups)[:, None] * step + np.arange(pattern.nframes)[None, :]
    return (f + 1) * tframe


def group_times(pattern: ReadoutPattern, ngroups: int, tframe: float) -> np.ndarray:
    """Mean read time of each group (s since reset)."""
    return frame_read_times(pattern, ngroups, tframe).mean(axis=1)


def _cosmic_rays(rng, nints, t_int, shape, pitch_um, sensitive, par) -> list[np.ndarray]:
    """Draw cosmic-ray events per integration: arrays of (time, y, x, electrons)."""
    ny, nx = shape
    area_cm2 = ny * nx * (pitch_um * 1e-4) ** 2
    events = []
    for _ in range(nints):
        n = rng.poisson(par.cosmic_ray_flux * area_cm2 * t_int)
        t = rng.uniform(0, t_int, n)
        y = rng.integers(0, ny, n)
        x = rng.integers(0, nx, n)
        q = rng.lognormal(np.log(par.cosmic_ray_median_e), par.cosmic_ray_sigma_ln, n)
        # 80 % in the pixel hit, 5 % in each of its 4 neighbours.
        rows, cols, charge, times = [y], [x], [0.8 * q], [t]
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            rows.append(y + dy)
            cols.append(x + dx)
            charge.append(0.05 * q)
            times.append(t)
        y, x = np.concatenate(rows), np.concatenate(cols)
        q, t = np.concatenate(charge), np.concatenate(times)
        ok = (y >= 0) & (y < ny) & (x >= 0) & (x < nx)
        y, x, q, t = y[ok], x[ok], q[ok], t[ok]
        ok = sensitive[y, x]
        order = np.argsort(t[ok], kind="stable")
        events.append(np.stack([t[ok][order], y[ok][order], x[ok][order], q[ok][order]]))
    return events


def simulate_ramps(truth: DetectorTruth, subarray: Subarray, pattern: ReadoutPattern,
                   ngroups: int, nints: int, tframe: float, flux: float = 0.0,
                   rng: np.random.Generator | None = None,
                   cosmic_rays: bool = True) -> RampResult:
    """Simulate the raw ramps of one exposure.

    Parameters
    ----------
    truth : DetectorTruth
        The detector (full-frame truth; the subarray part is used).
    subarray : Subarray
        Which part of the detector is read.
    pattern : ReadoutPattern
        NFRAMES and GROUPGAP.
    ngroups, nints : int
        Groups per integration, integrations.
    tframe : float
        Frame time [s].
    flux : float
        Illumination [e-/s per pixel] reaching the detector (0 for a dark).  The
        signal of a pixel is ``flux * qe`` (OPEN pixels' neighbours collect
        their lost charge).
    rng : numpy Generator
        Source of randomness; pass a seeded one for reproducible exposures.
    cosmic_rays : bool
        Whether to inject cosmic rays.
    """
    if ngroups < 1 or nints < 1:
        raise ValueError(f"ngroups ({ngroups}) and nints ({nints}) must be >= 1")
    if flux < 0:
        raise ValueError(f"flux must be >= 0, got {flux}")
    rng = rng if rng is not None else np.random.default_rng()
    geom, par = truth.geometry, truth.parameters
    sl = subarray.slices()
    f32 = np.float32
    shape = (subarray.ysize, subarray.xsize)

    bias = truth.bias[sl]
    rn = truth.read_noise[sl]
    gain = truth.gain[sl]
    alpha = truth.nonlin_alpha[sl]
    sat_signal = truth.saturation[sl] - bias
    rate_e = (truth.dark_current[sl] + flux * truth.photo_response[sl]).astype(f32)
    sensitive = ~truth.refpix[sl]

    amp = geom.amplifier_map(subarray.xstart, subarray.xsize, subarray.noutputs)
    namps = int(amp.max()) + 1
    col_channel = geom.drift_channels(subarray.xstart, subarray.xsize, subarray.noutputs)

    # Sparse defects.
    rc_idx = np.nonzero(truth.rc_amplitude[sl] > 0)
    rc_amp, rc_tau = truth.rc_amplitude[sl][rc_idx], truth.rc_tau[sl][rc_idx]
    tel_idx = np.nonzero(truth.telegraph_amplitude[sl] > 0)
    tel_amp, tel_dwell = truth.telegraph_amplitude[sl][tel_idx], truth.telegraph_dwell[sl][tel_idx]
    lp_idx = np.nonzero(truth.low_pedestal[sl] != 0)
    lp_val = truth.low_pedestal[sl][lp_idx]

    kernel = truth.ipc_kernel.astype(f32)
    coupled = kernel[1, 1] != 1.0
    if coupled:
        from scipy.ndimage import convolve
    read_t = frame_read_times(pattern, ngroups, tframe)
    t_int = float(read_t[-1, -1])
    events = (_cosmic_rays(rng, nints, t_int, shape, geom.pixel_pitch_um, sensitive, par)
              if cosmic_rays else [np.zeros((4, 0))] * nints)

    data = np.empty((nints, ngroups) + shape, dtype=np.uint16)
    drift_out = np.zeros((nints, ngroups, namps, 2), dtype=f32)
    cr_rows = []
    charge = np.empty(shape, dtype=f32)
    acc = np.empty(shape, dtype=f32)

    for i in range(nints):
        charge[:] = 0.0
        t_prev = 0.0
        ev = events[i]
        ev_next = 0
        tel_state = rng.random(tel_amp.size) < 0.5
        even_odd = rng.normal(0, par.refpix_even_odd_sigma, (namps, 2)).astype(f32)
        # the reset level of low-pedestal pixels wanders from one integration to the next
        pedestal = bias.copy()
        pedestal[lp_idx] += lp_val * rng.uniform(0.8, 1.2, lp_val.size).astype(f32)
        for g in range(ngroups):
            acc[:] = 0.0
            for j in range(pattern.nframes):
                t = float(read_t[g, j])
                dt = t - t_prev
                charge += rng.poisson(rate_e * dt).astype(f32)
                # cosmic rays that hit before this read
                while ev_next < ev.shape[1] and ev[0, ev_next] < t:
                    _, y, x, q = ev[:, ev_next]
                    y, x = int(y), int(x)
                    charge[y, x] += q
                    # recorded against the first group whose average contains it
                    cr_rows.append((i + 1, g, y, x, q, ev[0, ev_next]))
                    ev_next += 1
                t_prev = t
                linear = charge / gain
                if coupled:     # IPC: the signal shared with the neighbours (not with
                    #             the reference pixels, which have no photodiode to couple)
                    linear = np.where(sensitive, convolve(linear, kernel, mode="nearest"), 0)
                if rc_amp.size:
                    linear[rc_idx] += rc_amp * (1 - np.exp(-t / rc_tau))
                # nonlinearity, then the saturation plateau
                measured = linear - alpha * linear * linear
                measured = np.where(linear * alpha * 2 >= 1, sat_signal,
                                    np.minimum(measured, sat_signal))
                if tel_amp.size:
                    flip = rng.random(tel_amp.size) < (1 - np.exp(-dt / tel_dwell))
                    tel_state ^= flip
                    measured[tel_idx] += tel_amp * tel_state
                drift = (rng.normal(0, par.refpix_drift_sigma, namps).astype(f32)[:, None]
                         + even_odd)
                drift_out[i, g] += drift / pattern.nframes
                frame = (measured + pedestal
                         + drift.ravel()[col_channel][None, :]
                         + rn * rng.standard_normal(shape, dtype=f32))
                acc += frame
            acc /= pattern.nframes
            np.rint(acc, out=acc)
            np.clip(acc, 0, 65535, out=acc)
            data[i, g] = acc
    cr = Table(rows=cr_rows or None,
               names=("integration", "group", "y", "x", "electrons", "time"),
               dtype=(np.int32, np.int32, np.int32, np.int32, np.float32, np.float64))
    return RampResult(data=data, cosmic_rays=cr, drift=drift_out)

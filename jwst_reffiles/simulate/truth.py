"""Per-pixel truth of a simulated detector.

:func:`make_truth` draws, from a seed, every property of every pixel of one
detector: bias, read noise, dark current, gain, quantum efficiency (flat field),
nonlinearity, saturation, and a set of defects of known class.  It is a pure
function (no I/O): the same seed and parameters give the same truth.

Conventions (the ones the jwst pipeline uses for its reference files):

* ``bias`` [DN]: level of a pixel's first read after reset (what a superbias
  records).
* ``read_noise`` [DN]: noise of a *single* frame read.  The CDS noise, which is
  what a READNOISE reference file stores, is ``sqrt(2) * read_noise``.
* ``dark_current`` [e-/s] and ``gain`` [e-/DN]: dark signal in DN/s is
  ``dark_current / gain``.
* ``qe`` [-]: relative response to light, mean ~1 (includes a low-frequency
  pattern and pixel-to-pixel variations).  A flat of ``flux`` e-/s gives
  ``flux * qe / gain`` DN/s.
* nonlinearity: the measured signal ``m`` (DN above bias) relates to the linear
  signal ``L`` as ``m = L - alpha * L**2``.  The correction polynomial
  ``L = sum_k c_k m**k`` (the LinearityModel convention) is exact for every
  pixel up to saturation (see :func:`linearity_coefficients`).
* ``saturation`` [DN, raw]: the plateau of a saturated ramp, bias included.

Defects (each science pixel has at most one primary class; ADJ_OPEN pixels are
the 3x3 box around an OPEN pixel, the flagging convention of the predecessor's
masks; a diagonal neighbour that is a defect of its own keeps its class):

========== ===========================================================
DEAD        qe < 0.04 and no dark current (a margin under the 0.05 dead ceiling)
LOW_QE      qe between 0.2 and 0.45
OPEN        qe 0.25-0.4; the lost charge goes to the 4 neighbours
ADJ_OPEN    the 4 side neighbours receive a quarter of the lost charge each
HOT         dark current log-uniform in 2 - 1e5 e-/s (some saturate at once)
WARM        dark current 0.1 - 1 e-/s
RC          reset decay: an extra ``A (1 - exp(-t/tau))`` DN in every ramp
TELEGRAPH   random telegraph noise: two levels ``amplitude`` DN apart
LOW_PED     reset level lower than the bias by 100-500 DN, varying by integration
========== ===========================================================
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields, replace

import numpy as np
from astropy.table import Table

from .detectors import DetectorGeometry, Subarray, get_detector

__all__ = [
    "TruthParameters",
    "DetectorTruth",
    "DEFECT_CLASSES",
    "FLAT_CLASSES",
    "make_truth",
    "default_parameters",
    "linearity_coefficients",
    "stable_seed",
]

#: Defect classes the simulator injects, with the DQ mnemonics that a bad pixel
#: mask should carry for them.
DEFECT_CLASSES: dict[str, tuple[str, ...]] = {
    "DEAD": ("DEAD", "DO_NOT_USE"),
    "LOW_QE": ("LOW_QE",),
    "OPEN": ("OPEN", "DO_NOT_USE"),
    "ADJ_OPEN": ("ADJ_OPEN",),
    "HOT": ("HOT", "DO_NOT_USE"),
    "WARM": ("WARM",),
    "RC": ("RC", "DO_NOT_USE"),
    "TELEGRAPH": ("TELEGRAPH",),
    "LOW_PED": ("OTHER_BAD_PIXEL",),
}

#: The defect classes flats show (the others are seen in darks).
FLAT_CLASSES = frozenset({"DEAD", "LOW_QE", "OPEN", "ADJ_OPEN"})

#: What the ``value`` column of the defect table holds, per class.
DEFECT_VALUE_MEANING = ("DEAD/LOW_QE/OPEN: qe; ADJ_OPEN: response factor; HOT/WARM: dark "
                        "current e-/s; RC: amplitude DN; TELEGRAPH: amplitude DN; "
                        "LOW_PED: reset offset DN")

#: Degree of the linearity correction polynomial written to LinearityModel.
LINEARITY_DEGREE = 5
#: Largest nonlinearity deficit drawn, and the bound on alpha*m it implies.
MAX_DEFICIT = 0.15
MAX_ALPHA_M = 0.13


def stable_seed(*parts) -> list[int]:
    """A seed sequence entropy list made of ints and strings, stable across runs.

    Python's ``hash`` of a string changes between interpreter runs; crc32 does not.
    """
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(zlib.crc32(p.encode()))
        else:
            out.append(int(p))
    return out


@dataclass
class TruthParameters:
    """Population parameters from which the per-pixel truth is drawn.

    Defect fractions are fractions of the science pixels.
    """

    bias_mean: float = 12000.0          # DN
    bias_amp_sigma: float = 800.0       # DN, spread of the per-amplifier level
    bias_column_sigma: float = 40.0     # DN, column-to-column pattern
    bias_pixel_sigma: float = 250.0     # DN
    read_noise_mean: float = 6.0        # DN per frame
    read_noise_sigma_frac: float = 0.08
    dark_current_mean: float = 0.004    # e-/s
    dark_current_sigma: float = 0.001   # e-/s
    gain_mean: float = 2.05             # e-/DN
    gain_amp_sigma_frac: float = 0.02
    gain_pixel_sigma_frac: float = 0.015
    qe_pixel_sigma: float = 0.02
    qe_lowfreq_amplitude: float = 0.05  # peak-to-peak / 2 of the smooth pattern
    saturation_signal_mean: float = 43000.0   # DN above bias at the plateau
    saturation_signal_sigma_frac: float = 0.03
    nonlin_deficit_mean: float = 0.10   # fractional signal loss at saturation
    nonlin_deficit_sigma: float = 0.015
    refpix_drift_sigma: float = 4.0     # DN, per frame, per amplifier
    refpix_even_odd_sigma: float = 2.0  # DN, even/odd column offset per amp
    ipc_alpha: float = 0.0              # charge coupled to each side neighbour (fraction)
    ipc_alpha_diagonal: float = 0.0     # ... and to each corner neighbour
    cosmic_ray_flux: float = 5.0        # events / cm^2 / s
    cosmic_ray_median_e: float = 1500.0 # electrons (median deposit)
    cosmic_ray_sigma_ln: float = 0.8
    hot_dark_current: tuple = (2.0, 1e5)    # e-/s, range of HOT pixels (log-uniform)
    warm_dark_current: tuple = (0.1, 1.0)   # e-/s, range of WARM pixels (uniform)
    fractions: dict = field(default_factory=lambda: {
        "DEAD": 5e-4, "LOW_QE": 1e-3, "OPEN": 2e-4, "HOT": 5e-4, "WARM": 2e-3,
        "RC": 5e-4, "TELEGRAPH": 5e-4, "LOW_PED": 5e-4,
    })

    def with_overrides(self, **kw) -> "TruthParameters":
        """A copy with some parameters changed; unknown names are an error."""
        names = {f.name for f in fields(self)}
        bad = sorted(set(kw) - names)
        if bad:
            raise ValueError(f"unknown truth parameter(s) {bad}; known: {sorted(names)}")
        if "fractions" in kw:
            unknown = sorted(set(kw["fractions"]) - set(DEFECT_CLASSES) - {"ADJ_OPEN"})
            if unknown:
                raise ValueError(f"unknown defect class(es) {unknown} in fractions; "
                                 f"known: {sorted(DEFECT_CLASSES)}")
            kw["fractions"] = {**self.fractions, **kw["fractions"]}
        return replace(self, **kw)


def default_parameters(instrument: str) -> TruthParameters:
    """Population parameters typical of an instrument's detectors."""
    if instrument.upper() == "MIRI":
        return TruthParameters(
            bias_mean=10500.0, bias_amp_sigma=300.0, read_noise_mean=9.0,
            dark_current_mean=0.1, dark_current_sigma=0.02, gain_mean=5.5,
            saturation_signal_mean=45000.0, nonlin_deficit_mean=0.12,
            refpix_drift_sigma=3.0, refpix_even_odd_sigma=0.0,
        )
    return TruthParameters()


@dataclass
class DetectorTruth:
    """Full-frame truth maps of one detector plus its defect table."""

    geometry: DetectorGeometry
    parameters: TruthParameters
    seed: int
    bias: np.ndarray
    read_noise: np.ndarray
    dark_current: np.ndarray
    gain: np.ndarray
    qe: np.ndarray
    nonlin_alpha: np.ndarray
    saturation: np.ndarray
    rc_amplitude: np.ndarray
    rc_tau: np.ndarray
    telegraph_amplitude: np.ndarray
    telegraph_dwell: np.ndarray
    low_pedestal: np.ndarray
    open_neighbour_gain: np.ndarray
    defects: Table
    refpix: np.ndarray

    #: Names of the per-pixel maps, in the order they are written to disk.
    MAPS = ("bias", "read_noise", "dark_current", "gain", "qe", "nonlin_alpha",
            "saturation", "rc_amplitude", "rc_tau", "telegraph_amplitude",
            "telegraph_dwell", "low_pedestal", "open_neighbour_gain")

    def cutout(self, name: str, subarray: Subarray) -> np.ndarray:
        """The subarray part of one truth map."""
        return getattr(self, name)[subarray.slices()]

    @property
    def photo_response(self) -> np.ndarray:
        """Fraction of the incident flux each pixel collects.

        The QE, with the charge lost by OPEN pixels collected by their
        neighbours instead; zero on reference pixels.
        """
        resp = self.qe * self.open_neighbour_gain
        resp[self.refpix] = 0.0
        return resp

    @property
    def ipc_kernel(self) -> np.ndarray:
        """The 3x3 inter-pixel capacitance kernel the collected signal is convolved
        with: ``ipc_alpha`` to each side neighbour, ``ipc_alpha_diagonal`` to each
        corner, the rest kept (it sums to 1)."""
        a, d = self.parameters.ipc_alpha, self.parameters.ipc_alpha_diagonal
        return np.array([[d, a, d], [a, 1 - 4 * a - 4 * d, a], [d, a, d]], np.float64)

    def linearity_coefficients(self) -> np.ndarray:
        """Correction polynomial coefficients (ncoeffs, ny, nx); see module doc."""
        return linearity_coefficients(self.nonlin_alpha)

    def defect_map(self) -> np.ndarray:
        """Full-frame array of defect class names ('' for good pixels)."""
        out = np.full(self.geometry.shape, "", dtype="<U9")
        out[self.defects["y"], self.defects["x"]] = self.defects["defect"]
        return out


def _smooth_pattern(rng: np.random.Generator, shape, amplitude: float) -> np.ndarray:
    """A smooth 2-D pattern: a random low-order polynomial scaled to +-amplitude."""
    ny, nx = shape
    y = np.linspace(-1, 1, ny, dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, nx, dtype=np.float32)[None, :]
    c = rng.normal(size=6).astype(np.float32)
    p = c[0] * x + c[1] * y + c[2] * x * x + c[3] * y * y + c[4] * x * y + c[5] * (x * x * y)
    p -= p.mean()
    return (amplitude * p / np.abs(p).max()).astype(np.float32)


def _per_amp(geometry: DetectorGeometry, values: np.ndarray) -> np.ndarray:
    """Broadcast one value per full-frame amplifier to a full-frame column vector."""
    return values[geometry.amplifier_map()][None, :]


def make_truth(detector: str | DetectorGeometry, seed: int = 0,
               parameters: TruthParameters | None = None) -> DetectorTruth:
    """Draw the full-frame truth of one detector.

    Parameters
    ----------
    detector : str or DetectorGeometry
        DETECTOR value (e.g. ``"NRCA1"``, ``"MIRIMAGE"``) or a geometry.
    seed : int
        Random seed.  The truth depends only on (seed, detector, parameters).
    parameters : TruthParameters
        Population parameters; the instrument's defaults when omitted.
    """
    geom = get_detector(detector) if isinstance(detector, str) else detector
    par = parameters or default_parameters(geom.instrument)
    rng = np.random.default_rng(stable_seed(seed, geom.detector, "truth"))
    shape = geom.shape
    f32 = np.float32
    refpix = geom.reference_pixel_mask()

    namps = geom.n_amplifiers
    bias = (par.bias_mean
            + _per_amp(geom, rng.normal(0, par.bias_amp_sigma, namps))
            + rng.normal(0, par.bias_column_sigma, shape[1])[None, :]
            + rng.normal(0, par.bias_pixel_sigma, shape)).astype(f32)
    read_noise = (par.read_noise_mean
                  * rng.lognormal(0, par.read_noise_sigma_frac, shape)).astype(f32)
    dark_current = np.clip(rng.normal(par.dark_current_mean, par.dark_current_sigma, shape),
                           0, None).astype(f32)
    gain = (par.gain_mean
            * _per_amp(geom, 1 + rng.normal(0, par.gain_amp_sigma_frac, namps))
            * (1 + rng.normal(0, par.gain_pixel_sigma_frac, shape))).astype(f32)
    qe = ((1 + _smooth_pattern(rng, shape, par.qe_lowfreq_amplitude))
          * (1 + rng.normal(0, par.qe_pixel_sigma, shape))).astype(f32)
    sat_signal = (par.saturation_signal_mean
                  * (1 + rng.normal(0, par.saturation_signal_sigma_frac, shape))).astype(f32)
    deficit = np.clip(rng.normal(par.nonlin_deficit_mean, par.nonlin_deficit_sigma, shape),
                      0.02, MAX_DEFICIT)
    # m_sat = L_sat (1 - d) and alpha L_sat = d  =>  alpha = d (1 - d) / m_sat
    nonlin_alpha = (deficit * (1 - deficit) / sat_signal).astype(f32)
    zeros = np.zeros(shape, f32)
    rc_amplitude, rc_tau = zeros.copy(), np.ones(shape, f32)
    tel_amp, tel_dwell = zeros.copy(), np.ones(shape, f32)
    low_ped = zeros.copy()
    neighbour_gain = np.ones(shape, f32)

    # --- defects -----------------------------------------------------------
    # Candidates: science pixels at least 2 pixels from the reference border,
    # so that every OPEN pixel has 4 science neighbours.
    sci = ~refpix
    interior = sci.copy()
    interior[[0, 1, -2, -1], :] = False
    interior[:, [0, 1, -2, -1]] = False
    interior &= ~np.roll(refpix, 1, 0) & ~np.roll(refpix, -1, 0)
    interior &= ~np.roll(refpix, 1, 1) & ~np.roll(refpix, -1, 1)
    nsci = int(sci.sum())
    counts = {k: int(round(v * nsci)) for k, v in par.fractions.items() if v > 0}
    ntotal = sum(counts.values()) + 4 * counts.get("OPEN", 0)
    cand = np.flatnonzero(interior.ravel())
    # Draw more than needed; drop picks that touch an earlier OPEN pixel's cross.
    picks = rng.choice(cand, size=min(len(cand), int(ntotal * 1.5) + 16), replace=False)
    taken = np.zeros(shape, dtype=bool)
    rows, cols, classes = [], [], []
    order = [k for k in ("OPEN", "DEAD", "LOW_QE", "HOT", "WARM", "RC", "TELEGRAPH", "LOW_PED")
             if k in counts]
    pick_iter = iter(picks)
    for cls in order:
        n_done = 0
        while n_done < counts[cls]:
            try:
                flat = next(pick_iter)
            except StopIteration:  # pragma: no cover - only for absurd fractions
                raise ValueError("defect fractions too large for the detector") from None
            y, x = divmod(int(flat), shape[1])
            if cls == "OPEN":
                cross = [(y, x), (y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)]
                if any(taken[p] for p in cross):
                    continue
                for p in cross:
                    taken[p] = True
                rows += [p[0] for p in cross]
                cols += [p[1] for p in cross]
                classes += ["OPEN"] + ["ADJ_OPEN"] * 4
            else:
                if taken[y, x]:
                    continue
                taken[y, x] = True
                rows.append(y)
                cols.append(x)
                classes.append(cls)
            n_done += 1

    # the diagonal neighbours of each OPEN pixel: ADJ_OPEN by the flagging
    # convention, with a normal response (after every class is placed, so that the
    # defects' layout does not depend on it)
    n_placed = len(rows)
    for k in [k for k, c in enumerate(classes) if c == "OPEN"]:
        for dy, dx in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
            p = (rows[k] + dy, cols[k] + dx)
            if 0 <= p[0] < shape[0] and 0 <= p[1] < shape[1] and not taken[p] \
                    and not refpix[p]:
                taken[p] = True
                rows.append(p[0])
                cols.append(p[1])
                classes.append("ADJ_OPEN")

    rows = np.array(rows, dtype=int)
    cols = np.array(cols, dtype=int)
    classes = np.array(classes, dtype="<U9")
    value = np.zeros(len(rows), dtype=float)   # the class's key quantity, for the table

    def sel(cls):
        return np.flatnonzero(classes == cls)

    i = sel("DEAD")
    # under 0.04: the flats' dead ceiling is 0.05 of the *local* response, and
    # the smooth QE pattern (+-5 %) would put a truth value of 0.049 either side
    qe[rows[i], cols[i]] = rng.uniform(0.0, 0.04, len(i))
    dark_current[rows[i], cols[i]] = 0.0
    value[i] = qe[rows[i], cols[i]]
    i = sel("LOW_QE")
    qe[rows[i], cols[i]] = rng.uniform(0.2, 0.45, len(i))
    value[i] = qe[rows[i], cols[i]]
    i = sel("OPEN")
    q_open = rng.uniform(0.25, 0.4, len(i))
    lost = qe[rows[i], cols[i]] - q_open
    qe[rows[i], cols[i]] = q_open
    value[i] = q_open
    value[n_placed:] = 1.0      # the diagonal ADJ_OPEN pixels keep their response
    for k, (dy, dx) in enumerate([(-1, 0), (1, 0), (0, -1), (0, 1)]):
        j = i + 1 + k           # the 4 side ADJ_OPEN rows follow their OPEN pixel
        ny_, nx_ = rows[i] + dy, cols[i] + dx
        assert np.all(rows[j] == ny_) and np.all(cols[j] == nx_)
        # neighbour collects a quarter of the lost charge, relative to its QE
        neighbour_gain[ny_, nx_] = 1 + 0.25 * lost / qe[ny_, nx_]
        value[j] = neighbour_gain[ny_, nx_]
    i = sel("HOT")
    lo, hi = par.hot_dark_current
    dark_current[rows[i], cols[i]] = 10 ** rng.uniform(np.log10(lo), np.log10(hi), len(i))
    value[i] = dark_current[rows[i], cols[i]]
    i = sel("WARM")
    dark_current[rows[i], cols[i]] = rng.uniform(*par.warm_dark_current, len(i))
    value[i] = dark_current[rows[i], cols[i]]
    i = sel("RC")
    rc_amplitude[rows[i], cols[i]] = rng.uniform(100.0, 600.0, len(i))
    rc_tau[rows[i], cols[i]] = rng.uniform(1.0, 5.0, len(i))     # decays within seconds
    value[i] = rc_amplitude[rows[i], cols[i]]
    i = sel("TELEGRAPH")
    tel_amp[rows[i], cols[i]] = rng.uniform(30.0, 200.0, len(i))
    tel_dwell[rows[i], cols[i]] = rng.uniform(1.0, 10.0, len(i))  # mean time between switches
    value[i] = tel_amp[rows[i], cols[i]]
    i = sel("LOW_PED")
    low_ped[rows[i], cols[i]] = -rng.uniform(100.0, 500.0, len(i))
    value[i] = low_ped[rows[i], cols[i]]

    # Reference pixels see no light and no dark current.
    dark_current[refpix] = 0.0

    defects = Table(
        {"y": rows, "x": cols, "defect": classes, "value": value},
        meta={"DETECTOR": geom.detector, "SEED": seed},
    )
    return DetectorTruth(
        geometry=geom, parameters=par, seed=seed, bias=bias, read_noise=read_noise,
        dark_current=dark_current, gain=gain, qe=qe, nonlin_alpha=nonlin_alpha,
        saturation=(bias + sat_signal).astype(f32), rc_amplitude=rc_amplitude,
        rc_tau=rc_tau, telegraph_amplitude=tel_amp, telegraph_dwell=tel_dwell,
        low_pedestal=low_ped, open_neighbour_gain=neighbour_gain, defects=defects,
        refpix=refpix,
    )


def _inverse_series(degree: int, umax: float) -> np.ndarray:
    """Coefficients d_1..d_degree of g(u) ~ sum d_k u^k, g(u) = (1 - sqrt(1 - 4u)) / 2.

    g inverts u = v - v**2 (the normalised form of m = L - alpha L^2 with
    u = alpha m, v = alpha L).  The fit is of g(u)/u on [0, umax], so it
    minimises the *relative* error of the linearised signal (3e-5 at most for
    degree 5 and umax = 0.13).  g has a branch point at u = 1/4: umax must stay
    well below it.
    """
    if not 0 < umax < 0.2:
        raise ValueError(f"umax={umax} must be in (0, 0.2)")
    u = np.linspace(umax * 1e-6, umax, 4000)
    g = (1 - np.sqrt(1 - 4 * u)) / 2
    basis = np.stack([u ** k for k in range(degree)], axis=1)
    d, *_ = np.linalg.lstsq(basis, g / u, rcond=None)
    return d


def linearity_coefficients(alpha: np.ndarray, degree: int = LINEARITY_DEGREE,
                           umax: float = MAX_ALPHA_M) -> np.ndarray:
    """Correction coefficients for ``m = L - alpha L**2``, per pixel.

    ``L = (1/alpha) g(alpha m)``; with ``g(u) = sum_k d_k u^k`` this gives
    ``c_k = d_k alpha**(k-1)`` per pixel.  ``umax`` bounds ``alpha m`` (at
    saturation it is ``d (1-d)`` <= 0.1275 for the deficits d <= 0.15 that
    :func:`make_truth` draws).

    Returns an array (degree + 1, ny, nx) with ``c_0 = 0``.
    """
    d = _inverse_series(degree, umax)
    alpha = np.asarray(alpha, dtype=np.float64)
    out = np.zeros((degree + 1,) + alpha.shape, dtype=np.float64)
    for k in range(1, degree + 1):
        out[k] = d[k - 1] * alpha ** (k - 1)
    return out.astype(np.float32)

"""Gain reference file from flat pairs (and dark pairs): the file layer.

Inputs are ramps calibrated at least through the saturation step (so that
saturated groups are flagged; the default module configuration runs dq_init,
saturation and superbias): two or more flats of one illumination and, for the
DDFF method, two or more darks of the same readout.  Consecutive files make
the pairs (flats 1-2, 3-4, ...; darks likewise, reused in turn); every
integration of a pair is one photon transfer estimate.  The algorithm is in
:mod:`jwst_reffiles.gain.photon_transfer`.

The files are read a band of rows (a multiple of the box) and one integration
at a time: memory is set by the band, not by the number of files.

Output: a GainModel (e-/DN), each box's gain given to its pixels (boxes with no
fit get the median of the others, recorded in HISTORY), or a pixel's own gain
where ``per_pixel_max_error`` is set and its uncertainty is below it.  A table
of the fit per box (gain, uncertainty, pixels, levels, PTC coefficients) is
written next to the file as ``<output>_ptc.ecsv``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table
from stdatamodels.jwst import datamodels as dm

from ..detectors import group_times
from ..dq import flag_value
from ..io import READOUT_KEYS, RampFile, check_consistent
from ..stats import MAD_TO_SIGMA, nanmedian
from ..reffile import atomic_write, crds_info_from_file, save_reference
from .photon_transfer import fit_ptc, pixel_ptc, ptc_levels, to_boxes

log = logging.getLogger(__name__)

#: Values left out of the photon transfer statistics: saturated or unusable groups,
#: and reference pixels (no photons: a box mostly of them has no meaningful fit).
UNUSABLE = flag_value(["SATURATED", "DO_NOT_USE", "REFERENCE_PIXEL"])

__all__ = ["make_gain", "GainResult"]


@dataclass
class GainResult:
    """What :func:`make_gain` computed (also saved)."""

    #: the gain image [e-/DN] (the saved GainModel's data)
    gain: np.ndarray
    #: per box: gain, its standard error, pixels used per level, levels fitted
    box_gain: np.ndarray
    box_err: np.ndarray
    box_npix: np.ndarray
    box_nlevels: np.ndarray
    #: per box: the photon transfer curve's polynomial coefficients (lowest order first)
    coefficients: np.ndarray
    #: the box size [pixels]
    box: int
    #: per pixel where the data allow (``per_pixel_max_error``), else None
    pixel_gain: np.ndarray | None = None
    pixel_err: np.ndarray | None = None
    #: the mean IPC correction factor of the variances (1: none)
    ipc_factor: float = 1.0
    #: the saved file
    path: Path | None = None


def _pairs(files: list[Path], what: str) -> list[tuple[Path, Path]]:
    if len(files) < 2:
        raise ValueError(f"the photon transfer method needs at least 2 {what} (a pair), "
                         f"got {len(files)}: {', '.join(map(str, files)) or 'none'}")
    if len(files) % 2:
        log.warning("gain: %d %s: the last one (%s) has no partner and is not used",
                    len(files), what, files[-1])
    return [(files[i], files[i + 1]) for i in range(0, len(files) - 1, 2)]


def make_gain(flat_files, dark_files=(), output_file=None, box: int = 32, sigma: float = 5.0,
              max_clipping_iters: int = 5, ptc_degree: int = 2, max_signal: float | None = None,
              ipc_correction: bool = False, per_pixel_max_error: float | None = None,
              min_pixels: int = 50, memory_mb: float = 512.0, author: str = "jwst_reffiles",
              description: str = "Gain from the photon transfer method",
              pedigree: str = "GROUND", useafter: str = "2022-01-01T00:00:00",
              history: str = "", ptc_table: str | bool = True) -> GainResult:
    """Make a gain reference file by the photon transfer method.

    Parameters
    ----------
    flat_files : list of str
        Flats of one illumination (pairs of consecutive files).
    dark_files : list of str
        Darks of the same readout (pairs), for the DDFF method; without them
        the read-noise term of the PTC is fitted (FF method).
    output_file : str
        The GainModel to write (required).
    box : int
        Side of the square regions [pixels] whose pixel statistics make one
        photon transfer curve.
    sigma, max_clipping_iters : float, int
        Clipping of each box's values (5 sigma keeps the variance unbiased).
    ptc_degree : int
        Degree of the PTC polynomial in signal: 1 (pure shot noise), 2 (with
        the non-linearity term, the default) or 3.
    max_signal : float or None
        Levels with a mean CDS signal above this [DN] are not fitted.
    ipc_correction : bool
        Correct the variances for inter-pixel capacitance (see
        :mod:`~jwst_reffiles.gain.photon_transfer`).
    per_pixel_max_error : float or None
        When set, also fit each pixel from its temporal statistics over all
        integrations and use it where its relative uncertainty is below this.
    min_pixels : int
        A level of a box is fitted only with at least this many pixels.
    memory_mb : float
        Budget for one band of rows of the four ramps.
    author, description, pedigree, useafter, history : str
        CRDS metadata.
    ptc_table : bool or str
        Write the per-box table (True: ``<output>_ptc.ecsv``; a path; False: no).
    """
    if output_file is None:
        raise ValueError("make_gain: output_file must be given")
    if box < 2:
        raise ValueError(f"box must be >= 2 pixels, got {box}")
    flats = [Path(f) for f in flat_files]
    darks = [Path(f) for f in (dark_files or ())]
    fpairs = _pairs(flats, "flats")
    dpairs = _pairs(darks, "darks") if darks else []
    # levels are matched group by group: the flats and darks share one readout
    headers = check_consistent(flats + darks, READOUT_KEYS, "gain inputs (flats and darks)")

    ramps = {p: RampFile(p) for p in flats + darks}
    try:
        shapes = {p: r.shape for p, r in ramps.items()}
        nints0, ngroups, ny, nx = shapes[flats[0]]
        if ngroups < 3:
            raise ValueError(f"{flats[0]}: {ngroups} groups; the PTC needs at least 3")
        nby, nbx = -(-ny // box), -(-nx // box)
        band_rows = int(memory_mb * 2**20 // (ngroups * nx * 8 * 8))
        band_rows = max(box, band_rows // box * box)
        samples = []            # (flat pair, integration, dark pair, integration)
        for k, (f1, f2) in enumerate(fpairs):
            nint = min(shapes[f1][0], shapes[f2][0])
            for i in range(nint):
                if dpairs:
                    d1, d2 = dpairs[(k * nint + i) % len(dpairs)]
                    j = i % min(shapes[d1][0], shapes[d2][0])
                    samples.append((f1, f2, i, d1, d2, j))
                else:
                    samples.append((f1, f2, i, None, None, None))
        nlev = ngroups - 1
        sig = np.full((len(samples), nlev, nby, nbx), np.nan)
        var = np.full_like(sig, np.nan)
        npix = np.zeros_like(sig)
        ipc = []
        pixel = None
        if per_pixel_max_error is not None:
            pixel = {"gain": np.full((ny, nx), np.nan), "err": np.full((ny, nx), np.nan)}
        log.info("gain: %d flat pair(s), %d dark pair(s), %d integration sample(s), "
                 "%d levels, %dx%d boxes of %d px, bands of %d rows", len(fpairs), len(dpairs),
                 len(samples), nlev, nby, nbx, box, band_rows)
        for y0 in range(0, ny, band_rows):
            y1 = min(ny, y0 + band_rows)
            b0, b1 = y0 // box, -(-y1 // box)
            for s, (f1, f2, i, d1, d2, j) in enumerate(samples):
                one = slice(i, i + 1)
                args = [ramps[f1].read_usable(y0, y1, one, bad_flags=UNUSABLE)[0],
                        ramps[f2].read_usable(y0, y1, one, bad_flags=UNUSABLE)[0]]
                if d1 is not None:
                    dj = slice(j, j + 1)
                    args += [ramps[d1].read_usable(y0, y1, dj, bad_flags=UNUSABLE)[0],
                             ramps[d2].read_usable(y0, y1, dj, bad_flags=UNUSABLE)[0]]
                if y0 == 0 and i == 0:
                    _check_illumination(args[0], args[1], f1, f2)
                r = ptc_levels(*args, box=box, sigma=sigma, maxiters=max_clipping_iters,
                               ipc_correction=ipc_correction)
                sig[s, :, b0:b1] = r["signal"]
                var[s, :, b0:b1] = r["variance"]
                npix[s, :, b0:b1] = r["npix"]
                ipc.append(float(r["ipc_factor"]))
            if pixel is not None:
                nstack = sum(shapes[p][0] for p in flats + darks)
                step = max(1, int(memory_mb * 2**20 // (nstack * ngroups * nx * 8 * 4)))
                step = max(box, step // box * box)      # whole boxes: the error is per box
                for r0 in range(y0, y1, step):
                    _pixel_band(pixel, ramps, flats, darks, r0, min(y1, r0 + step),
                                ptc_degree, max_signal, box)
    finally:
        for r in ramps.values():
            r.close()

    intercept = not dpairs
    with warnings.catch_warnings():      # levels no integration could measure: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean_sig, mean_var = np.nanmean(sig, axis=0), np.nanmean(var, axis=0)
    # signal at g_0, from the first level's (g_1 - g_0) and the groups' read times
    hdr = headers[flats[0]]
    t0, t1 = group_times(2, int(hdr.get("NFRAMES", 1)), int(hdr.get("GROUPGAP", 0)))
    offset = t0 / (t1 - t0)
    fit = fit_ptc(mean_sig, mean_var, npix.sum(axis=0), intercept=intercept, degree=ptc_degree,
                  max_signal=max_signal, min_npix=min_pixels, offset=offset * mean_sig[0])
    # uncertainty: scatter of the per-integration fits
    per = fit_ptc(np.moveaxis(sig, 1, 0), np.moveaxis(var, 1, 0), np.moveaxis(npix, 1, 0),
                  intercept=intercept, degree=ptc_degree, max_signal=max_signal,
                  min_npix=min_pixels, offset=offset * sig[:, 0])
    nfit = np.isfinite(per.gain).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        err = np.where(nfit >= 2, np.nanstd(per.gain, axis=0, ddof=1) / np.sqrt(nfit), np.nan)
    box_gain = fit.gain
    good = np.isfinite(box_gain)
    if not good.any():
        raise ValueError("gain: no region could be fitted (too few unsaturated levels or "
                         f"pixels; {nlev} levels, min_pixels={min_pixels})")
    fill = float(np.median(box_gain[good]))
    nfilled = int((~good).sum())
    gain = np.repeat(np.repeat(np.where(good, box_gain, fill), box, 0), box, 1)[:ny, :nx]
    notes = [f"Photon transfer ({'DDFF: flat pairs less dark pairs' if dpairs else 'FF: flat pairs, read noise fitted'}), "
             f"{box}x{box} px boxes, PTC degree {ptc_degree}, {len(samples)} integration "
             f"pair(s); median gain {fill:.4f} e-/DN"]
    if nfilled:
        notes.append(f"{nfilled} of {good.size} boxes had no fit and got the median gain")
    ipc_mean = float(np.mean(ipc)) if ipc else 1.0
    if ipc_correction:
        notes.append(f"IPC-corrected variances (mean factor {ipc_mean:.4f})")
    if pixel is not None:
        use = np.isfinite(pixel["gain"]) & (pixel["err"] <= per_pixel_max_error)
        gain = np.where(use, pixel["gain"], gain)
        notes.append(f"{int(use.sum())} pixels have their own gain (relative uncertainty <= "
                     f"{per_pixel_max_error})")
    if history:
        notes.insert(0, history)
    out = Path(output_file)
    info = crds_info_from_file(flats[0], shape=(ny, nx))
    model = dm.GainModel(data=gain.astype(np.float32))
    # the IPC convention, for the users and the run's consistency check with an IPC file
    cards = [["IPCCORR", bool(ipc_correction), "variances corrected for IPC"]]
    if ipc_correction:
        cards.append(["IPCFACTR", round(ipc_mean, 6), "IPC factor of the variances"])
    model.extra_fits = {"PRIMARY": {"header": cards}}
    path = save_reference(model, out, reftype="GAIN", input_files=flats + darks, info=info,
                          author=author, description=description, pedigree=pedigree,
                          useafter=useafter, history=notes)
    model.close()
    if ptc_table:
        tpath = Path(ptc_table) if isinstance(ptc_table, str) else out.with_name(
            out.name[:-5] + "_ptc.ecsv" if out.name.endswith(".fits") else out.name + "_ptc.ecsv")
        yy, xx = np.mgrid[0:nby, 0:nbx]
        t = Table({"y0": (yy * box).ravel(), "x0": (xx * box).ravel(),
                   "gain": box_gain.ravel(), "gain_err": err.ravel(),
                   "npix": npix.sum(axis=0).max(axis=0).ravel(),
                   "nlevels": fit.nlevels.ravel()})
        for q in range(fit.coefficients.shape[0]):
            t[f"a{q}"] = fit.coefficients[q].ravel()
        t.meta.update({"box": box, "method": "DDFF" if dpairs else "FF", "ipc_factor": ipc_mean,
                       "output": str(out.name)})
        atomic_write(tpath, lambda tmp: t.write(tmp, format="ascii.ecsv"))
    log.info("gain: median %.4f e-/DN over %d boxes -> %s", fill, int(good.sum()), path)
    return GainResult(gain=gain, box_gain=box_gain, box_err=err, box_npix=npix.sum(axis=0),
                      box_nlevels=fit.nlevels, coefficients=fit.coefficients, box=box,
                      pixel_gain=None if pixel is None else pixel["gain"],
                      pixel_err=None if pixel is None else pixel["err"], ipc_factor=ipc_mean,
                      path=path)


def _check_illumination(a, b, f1, f2, tolerance: float = 0.1) -> None:
    """The two flats of a pair must see (nearly) the same illumination: compared
    at the last group where most pixels are still usable in both."""
    both = np.isfinite(a) & np.isfinite(b)
    frac = both.reshape(both.shape[0], -1).mean(axis=1)
    levels = np.flatnonzero(frac[1:] > 0.5) + 1
    k = int(levels[-1]) if levels.size else 1
    with np.errstate(invalid="ignore"):
        sa = np.nanmedian(np.where(both[k] & both[0], a[k] - a[0], np.nan))
        sb = np.nanmedian(np.where(both[k] & both[0], b[k] - b[0], np.nan))
    if not (np.isfinite(sa) and np.isfinite(sb)) or sb <= 0 or sa <= 0:
        raise ValueError(f"gain: no signal in the flat pair {f1.name} / {f2.name} (median CDS "
                         f"signal {sa:.1f} and {sb:.1f} DN): are these flats?")
    if abs(sa / sb - 1) > tolerance:
        raise ValueError(f"gain: the flats {f1.name} and {f2.name} differ in illumination by "
                         f"{100 * abs(sa / sb - 1):.0f}% (median CDS signal {sa:.0f} and "
                         f"{sb:.0f} DN); a photon transfer pair must be two flats of the same "
                         f"illumination")


def _pixel_band(pixel, ramps, flats, darks, y0, y1, degree, max_signal, box):
    """Per-pixel gain of one band of rows from the temporal statistics.

    The uncertainty comes from the data: the samples are split in two halves
    fitted separately, and the robust spread over each box of half their
    relative difference (the full set's uncertainty) is given to the box's pixels.
    """
    fstack = np.concatenate([ramps[f].read_usable(y0, y1, bad_flags=UNUSABLE) for f in flats])
    dstack = (np.concatenate([ramps[d].read_usable(y0, y1, bad_flags=UNUSABLE) for d in darks])
              if darks else None)

    def fit(sel):
        pts = pixel_ptc(fstack[sel], None if dstack is None else dstack[sel])
        return fit_ptc(pts["signal"], pts["variance"], pts["npix"], intercept=dstack is None,
                       degree=degree, max_signal=max_signal, min_npix=5).gain

    full = fit(slice(None))
    g1, g2 = fit(slice(0, None, 2)), fit(slice(1, None, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        half = np.abs(g1 - g2) / (2.0 * full)
    # robust spread: a few pixels' half-set fits go astray
    spread = MAD_TO_SIGMA * nanmedian(to_boxes(half, box), axis=0)
    ny, nx = full.shape
    err = np.repeat(np.repeat(spread, box, 0), box, 1)[:ny, :nx]
    pixel["gain"][y0:y1] = full
    pixel["err"][y0:y1] = np.where(np.isfinite(full), err, np.nan)

"""Saturation reference file from flat ramps that saturate.

A ramp that saturates climbs and then stays on a plateau: from some group on,
every group-to-group difference is much smaller than the ramp's early slope.
:func:`plateau_levels` finds, per pixel and integration, that onset and the
plateau's level and noise; :func:`combine_plateaus` takes the sigma-clipped
mean over all the ramps (the one kernel, :func:`jwst_reffiles.stats.stack_stats`).

The saturation threshold written is the plateau level less ``margin_sigma``
times the noise of one plateau group, so that the jwst saturation step (which
flags a group when its value reaches the threshold) flags every plateau group
and no earlier one.  Pixels for which no ramp reached a plateau (dead or weak
pixels, or flats too faint) get NO_SAT_CHECK and the A-to-D limit.

Inputs are raw (or dq_init) ramps: the SaturationModel is in raw DN, bias
included, as the pipeline applies it before the superbias step.  The
functions on arrays are pure; :func:`make_saturation` reads the files a block
of rows at a time and writes the model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels as dm

from ..dq import dq_def_records, flag_value
from ..io import RampFile, check_consistent
from ..reffile import crds_info_from_file, save_reference
from ..stats import nanmedian, stack_stats

log = logging.getLogger(__name__)

__all__ = ["plateau_levels", "combine_plateaus", "make_saturation", "ATOD_LIMIT"]

#: The largest raw value (16-bit A-to-D converter).
ATOD_LIMIT = 65535.0


def plateau_levels(ramps: np.ndarray, flat_fraction: float = 0.05, min_step: float = 30.0,
                   min_plateau_groups: int = 2, early_groups: int = 3) -> dict[str, np.ndarray]:
    """Plateau onset, level and noise of every ramp.

    Parameters
    ----------
    ramps : (..., ngroups, ny, nx) array (NaN = unusable value; a ramp with a
        NaN is used up to its first NaN only).
    flat_fraction : a difference below this fraction of the ramp's early slope
        (median of its first ``early_groups`` differences) counts as flat.
    min_step : [DN] nor does a difference below this count as rising; ramps
        whose early slope is under 3 x the flat threshold give no plateau.
    min_plateau_groups : plateau values needed after the onset.

    Returns a dict of arrays shaped like one group (``...``, ny, nx):
    ``onset`` (index of the first plateau group, -1 if none), ``level`` (mean
    of the plateau values after the onset group, NaN if none), ``noise`` (their
    standard deviation) and ``count`` (how many).
    """
    r = np.asarray(ramps, dtype=np.float64)
    ngroups = r.shape[-3]
    if ngroups < early_groups + min_plateau_groups + 1:
        raise ValueError(f"ramps of {ngroups} groups are too short to find a plateau "
                         f"(need >= {early_groups + min_plateau_groups + 1})")
    d = np.diff(r, axis=-3)                                      # (..., ngroups-1, ny, nx)
    slope = np.median(d[..., :early_groups, :, :], axis=-3)
    thr = np.maximum(flat_fraction * slope, min_step)
    with np.errstate(invalid="ignore"):
        flat = np.abs(d) < thr[..., None, :, :]
    # flat from difference j to the end (NaN differences are not flat)
    tail = np.flip(np.logical_and.accumulate(np.flip(flat, -3), axis=-3), -3)
    any_tail = tail.any(axis=-3)
    j = np.where(any_tail, np.argmax(tail, axis=-3), -1)         # first flat difference
    idx = np.arange(ngroups)[(None,) * (r.ndim - 3) + (slice(None), None, None)]
    # the values after the onset group r[j]: r[j+1:]
    plateau = idx > j[..., None, :, :]
    plateau &= any_tail[..., None, :, :]
    count = plateau.sum(axis=-3)
    ok = (count >= min_plateau_groups) & (slope > 3 * thr) & any_tail
    with np.errstate(invalid="ignore", divide="ignore"):
        vals = np.where(plateau, r, 0.0)
        level = vals.sum(axis=-3) / count
        noise = np.sqrt(np.where(plateau, (r - level[..., None, :, :]) ** 2, 0.0).sum(axis=-3)
                        / np.maximum(count - 1, 1))
    return {"onset": np.where(ok, j, -1), "level": np.where(ok, level, np.nan),
            "noise": np.where(ok, noise, np.nan), "count": np.where(ok, count, 0)}


def combine_plateaus(levels: np.ndarray, noises: np.ndarray, sigma: float = 3.0,
                     maxiters: int = 5, margin_sigma: float = 5.0,
                     min_ramps: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Saturation thresholds from the plateaus of many ramps.

    ``levels``, ``noises``: (nramps, ny, nx), NaN where a ramp has none.
    Returns (threshold, dq, nramps): threshold = clipped mean level less
    ``margin_sigma`` x the median plateau noise; NO_SAT_CHECK (and the A-to-D
    limit) where fewer than ``min_ramps`` ramps reached a plateau.
    """
    st = stack_stats(levels, sigma=sigma, maxiters=maxiters)
    with np.errstate(all="ignore"):
        noise = nanmedian(np.where(np.isfinite(levels), noises, np.nan), axis=0)
    noise = np.where(np.isfinite(noise), noise, 0.0)
    none = st.count < min_ramps
    threshold = np.where(none, ATOD_LIMIT, st.mean - margin_sigma * noise)
    dq = np.where(none, flag_value("NO_SAT_CHECK"), 0).astype(np.uint32)
    return threshold, dq, st.count


def make_saturation(files, output_file=None, flat_fraction: float = 0.05,
                    min_step: float = 30.0, min_plateau_groups: int = 2,
                    margin_sigma: float = 5.0, clipping_sigma: float = 3.0,
                    max_clipping_iters: int = 5, min_ramps: int = 1,
                    memory_mb: float = 512.0, author: str = "jwst_reffiles",
                    description: str = "Saturation levels from flat plateaus",
                    pedigree: str = "GROUND", useafter: str = "2022-01-01T00:00:00",
                    history: str = "") -> Path:
    """Make a saturation reference file from raw flat ramps that saturate.

    Parameters
    ----------
    files : list of str
        Raw or dq_init ramps (SCI in raw DN) of one detector and readout.
    output_file : str
        The SaturationModel to write (required).
    flat_fraction, min_step, min_plateau_groups :
        Plateau detection, see :func:`plateau_levels`.
    margin_sigma, clipping_sigma, max_clipping_iters, min_ramps :
        Combination, see :func:`combine_plateaus`.
    memory_mb : float
        Budget for the rows of all ramps read at once.
    author, description, pedigree, useafter, history : str
        CRDS metadata.
    """
    if output_file is None:
        raise ValueError("make_saturation: output_file must be given")
    files = [Path(f) for f in files]
    check_consistent(files, what="saturation inputs")
    ramps = [RampFile(f) for f in files]
    try:
        _, ngroups, ny, nx = ramps[0].shape
        nramps = sum(r.shape[0] for r in ramps)
        rows = int(max(1, min(ny, memory_mb * 2**20 // (nramps * ngroups * nx * 8 * 4))))
        threshold = np.empty((ny, nx))
        dq = np.empty((ny, nx), np.uint32)
        count = np.empty((ny, nx), np.int32)
        log.info("saturation: %d files, %d ramps of %d groups, %d rows per block",
                 len(files), nramps, ngroups, rows)
        for y0 in range(0, ny, rows):
            y1 = min(ny, y0 + rows)
            lv, nz = [], []
            for r in ramps:
                # a NaN (flagged value) ends a ramp's use: set the rest NaN too
                data = r.read_usable(y0, y1, bad_flags=flag_value("DO_NOT_USE"))
                p = plateau_levels(data, flat_fraction, min_step, min_plateau_groups)
                lv.append(p["level"])
                nz.append(p["noise"])
            t, q, c = combine_plateaus(np.concatenate(lv), np.concatenate(nz), clipping_sigma,
                                       max_clipping_iters, margin_sigma, min_ramps)
            threshold[y0:y1], dq[y0:y1], count[y0:y1] = t, q, c
    finally:
        for r in ramps:
            r.close()
    nsat = int((dq == 0).sum())
    notes = [f"Plateau of {nramps} ramp(s) from {len(files)} file(s) less {margin_sigma} x the "
             f"plateau noise; {nsat} of {dq.size} pixels saturated in at least {min_ramps} "
             f"ramp(s), the others NO_SAT_CHECK"]
    if history:
        notes.insert(0, history)
    info = crds_info_from_file(files[0], shape=(ny, nx))
    model = dm.SaturationModel(data=threshold.astype(np.float32), dq=dq, dq_def=dq_def_records(dq))
    path = save_reference(model, output_file, reftype="SATURATION", input_files=files, info=info,
                          author=author, description=description, pedigree=pedigree,
                          useafter=useafter, history=notes)
    model.close()
    log.info("saturation: %d pixels with a level -> %s", nsat, path)
    return path

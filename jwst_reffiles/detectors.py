"""Detector layout facts shared by the algorithms and the simulator."""

from __future__ import annotations

import numpy as np

__all__ = ["FULL_FRAME", "REFPIX_BORDERS", "reference_pixel_mask", "strip_border", "group_times"]

#: Full-frame (ny, nx) per instrument.
FULL_FRAME = {"NIRCAM": (2048, 2048), "NIRISS": (2048, 2048), "NIRSPEC": (2048, 2048),
              "FGS": (2048, 2048), "MIRI": (1024, 1032)}

#: Reference-pixel border widths (bottom, top, left, right) in full-frame pixels.
REFPIX_BORDERS = {"NIRCAM": (4, 4, 4, 4), "NIRISS": (4, 4, 4, 4), "NIRSPEC": (4, 4, 4, 4),
                  "FGS": (4, 4, 4, 4), "MIRI": (0, 0, 4, 4)}


def strip_border(data, refpix):
    """``data`` (..., y, x) without its outer ``refpix`` = (left, right, bottom, top)
    columns/rows (the documented functions' order); as it is for None."""
    if refpix is None:
        return data
    left, right, bottom, top = (int(v) for v in refpix)
    ny, nx = data.shape[-2:]
    return data[..., bottom:ny - top, left:nx - right]


def reference_pixel_mask(instrument: str, xstart: int = 1, ystart: int = 1,
                         xsize: int | None = None, ysize: int | None = None) -> np.ndarray:
    """Boolean map (ysize, xsize), True on reference pixels, for a (sub)array.

    ``xstart``/``ystart`` are the 1-based full-frame corner (SUBSTRT1/2).
    """
    inst = instrument.upper()
    if inst not in FULL_FRAME:
        raise ValueError(f"unknown instrument {instrument!r}; known: {', '.join(FULL_FRAME)}")
    fy, fx = FULL_FRAME[inst]
    xsize = fx if xsize is None else xsize
    ysize = fy if ysize is None else ysize
    bottom, top, left, right = REFPIX_BORDERS[inst]
    rows = np.arange(ystart - 1, ystart - 1 + ysize)
    cols = np.arange(xstart - 1, xstart - 1 + xsize)
    row_ref = (rows < bottom) | (rows >= fy - top)
    col_ref = (cols < left) | (cols >= fx - right)
    return row_ref[:, None] | col_ref[None, :]


def group_times(ngroups: int, nframes: int = 1, groupgap: int = 0, tframe: float = 1.0):
    """Mean read time of each group after the reset [s]: group k averages frames
    k (nframes + groupgap) ... + nframes - 1, frame f being read at (f + 1) tframe."""
    import numpy as np
    k = np.arange(ngroups)
    return (k * (nframes + groupgap) + (nframes + 1) / 2.0) * tframe

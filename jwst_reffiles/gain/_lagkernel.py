"""Compiled per-box sums of neighbour products: the autocovariances behind the
gain's IPC correction and the IPC kernel fit.

:func:`jwst_reffiles.gain.photon_transfer.box_noise` needs, for each lag
(dy, dx) and each box, the sum of ``dev[y, x] * dev[y + dy, x + dx]`` over the
pairs whose two pixels are both kept, and the number of those pairs (a pair is
counted in the box of (y, x)).  numpy made two full-image arrays and two box
reductions per lag; here one pass over the image visits each kept pixel once
and adds its products for every lag.

Not part of the public API.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["box_lag_sums"]


@njit(cache=True, nogil=True)
def _lag_sums(dev, kept, box, dys, dxs, sums, counts):
    ny, nx = dev.shape
    nl = dys.shape[0]
    for y in range(ny):
        by = y // box
        for x in range(nx):
            if not kept[y, x]:
                continue
            bx = x // box
            v = dev[y, x]
            for k in range(nl):
                y2 = y + dys[k]
                x2 = x + dxs[k]
                if y2 < 0 or y2 >= ny or x2 < 0 or x2 >= nx or not kept[y2, x2]:
                    continue
                sums[k, by, bx] += v * dev[y2, x2]
                counts[k, by, bx] += 1


def box_lag_sums(dev: np.ndarray, kept: np.ndarray, box: int, lags) -> tuple[np.ndarray, np.ndarray]:
    """Per lag and box, the sum of products of kept pixel pairs and their count.

    ``dev``: (ny, nx) float deviations; ``kept``: (ny, nx) bool; ``lags``: (dy, dx)
    pairs.  Returns (sums, counts), each (nlags, ceil(ny / box), ceil(nx / box)).
    """
    dev = np.ascontiguousarray(dev, dtype=np.float64)
    kept = np.ascontiguousarray(kept, dtype=np.bool_)
    ny, nx = dev.shape
    lag = np.asarray(lags, dtype=np.int64).reshape(-1, 2)
    shape = (len(lag), -(-ny // box), -(-nx // box))
    sums = np.zeros(shape)
    counts = np.zeros(shape, dtype=np.int64)
    _lag_sums(dev, kept, int(box), np.ascontiguousarray(lag[:, 0]),
              np.ascontiguousarray(lag[:, 1]), sums, counts)
    return sums, counts

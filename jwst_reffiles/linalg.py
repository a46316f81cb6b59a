"""Per-pixel linear algebra shared by the fitting algorithms (gain, linearity).

One place for the batched solve of small normal equations, one system per
pixel: the photon transfer curve's weighted polynomial and the linearity fit's
Gauss-Newton steps both call :func:`solve_batched`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["solve_batched"]

#: systems whose (diagonally scaled) condition number is above this are singular
MAX_CONDITION = 1e12


def solve_batched(h: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``h x = g`` for every system of a batch: ``h`` (..., q, q) symmetric (normal
    equations), ``g`` (..., q).

    Returns ``(x, ok)``: ``ok`` is False where a system is singular, not
    finite, or has a condition number above :data:`MAX_CONDITION` after its
    rows and columns are scaled to a unit diagonal (a polynomial's powers
    differ by orders of magnitude); ``x`` is 0 there.  The condition number is
    the 2-norm one, from the eigenvalues of the symmetric matrices (what an SVD
    gives for them, at a third of its cost).
    """
    h = np.asarray(h, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    q = h.shape[-1]
    dia = np.sqrt(np.abs(np.einsum("...ii->...i", h)))
    dia = np.where(dia > 0, dia, 1.0)
    with np.errstate(all="ignore"):
        hn = h / dia[..., :, None] / dia[..., None, :]
        gn = g / dia
        ok = np.isfinite(hn).all(axis=(-1, -2)) & np.isfinite(gn).all(axis=-1)
        hn = np.where(ok[..., None, None], hn, np.eye(q))
        lam = np.abs(np.linalg.eigvalsh(hn))
        ok &= lam.max(axis=-1) < MAX_CONDITION * lam.min(axis=-1)
        hn = np.where(ok[..., None, None], hn, np.eye(q))
        x = np.linalg.solve(hn, np.where(ok[..., None], gn, 0.0)[..., None])[..., 0] / dia
    ok &= np.isfinite(x).all(axis=-1)
    return np.where(ok[..., None], x, 0.0), ok

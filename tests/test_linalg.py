"""The shared per-pixel batched solver (gain's PTC fit and linearity's steps)."""

import numpy as np

from jwst_reffiles.linalg import solve_batched


def test_solves_each_system_and_marks_the_singular_ones():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(6, 5, 3, 3))
    h = a @ np.swapaxes(a, -1, -2) + 0.1 * np.eye(3)          # symmetric positive definite
    # a polynomial's normal equations: powers orders of magnitude apart
    scale = np.array([1.0, 1e-4, 1e-8])
    h = h * scale[:, None] * scale[None, :]
    g = rng.normal(size=(6, 5, 3))
    h[0, 0] = [[1, 2, 3], [2, 4, 6], [0, 0, 1]]                 # singular
    h[0, 1, 1, 1] = np.nan                                      # not finite
    g[0, 2, 0] = np.inf
    x, ok = solve_batched(h, g)
    assert x.shape == g.shape and ok.shape == g.shape[:-1]
    assert not ok[0, 0] and not ok[0, 1] and not ok[0, 2]
    assert (x[~ok] == 0).all()
    assert ok.sum() == ok.size - 3
    ref = np.linalg.solve(h[ok], g[ok][..., None])[..., 0]
    np.testing.assert_allclose(x[ok], ref, rtol=1e-8)

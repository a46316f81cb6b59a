"""Compiled per-pixel loops of the linearity fit: its Gauss-Newton normal
equations, and the search for each ramp's first cosmic-ray jump.

:func:`jwst_reffiles.linearity.linearity.fit_linearity` fits, per pixel, a forward
model ``m = L + sum_j beta_j L^j`` with ``L = r_i t + b_i`` per ramp.  Each
iteration accumulates, for every pixel and ramp, the normal equations of the
ramp's (r_i, b_i) and the shared beta over the ramp's groups, eliminates the
ramp's two parameters (Schur complement) and sums the reduced system over the
ramps.  numpy did that with a dozen whole-block passes per ramp and iteration;
here each pixel's groups are summed in registers, a pixel at a time, in threads.
The solve of the reduced systems and the convergence rule stay with the caller
(the same arithmetic as before: :func:`jwst_reffiles.linalg.solve_batched`).

Not part of the public API.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["pack_ramp", "accumulate", "update_theta", "jump_onset", "inversion_system"]


@njit(cache=True, nogil=True)
def accumulate(x, w, tt, theta, beta, a0, a1, H, g, ainv, gth, C):
    """Normal equations of pixels ``a0:a1``.

    x, w : (P, R, G) scaled signal and weight (0 where a group is not fitted): each
    pixel's values together in memory
    tt : (R, G) scaled group times; theta : (P, R, 2) each ramp's (rate, offset)
    beta : (P, q) the forward model's coefficients of L^2 .. L^(q+1)
    Out: H (P, q, q), g (P, q) reduced system; ainv (P, R, 2, 2), gth (P, R, 2),
    C (P, R, 2, q) what the update of theta needs.
    """
    P, R, G = x.shape
    q = beta.shape[1]
    if q == 2:             # the default forward model (degree 3): sums in registers
        _accumulate_q2(x, w, tt, theta, beta, a0, a1, H, g, ainv, gth, C)
        return
    k = 2 + q
    M = np.empty((k, k))
    grad = np.empty(k)
    cols = np.empty(k)
    for p in range(a0, a1):
        for i in range(q):
            g[p, i] = 0.0
            for j in range(q):
                H[p, i, j] = 0.0
        for r in range(R):
            for a in range(k):
                grad[a] = 0.0
                for b in range(k):
                    M[a, b] = 0.0
            th0 = theta[p, r, 0]
            th1 = theta[p, r, 1]
            for gi in range(G):
                wv = w[p, r, gi]
                t = tt[r, gi]
                lin = th0 * t + th1
                model = lin
                dfdl = 1.0
                below = lin                      # lin ** (j - 1)
                for jj in range(q):
                    j = jj + 2
                    lp = below * lin             # lin ** j
                    cols[2 + jj] = lp
                    model += beta[p, jj] * lp
                    dfdl += j * below * beta[p, jj]
                    below = lp
                res = wv * (x[p, r, gi] - model)
                cols[0] = dfdl * t
                cols[1] = dfdl
                for a in range(k):
                    grad[a] += cols[a] * res
                    wc = wv * cols[a]
                    for b in range(a, k):
                        M[a, b] += wc * cols[b]
            for a in range(k):
                for b in range(a + 1, k):
                    M[b, a] = M[a, b]
            det = M[0, 0] * M[1, 1] - M[0, 1] * M[1, 0]
            if abs(det) > 1e-300:
                i00, i01 = M[1, 1] / det, -M[0, 1] / det
                i10, i11 = -M[1, 0] / det, M[0, 0] / det
            else:
                i00 = i01 = i10 = i11 = 0.0
            ainv[p, r, 0, 0], ainv[p, r, 0, 1] = i00, i01
            ainv[p, r, 1, 0], ainv[p, r, 1, 1] = i10, i11
            gth[p, r, 0], gth[p, r, 1] = grad[0], grad[1]
            for j in range(q):
                C[p, r, 0, j] = M[0, 2 + j]
                C[p, r, 1, j] = M[1, 2 + j]
            for i in range(q):
                ac0 = i00 * M[0, 2 + i] + i01 * M[1, 2 + i]     # (ainv C)[:, i]
                ac1 = i10 * M[0, 2 + i] + i11 * M[1, 2 + i]
                g[p, i] += grad[2 + i] - (ac0 * grad[0] + ac1 * grad[1])
                for j in range(q):
                    H[p, i, j] += M[2 + i, 2 + j] - (M[0, 2 + j] * ac0 + M[1, 2 + j] * ac1)


@njit(cache=True, nogil=True)
def _accumulate_q2(x, w, tt, theta, beta, a0, a1, H, g, ainv, gth, C):
    """:func:`accumulate` for a forward model of degree 3 (beta_2, beta_3): the same
    sums, in scalars."""
    P, R, G = x.shape
    for p in range(a0, a1):
        b2 = beta[p, 0]
        b3 = beta[p, 1]
        h00 = h01 = h11 = g0 = g1 = 0.0
        for r in range(R):
            th0 = theta[p, r, 0]
            th1 = theta[p, r, 1]
            m00 = m01 = m02 = m03 = m11 = m12 = m13 = m22 = m23 = m33 = 0.0
            r0 = r1 = r2 = r3 = 0.0
            for gi in range(G):
                wv = w[p, r, gi]
                t = tt[r, gi]
                lin = th0 * t + th1
                l2 = lin * lin
                l3 = l2 * lin
                dfdl = 1.0 + 2.0 * lin * b2 + 3.0 * l2 * b3
                res = wv * (x[p, r, gi] - (lin + b2 * l2 + b3 * l3))
                c0 = dfdl * t
                c1 = dfdl
                r0 += c0 * res
                r1 += c1 * res
                r2 += l2 * res
                r3 += l3 * res
                w0, w1, w2 = wv * c0, wv * c1, wv * l2
                m00 += w0 * c0
                m01 += w0 * c1
                m02 += w0 * l2
                m03 += w0 * l3
                m11 += w1 * c1
                m12 += w1 * l2
                m13 += w1 * l3
                m22 += w2 * l2
                m23 += w2 * l3
                m33 += wv * l3 * l3
            det = m00 * m11 - m01 * m01
            if abs(det) > 1e-300:
                i00, i01, i11 = m11 / det, -m01 / det, m00 / det
            else:
                i00 = i01 = i11 = 0.0
            ainv[p, r, 0, 0], ainv[p, r, 0, 1] = i00, i01
            ainv[p, r, 1, 0], ainv[p, r, 1, 1] = i01, i11
            gth[p, r, 0], gth[p, r, 1] = r0, r1
            C[p, r, 0, 0], C[p, r, 0, 1] = m02, m03
            C[p, r, 1, 0], C[p, r, 1, 1] = m12, m13
            a0_ = i00 * m02 + i01 * m12          # (ainv C)[:, 0]
            a1_ = i01 * m02 + i11 * m12
            b0_ = i00 * m03 + i01 * m13          # (ainv C)[:, 1]
            b1_ = i01 * m03 + i11 * m13
            g0 += r2 - (a0_ * r0 + a1_ * r1)
            g1 += r3 - (b0_ * r0 + b1_ * r1)
            h00 += m22 - (m02 * a0_ + m12 * a1_)
            h01 += m23 - (m03 * a0_ + m13 * a1_)
            h11 += m33 - (m03 * b0_ + m13 * b1_)
        H[p, 0, 0], H[p, 0, 1], H[p, 1, 0], H[p, 1, 1] = h00, h01, h01, h11
        g[p, 0], g[p, 1] = g0, g1


@njit(cache=True, nogil=True)
def update_theta(theta, ainv, gth, C, dbeta, a0, a1):
    """theta_i += ainv_i (gth_i - C_i dbeta) for pixels ``a0:a1`` of every ramp."""
    R = theta.shape[1]
    q = dbeta.shape[1]
    for p in range(a0, a1):
        for r in range(R):
            v0 = gth[p, r, 0]
            v1 = gth[p, r, 1]
            for j in range(q):
                v0 -= C[p, r, 0, j] * dbeta[p, j]
                v1 -= C[p, r, 1, j] * dbeta[p, j]
            theta[p, r, 0] += ainv[p, r, 0, 0] * v0 + ainv[p, r, 0, 1] * v1
            theta[p, r, 1] += ainv[p, r, 1, 0] * v0 + ainv[p, r, 1, 1] * v1


@njit(cache=True, nogil=True, inline="always")
def _median_of(buf, n):
    """Median of buf[:n] (no NaN), sorting it in place; NaN when n == 0."""
    if n == 0:
        return np.nan
    for i in range(1, n):
        v = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > v:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v
    half = n // 2
    return buf[half] if n % 2 else 0.5 * (buf[half - 1] + buf[half])


@njit(cache=True, nogil=True)
def jump_onset(ramp, nsigma, window, mad_to_sigma, first, a0, a1):
    """The first group after a jump of pixels ``a0:a1`` of ``ramp`` (ngroups, P) into
    ``first`` (ngroups where none): the semantics of
    :func:`jwst_reffiles.linearity.linearity.jump_onset` (a difference that exceeds
    the median of its ``window`` neighbours on each side, the ends repeated, by
    ``nsigma`` robust sigmas of the differences about that trend; NaN ignored)."""
    ng, P = ramp.shape
    n = ng - 1
    d = np.empty(max(n, 1))
    resid = np.empty(max(n, 1))
    buf = np.empty(max(2 * window, n, 1))
    for p in range(a0, a1):
        first[p] = ng
        if n < 1:
            continue
        for k in range(n):
            d[k] = ramp[k + 1, p] - ramp[k, p]
        for k in range(n):
            c = 0
            for o in range(-window, window + 1):
                if o == 0:
                    continue
                v = d[min(max(k + o, 0), n - 1)]
                if not np.isnan(v):
                    buf[c] = v
                    c += 1
            resid[k] = d[k] - _median_of(buf, c)
        m = 0
        for k in range(n):
            if not np.isnan(resid[k]):
                buf[m] = abs(resid[k])
                m += 1
        mad = mad_to_sigma * _median_of(buf, m)
        thr = nsigma * max(mad, 1e-6) if not np.isnan(mad) else np.nan
        for k in range(n):
            if resid[k] > thr:
                first[p] = k + 1
                break


@njit(cache=True, nogil=True)
def inversion_system(beta, reach, npoints, degree, a0, a1, h, g):
    """Normal equations of the correction polynomial of pixels ``a0:a1``: least
    squares of ``L - m`` on ``m^2 .. m^degree`` at ``npoints`` points ``0 < L <= reach``
    of the forward model ``m = L + sum_j beta_j L^j`` (``beta`` (P, q), ``reach`` (P,),
    out ``h`` (P, p, p), ``g`` (P, p), p = degree - 1)."""
    q = beta.shape[1]
    p = degree - 1
    cols = np.empty(p)
    for i in range(a0, a1):
        for a in range(p):
            g[i, a] = 0.0
            for b in range(p):
                h[i, a, b] = 0.0
        top = max(reach[i], 1e-6)
        for n in range(npoints):
            lin = (n + 1.0) / npoints * top
            m = lin
            pw = lin
            for jj in range(q):
                pw = pw * lin                    # lin ** (jj + 2)
                m += beta[i, jj] * pw
            mp = m
            for a in range(p):
                mp = mp * m                      # m ** (a + 2)
                cols[a] = mp
            res = lin - m
            for a in range(p):
                g[i, a] += cols[a] * res
                for b in range(a, p):
                    h[i, a, b] += cols[a] * cols[b]
        for a in range(p):
            for b in range(a + 1, p):
                h[i, b, a] = h[i, a, b]


@njit(cache=True, nogil=True)
def pack_ramp(r, u, tt, scale, min_groups, i, xs, ws, thetas, nramps, a0, a1):
    """Ramp ``i`` of pixels ``a0:a1`` into the fit's block: ``r`` (G, P) signal and ``u``
    (G, P) usable groups to ``xs``/``ws`` (P, R, G) (scaled values, weights 1 where
    usable and finite; none where fewer than ``min_groups``), the starting (rate,
    offset) of the straight line through them to ``thetas`` (P, R, 2), the ramps a
    pixel has to ``nramps``."""
    G = r.shape[0]
    for p in range(a0, a1):
        n = 0
        for g in range(G):
            if u[g, p] and np.isfinite(r[g, p]):
                n += 1
        ok = n >= min_groups
        s0 = s1 = s2 = sa = sb = 0.0
        for g in range(G):
            use = ok and u[g, p] and np.isfinite(r[g, p])
            w = 1.0 if use else 0.0
            x = r[g, p] / scale if use else 0.0
            t = tt[g]
            xs[p, i, g] = x
            ws[p, i, g] = w
            s0 += w
            s1 += w * t
            s2 += w * t * t
            sa += w * t * x
            sb += w * x
        det = s0 * s2 - s1 * s1 if ok else 1.0
        if det == 0.0:
            det = 1.0
        thetas[p, i, 0] = (s0 * sa - s1 * sb) / det
        thetas[p, i, 1] = (s2 * sb - s1 * sa) / det
        if ok:
            nramps[p] += 1

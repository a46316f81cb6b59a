"""Compare two reduced results of :mod:`tests.parity.worker`: the first difference as
a sentence (``None`` when they agree)."""
from __future__ import annotations

import numpy as np


def _arrays(a, b, where, rtol, atol, dtype):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return f"{where}: shape {a.shape} vs {b.shape}"
    if dtype and a.dtype != b.dtype:
        return f"{where}: dtype {a.dtype} vs {b.dtype}"
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        af, bf = a.astype(np.float64), b.astype(np.float64)
        nan_a, nan_b = np.isnan(af), np.isnan(bf)
        if not np.array_equal(nan_a, nan_b):
            return f"{where}: NaN at {int((nan_a != nan_b).sum())} place(s) of one only"
        ok = np.isclose(af, bf, rtol=rtol, atol=atol) | nan_a
        if not ok.all():
            i = np.unravel_index(np.argmin(ok), ok.shape)
            return (f"{where}: {int((~ok).sum())} value(s) differ beyond rtol {rtol}, e.g. at "
                    f"{tuple(int(k) for k in i)}: {af[i]!r} vs {bf[i]!r}")
        return None
    if a.dtype.kind in "OUS" or b.dtype.kind in "OUS":
        return None if a.tolist() == b.tolist() else f"{where}: {a.tolist()!r} vs {b.tolist()!r}"
    if not np.array_equal(a, b):
        return f"{where}: {int((a != b).sum())} element(s) differ"
    return None


def compare(a, b, where="result", rtol=1e-6, atol=0.0, dtype=True):
    """First difference between reduced values ``a`` (ours) and ``b`` (predecessor)."""
    if a[0] != b[0]:
        return f"{where}: {a[0]} vs {b[0]}"
    kind = a[0]
    if kind in ("array",):
        return _arrays(a[1], b[1], where, rtol, atol, dtype)
    if kind == "masked":
        return (_arrays(a[2], b[2], where + " mask", rtol, atol, dtype)
                or _arrays(np.where(a[2], 0, a[1]), np.where(b[2], 0, b[1]), where, rtol, atol,
                           dtype))
    if kind == "scalar":
        if dtype and a[1] != b[1]:
            return f"{where}: scalar type {a[1]} vs {b[1]}"
        return _arrays(a[2], b[2], where, rtol, atol, False)
    if kind == "builtin":
        if a[1] != b[1]:
            return f"{where}: {a[1]} {a[2]!r} vs {b[1]} {b[2]!r}"
        if isinstance(a[2], float):
            return _arrays(a[2], b[2], where, rtol, atol, False)
        return None if a[2] == b[2] else f"{where}: {a[2]!r} vs {b[2]!r}"
    if kind in ("list", "tuple"):
        if len(a[1]) != len(b[1]):
            return f"{where}: {kind} of {len(a[1])} vs {len(b[1])}"
        for i, (x, y) in enumerate(zip(a[1], b[1])):
            d = compare(x, y, f"{where}[{i}]", rtol, atol, dtype)
            if d:
                return d
        return None
    if kind in ("dict", "header"):
        if sorted(a[1]) != sorted(b[1]):
            return f"{where}: keys {sorted(set(a[1]) ^ set(b[1]))} in one only"
        for k in a[1]:
            x, y = a[1][k], b[1][k]
            d = (compare(x, y, f"{where}[{k!r}]", rtol, atol, dtype) if kind == "dict"
                 else (None if _same_card(x, y) else f"{where}[{k}]: {x!r} vs {y!r}"))
            if d:
                return d
        return None
    if kind == "hdulist":
        return compare_hdus(a[1], b[1], where, rtol, atol, dtype)
    if kind == "object":
        return None if a[1] == b[1] else f"{where}: {a[1]} vs {b[1]}"
    return f"{where}: cannot compare {kind}"


def _same_card(x, y):
    if isinstance(x, float) and isinstance(y, float):
        return bool(np.isclose(x, y, rtol=1e-6)) or (np.isnan(x) and np.isnan(y))
    return x == y


def compare_hdus(a, b, where, rtol, atol, dtype, header_keys=None):
    names_a, names_b = [h[0] for h in a], [h[0] for h in b]
    if names_a != names_b:
        return f"{where}: extensions {names_a} vs {names_b}"
    for (name, da, ha), (_, db, hb) in zip(a, b):
        if (da is None) != (db is None):
            return f"{where}[{name}]: data in one only"
        if isinstance(da, dict):
            d = compare(("dict", {k: ("array", v) for k, v in da.items()}),
                        ("dict", {k: ("array", v) for k, v in db.items()}),
                        f"{where}[{name}]", rtol, atol, dtype)
        elif da is not None:
            d = _arrays(da, db, f"{where}[{name}]", rtol, atol, dtype)
        else:
            d = None
        if d:
            return d
        keys = header_keys if header_keys is not None else set(ha) & set(hb)
        for k in sorted(keys):
            if k in ha and k in hb and not _same_card(ha[k], hb[k]):
                return f"{where}[{name}] header {k}: {ha[k]!r} vs {hb[k]!r}"
    return None

"""Recovered against injected: accuracy of reference files made from simulated data.

When the inputs of a run were written by :func:`jwst_reffiles.simulate.simulate_dataset`
(a ``manifest.ecsv`` beside them names the truth maps), every final reference
file can be compared with the truth.  :func:`accuracy` gives, per reference
type, the figures the project's accuracy targets are stated in, each with its
target and whether it is met.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..reftypes import is_mask

__all__ = ["find_truth", "accuracy", "zero_frame_drift", "TARGETS"]

#: The accuracy targets (Algorithms and New-reference-types issues).
TARGETS = {"readnoise": 0.02, "superbias": 0.5, "dark": 0.02, "mask": 0.99, "gain": 0.02,
           "linearity": 0.005, "saturation": 0.01, "ipc": 0.001}


def find_truth(input_files) -> Path | None:
    """The truth maps of simulated inputs (from the manifest next to them), or None."""
    for f in input_files:
        manifest = Path(f).parent / "manifest.ecsv"
        if manifest.is_file():
            meta = Table.read(manifest).meta
            path = Path(f).parent / meta.get("truth_maps", "")
            if path.is_file():
                return path
    return None


def _slices(header):
    x0, y0 = int(header.get("SUBSTRT1", 1)) - 1, int(header.get("SUBSTRT2", 1)) - 1
    return (slice(y0, y0 + int(header["SUBSIZE2"])), slice(x0, x0 + int(header["SUBSIZE1"])))


def _row(quantity, value, target, ok, detail=""):
    return {"quantity": quantity, "value": float(value), "target": target, "ok": bool(ok),
            "detail": detail}


def zero_frame_drift(inputs, xstart: int, xsize: int) -> tuple[np.ndarray, int] | None:
    """Mean reference-pixel drift in the first group of the simulated ``inputs``, per column.

    The simulator adds to every read a drift common to an amplifier (and an
    even/odd column offset); its mean over the zero frames is in any superbias
    made from them (no algorithm can tell it from the bias: the pipeline's
    refpix step removes it from calibrated data).  Returns (drift per column,
    number of zero frames), or None when the per-exposure truth is not found.
    """
    from .detectors import get_detector
    total, n, detector, noutputs = None, 0, None, None
    for f in inputs or []:
        f = Path(f)
        manifest = f.parent / "manifest.ecsv"
        if not manifest.is_file():
            return None
        m = Table.read(manifest)
        rows = m[m["filename"] == f.name]
        if not len(rows):
            return None
        with fits.open(f.parent / rows[0]["truth_file"]) as t:
            first = np.asarray(t["DRIFT"].data[:, 0], dtype=np.float64)   # (nints, namps, 2)
        total = first.sum(axis=0) if total is None else total + first.sum(axis=0)
        n += first.shape[0]
        detector = m.meta.get("detector")
        noutputs = first.shape[1]
    if not n or detector is None:
        return None
    channels = get_detector(detector).drift_channels(xstart, xsize,
                                                     noutputs if noutputs > 1 else 1)
    return (total / n).ravel()[channels], n


def accuracy(path, reftype: str, truth_path, tframe: float | None = None,
             inputs=None) -> list[dict]:
    """Accuracy figures of one reference file against the truth maps.

    ``inputs``: the raw files the reference file was made from; for a
    superbias they give the drift present in their zero frames
    (:func:`zero_frame_drift`), which then counts as part of the truth; for a
    mask they say which defect classes it can show (flats: DEAD, LOW_QE, OPEN,
    ADJ_OPEN; darks: the others).
    """
    rt = reftype.lower()
    if rt == "ipc":                       # a kernel: its couplings against the injected
        t_hdr, f_hdr = fits.getheader(truth_path), fits.getheader(path)
        if "IPCALPHA" not in t_hdr or "IPCALPHX" not in f_hdr:
            return []
        rows = []
        for key, inj in (("IPCALPHX", t_hdr["IPCALPHA"]), ("IPCALPHY", t_hdr["IPCALPHA"]),
                         ("IPCALPHD", t_hdr.get("IPCALPHD", 0.0))):
            err = float(f_hdr[key]) - float(inj)
            rows.append(_row(f"{key} recovered - injected", err, "+- 0.001",
                             abs(err) <= TARGETS["ipc"],
                             f"{float(f_hdr[key]):.5f} vs {float(inj):.5f}"))
        return rows
    with fits.open(truth_path) as t, fits.open(path) as f:
        sl = _slices(f[0].header)
        maps = {h.name: h.data[sl] for h in t[1:] if h.is_image and h.data is not None
                and h.data.ndim == 2}
        defects = Table(t["DEFECTS"].data)
        y0, x0 = sl[0].start, sl[1].start
        inside = ((defects["y"] >= y0) & (defects["y"] < sl[0].stop) & (defects["x"] >= x0)
                  & (defects["x"] < sl[1].stop))
        defects = defects[inside]
        good = maps["REFPIX"] == 0
        good[defects["y"] - y0, defects["x"] - x0] = False
        tframe = float(f[0].header.get("TFRAME", 0) or 0) or tframe
        if rt in ("readnoise", "rdnoise"):
            ratio = f["SCI"].data / (np.sqrt(2.0) * maps["READ_NOISE"])
            v = np.median(ratio[good])
            return [_row("read noise recovered / injected (median)", v, "1 +- 0.02",
                         abs(v - 1) <= TARGETS["readnoise"])]
        if rt == "superbias":
            expected = maps["BIAS"] + (maps["DARK_CURRENT"] / maps["GAIN"]) * (tframe or 0.0)
            err = f["SCI"].data - expected
            drift = zero_frame_drift(inputs, sl[1].start + 1, sl[1].stop - sl[1].start)
            if drift is None:
                v = np.median(np.abs(err)[good])
                return [_row("superbias |error| (median, DN)", v, "<= 0.5",
                             v <= TARGETS["superbias"])]
            offset, nframes = drift
            v = np.median(np.abs(err - offset[None, :])[good])
            v0 = np.median(np.abs(err)[good])
            detail = (f"{v:.3f} ({nframes} zero frames, mean drift {np.median(offset):+.2f} DN; "
                      f"vs bias alone {v0:.3f})")
            return [_row("superbias |error| vs bias + zero-frame drift (median, DN)", v, "<= 0.5",
                         v <= TARGETS["superbias"], detail)]
        if rt == "dark" and tframe:
            data = f["SCI"].data
            rate = (maps["DARK_CURRENT"] / maps["GAIN"])[good].mean()
            t_g = (np.arange(data.shape[-3]) + 1) * tframe
            rel = [abs(data[..., g, :, :].reshape(-1, *good.shape)[0][good].mean()
                       / (rate * t_g[g]) - 1) for g in range(data.shape[-3])]
            v = max(rel)
            return [_row("dark per-group mean, worst relative error", v, "<= 0.02",
                         v <= TARGETS["dark"])]
        if is_mask(rt):
            from ..dq import flag_value
            from .truth import DEFECT_CLASSES, FLAT_CLASSES
            dq = f["DQ"].data.astype(np.int64)
            kinds = None if not inputs else {
                "flat" if float(fits.getheader(i).get("SIMFLUX", 0) or 0) > 0 else "dark"
                for i in inputs}
            rows = []
            for cls, flags in DEFECT_CLASSES.items():
                sel = defects["defect"] == cls
                seen_in = "flat" if cls in FLAT_CLASSES else "dark"
                if not sel.any() or (kinds is not None and seen_in not in kinds):
                    continue
                truth = np.zeros(good.shape, bool)
                truth[defects["y"][sel] - y0, defects["x"][sel] - x0] = True
                found = (dq & flag_value(flags[0])) > 0
                tp = int((truth & found).sum())
                recall = tp / truth.sum()
                precision = tp / found.sum() if found.sum() else 0.0
                rows.append(_row(f"{cls}: recall / precision", recall, ">= 0.99 / 0.99",
                                 recall >= TARGETS["mask"] and precision >= TARGETS["mask"],
                                 f"{recall:.2f} / {precision:.2f} ({int(truth.sum())} injected)"))
            return rows
        if rt == "gain":
            v = np.median((f["SCI"].data / maps["GAIN"])[good])
            return [_row("gain recovered / injected (median)", v, "1 +- 0.02",
                         abs(v - 1) <= TARGETS["gain"])]
        if rt == "linearity":
            c = f["COEFFS"].data.astype(np.float64)
            ok = good & (f["DQ"].data == 0)
            alpha, sat = maps["NONLIN_ALPHA"], maps["SATURATION"] - maps["BIAS"]
            m = np.linspace(0.02, 0.9, 40)[:, None, None] * sat[None]
            linear = (1 - np.sqrt(1 - 4 * alpha * m)) / (2 * alpha)
            corrected = sum(c[k] * m ** k for k in range(c.shape[0]))
            dev = np.abs(corrected / linear - 1).max(axis=0)[ok]
            v = np.median(dev)
            return [_row("linearised signal, worst deviation up to 90 % of saturation "
                         "(median pixel)", v, "<= 0.005", v <= TARGETS["linearity"],
                         f"median {v:.4f}, 90th percentile {np.percentile(dev, 90):.4f}")]
        if rt == "saturation":
            ok = good & (f["DQ"].data == 0)
            rel = np.abs(f["SCI"].data / maps["SATURATION"] - 1)[ok]
            v = np.max(rel) if rel.size else np.nan
            return [_row("saturation level |relative error| (worst pixel)", v, "<= 0.01",
                         v <= TARGETS["saturation"],
                         f"worst {v:.5f}, median {np.median(rel):.5f}")]
    return []

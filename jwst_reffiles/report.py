"""The run report: one static HTML page in the run directory.

``<run>/report/index.html`` with, in order: the verdicts (per final file: its
format, comparison, quality check and verification on held-out exposures; the
consistency across the run's files), the inputs table, the groups, the
pipeline work (done / reused / failed), and per final reference file an image
(zscale), a histogram, the format check, the comparison with a previous file,
the quality check and, for simulated inputs, the accuracy against the injected
truth.  Plots are PNG files next to the page (matplotlib, Agg backend); the
page needs no server and no network.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from .reffile import atomic_write

log = logging.getLogger(__name__)

__all__ = ["write_report", "plot_reffile", "plot_verification"]

_CSS = """
body{font-family:sans-serif;margin:1.5em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:90%}
td,th{border:1px solid #bbb;padding:2px 6px;text-align:left}
th{background:#eee} .ok{color:#070} .bad{color:#b00;font-weight:bold}
.ref{border-top:2px solid #888;padding-top:.5em;margin-top:1.5em}
img{max-width:48%;margin-right:1%} code{font-size:90%}
"""


def _image_plane(path) -> tuple[np.ndarray, str]:
    """The 2-D image that shows a reference file best, and what it is."""
    with fits.open(path) as h:
        names = [x.name for x in h]
        if "COEFFS" in names:
            return np.asarray(h["COEFFS"].data[2], np.float64), "COEFFS[2] (quadratic term)"
        if "SCI" in names and h["SCI"].data is not None:
            d = np.asarray(h["SCI"].data, np.float64)
            while d.ndim > 2:
                d = d[-1]
            return d, "SCI" + (" (last group)" if h["SCI"].data.ndim > 2 else "")
        if "DQ" in names:
            return (np.asarray(h["DQ"].data, np.int64) != 0).astype(float), "DQ != 0"
    raise ValueError(f"{path}: no image extension to show")


def plot_reffile(path, outdir, stem: str) -> tuple[Path, Path]:
    """Image (zscale) and histogram PNGs of one reference file."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.visualization import ZScaleInterval

    data, what = _image_plane(path)
    finite = data[np.isfinite(data)]
    img, hist = Path(outdir) / f"{stem}_image.png", Path(outdir) / f"{stem}_hist.png"
    fig, ax = plt.subplots(figsize=(5, 4.2))
    if finite.size:
        vmin, vmax = ZScaleInterval().get_limits(finite)
    else:
        vmin, vmax = 0, 1
    im = ax.imshow(data, origin="lower", vmin=vmin, vmax=vmax, cmap="gray")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(f"{Path(path).name}\n{what}", fontsize=8)
    atomic_write(img, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 4.2))
    if finite.size:
        lo, hi = np.percentile(finite, [0.5, 99.5])
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        ax.hist(finite, bins=100, range=(lo, hi), color="#347")
        ax.set_yscale("log")
    ax.set_xlabel(what)
    ax.set_ylabel("pixels")
    ax.set_title("histogram (0.5-99.5 percentile)", fontsize=8)
    atomic_write(hist, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)
    return img, hist


def plot_verification(result: dict, outdir, stem: str) -> Path | None:
    """One PNG of a verification result: per check, its value on each held-out
    exposure against the band that passes, or the check's own curve."""
    checks = [c for c in result.get("checks", []) if c.get("band") or c.get("plot")]
    if not checks:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(checks), figsize=(5 * len(checks), 3.6), squeeze=False)
    for ax, c in zip(axes[0], checks):
        colour = "#070" if c["passed"] else "#b00"
        if c.get("plot"):
            pl = c["plot"]
            if pl.get("kind") == "bar":
                ax.bar(pl["x"], pl["y"], color=colour)
            else:
                ax.plot(pl["x"], pl["y"], "o-", color=colour)
            ax.set_xlabel(pl["xlabel"], fontsize=8)
            ax.set_ylabel(pl["ylabel"], fontsize=8)
        else:
            vals = c.get("per_exposure") or [c["value"]]
            ax.plot(range(1, len(vals) + 1), vals, "o", color=colour)
            ax.set_xlabel("held-out exposure", fontsize=8)
            ax.set_xticks(range(1, len(vals) + 1))
        if c.get("band") and not (c.get("plot") or {}).get("kind") == "bar":
            lo, hi = c["band"]
            ax.axhspan(lo, hi, color="#8c8", alpha=0.3, label="passes")
        ax.set_title(f"{c['quantity']}\n{'passed' if c['passed'] else 'FAILED'}: "
                     f"{c['value']:.4g}\n{c['threshold']}", fontsize=7)
    fig.tight_layout()
    path = Path(outdir) / f"{stem}_verify.png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)
    return path


def _verdicts_html(validation: dict) -> str:
    """The verdicts table: one row per final file, then the consistency line."""
    rows = ["<h2>Verdicts</h2><table><tr><th>reflabel</th><th>reftype</th><th>format</th>"
            "<th>comparison</th><th>quality check</th><th>verification</th></tr>"]
    for e in validation.get("files", []):
        fmt = e.get("format", {})
        ver = e.get("verification") or {"status": "not run"}
        vtext = ver.get("test", "") + " " + ver.get("status", "")
        if ver.get("status") in ("passed", "failed"):
            failed = [c["quantity"] for c in ver.get("checks", []) if not c["passed"]]
            vtext += (": " + "; ".join(failed)) if failed else ""
        else:
            vtext += ": " + (ver.get("reason") or ver.get("error") or "")
        rows.append(
            f"<tr><td>{html.escape(e['reflabel'])}</td><td>{html.escape(e['reftype'])}</td>"
            f"<td>{_status(fmt.get('valid', False), 'valid' if fmt.get('valid') else 'INVALID')}"
            f"</td><td>{html.escape(str(e.get('comparison', {}).get('verdict', '')))}</td>"
            f"<td>{html.escape(str(e.get('quality', {}).get('status', '')))}</td>"
            f"<td>{_status(ver.get('status') != 'failed' and ver.get('status') != 'error', vtext)}"
            f"</td></tr>")
    rows.append("</table>")
    cons = validation.get("consistency")
    if cons:
        v = cons.get("violations", [])
        rows.append("<p>Consistency across the run's files: "
                    + _status(not v, f"{len(v)} violation(s)" if v else "no violation")
                    + "</p>")
        if v:
            rows.append("<ul>" + "".join(
                f"<li>{html.escape(x['rule'])}: {html.escape(', '.join(x['files']))}: "
                f"{html.escape(x['detail'])}</li>" for x in v) + "</ul>")
    return "\n".join(rows)


def _table_html(table: Table, columns=None, max_rows: int = 200) -> str:
    cols = [c for c in (columns or table.colnames) if c in table.colnames]
    out = ["<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"]
    for row in table[:max_rows]:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(row[c]))}</td>" for c in cols)
                   + "</tr>")
    out.append("</table>")
    if len(table) > max_rows:
        out.append(f"<p>({len(table) - max_rows} more rows in the table file)</p>")
    return "\n".join(out)


def _status(ok: bool, text: str) -> str:
    return f'<span class="{"ok" if ok else "bad"}">{html.escape(text)}</span>'


def write_report(rundir, validation: dict | None = None, accuracy: dict | None = None) -> Path:
    """Write ``<run>/report/index.html`` (and its PNGs); returns its path.

    ``validation``: what :func:`jwst_reffiles.validation.validate_run` returned
    (read from ``validation/validation.json`` when omitted); ``accuracy``:
    file -> rows of :func:`jwst_reffiles.simulate.accuracy.accuracy`.
    """
    rundir = Path(rundir)
    outdir = rundir / "report"
    outdir.mkdir(parents=True, exist_ok=True)
    if validation is None:
        vpath = rundir / "validation" / "validation.json"
        validation = json.loads(vpath.read_text()) if vpath.is_file() else {"files": []}
    # accuracy figures kept with the entries of earlier calls into the run
    accuracy = {**{e["file"]: e["accuracy"] for e in validation.get("files", [])
                   if e.get("accuracy")}, **(accuracy or {})}
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>jwst_reffiles run "
             f"{html.escape(rundir.name)}</title><style>{_CSS}</style></head><body>",
             f"<h1>jwst_reffiles run {html.escape(str(rundir))}</h1>",
             _verdicts_html(validation)]
    tables = {"inputs": ("Inputs", "inputs.ecsv"), "groups": ("Groups", "groups.ecsv"),
              "pipeline": ("Pipeline work", "pipeline_runs.ecsv"),
              "reffiles": ("Individual reference files", "reffiles.ecsv"),
              "final": ("Final reference files", "final_reffiles.ecsv")}
    for key, (title, name) in tables.items():
        if not (rundir / name).is_file():
            continue
        t = Table.read(rundir / name, format="ascii.ecsv")
        note = ""
        if key == "pipeline" and "status" in t.colnames:
            st = list(t["status"])
            note = (f"<p>{st.count('made')} run(s) done in this session, "
                    f"{st.count('reused')} reused, {st.count('failed')} failed.</p>")
        drop = {"inputs", "filename", "products", "input", "errorfile"}
        cols = [c for c in t.colnames if c not in drop]
        parts.append(f"<h2>{html.escape(title)}</h2>{note}" + _table_html(t, cols))

    parts.append("<h2>Reference files</h2>")
    for entry in validation.get("files", []):
        path = Path(entry["file"])
        stem = path.name[:-5] if path.name.endswith(".fits") else path.name
        parts.append(f"<div class='ref'><h3>{html.escape(entry['reflabel'])} "
                     f"({html.escape(entry['reftype'])}): <code>{html.escape(str(path))}</code></h3>")
        try:
            img, hist = plot_reffile(path, outdir, stem)
            parts.append(f"<img src='{img.name}' alt='image of {html.escape(path.name)}'>"
                         f"<img src='{hist.name}' alt='histogram of {html.escape(path.name)}'>")
        except (OSError, ValueError) as exc:
            parts.append(f"<p class='bad'>no plot: {html.escape(str(exc))}</p>")
        fmt = entry.get("format", {})
        parts.append("<p>Format: " + _status(fmt.get("valid", False),
                     f"{fmt.get('model')} {'valid' if fmt.get('valid') else 'INVALID'}")
                     + (" - " + html.escape("; ".join(fmt.get("errors", []))) if fmt.get("errors") else "")
                     + f". CRDS certify: {html.escape(fmt.get('certify', {}).get('status', 'not run'))}</p>")
        comp = entry.get("comparison", {})
        text = comp.get("line") or f"{comp.get('verdict')}: {comp.get('reason', '')}"
        parts.append(f"<p>Comparison with the previous file: {html.escape(text)}</p>")
        qc = entry.get("quality", {})
        if qc.get("status") == "ran":
            flags = {k: v for k, v in qc.items() if k.endswith("_flags")}
            change = qc.get("sci_median_change", qc.get("output_median"))
            parts.append(f"<p>Quality check: {_status(True, qc['step'] + ' ran')} on "
                         f"<code>{html.escape(Path(qc['input']).name)}</code>; median SCI "
                         f"{'change' if 'sci_median_change' in qc else 'of the output'} "
                         f"{change if change is None else f'{change:.3g}'}; flags "
                         f"{html.escape(json.dumps(flags))}</p>")
        else:
            parts.append(f"<p>Quality check: {_status(False, qc.get('status', 'not run'))} "
                         f"{html.escape(qc.get('reason', qc.get('error', '')))}</p>")
        ver = entry.get("verification") or {}
        if ver.get("status") in ("passed", "failed"):
            parts.append(f"<p>Verification ({html.escape(ver['test'])}, steps "
                         f"{html.escape(', '.join(ver.get('steps', [])))}) on "
                         + ", ".join(f"<code>{html.escape(Path(h).name)}</code>"
                                     for h in ver.get("heldout", []))
                         + ": " + _status(ver["status"] == "passed", ver["status"]) + "</p><ul>"
                         + "".join(f"<li>{html.escape(c['quantity'])}: {c['value']:.4g} "
                                   f"({html.escape(c['threshold'])}) "
                                   + _status(c["passed"], "ok" if c["passed"] else "FAILED")
                                   + "</li>" for c in ver.get("checks", [])) + "</ul>")
            try:
                png = plot_verification(ver, outdir, stem)
                if png is not None:
                    parts.append(f"<img src='{png.name}' alt='verification of "
                                 f"{html.escape(path.name)}'>")
            except (OSError, ValueError) as exc:
                parts.append(f"<p class='bad'>no verification plot: {html.escape(str(exc))}</p>")
        elif ver:
            parts.append(f"<p>Verification: {html.escape(ver.get('status', ''))}: "
                         f"{html.escape(ver.get('reason') or ver.get('error') or '')}</p>")
        rows = (accuracy or {}).get(str(path), [])
        if rows:
            parts.append("<table><tr><th>against the injected truth</th><th>value</th>"
                         "<th>target</th><th></th></tr>")
            for r in rows:
                shown = r["detail"] or f"{r['value']:.4g}"
                parts.append(f"<tr><td>{html.escape(r['quantity'])}</td><td>{html.escape(shown)}"
                             f"</td><td>{html.escape(r['target'])}</td><td>"
                             f"{_status(r['ok'], 'met' if r['ok'] else 'NOT met')}</td></tr>")
            parts.append("</table>")
        parts.append("</div>")
    parts.append("</body></html>")
    page = outdir / "index.html"
    atomic_write(page, lambda tmp: Path(tmp).write_text("\n".join(parts)))
    return page

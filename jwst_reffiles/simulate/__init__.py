"""Detector simulator: Level-1b exposures with known, injected truth.

The layers:

* :mod:`.detectors` - geometry, readout patterns, subarrays, frame times;
* :mod:`.truth` - per-pixel truth of a detector, drawn from a seed (pure);
* :mod:`.ramps` - the ramps of one exposure from the truth (pure);
* :mod:`.writer` - Level-1b files, truth files and truth reference files.

This module puts them together: :func:`simulate_exposure` writes one exposure,
:func:`simulate_dataset` a set of darks and flats with their truth and a
manifest.

Layout written by :func:`simulate_dataset` under ``outdir``::

    *_uncal.fits                       the exposures
    manifest.ecsv                      one row per exposure
    truth/<det>_truth.fits             truth maps (+ LIN_COEFFS, REFPIX, DEFECTS)
    truth/<det>_defects.ecsv           injected defects (y, x, class, value)
    truth/<exposure>_truth.fits        cosmic rays and amplifier drift of one exposure
    reffiles/jwst_reffiles_sim_<det>_<reftype>.fits
                                       CRDS-formatted truth reference files
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table
from astropy.time import Time, TimeDelta

from ..reffile import atomic_save, atomic_write
from .detectors import (DETECTORS, READOUT_PATTERNS, SUBARRAYS, DetectorGeometry,
                        frame_time, get_detector, get_readout_pattern, get_subarray)
from .ramps import RampResult, simulate_ramps
from .truth import (DEFECT_CLASSES, DetectorTruth, TruthParameters, default_parameters,
                    make_truth, stable_seed)
from .writer import (ExposureSpec, build_level1b, exposure_filename, exposure_timing,
                     write_detector_truth, write_exposure_truth, write_truth_reffiles)

__all__ = [
    "DETECTORS", "READOUT_PATTERNS", "SUBARRAYS", "DEFECT_CLASSES",
    "DetectorTruth", "TruthParameters", "ExposureSpec", "RampResult", "SimulatedDataset",
    "make_truth", "default_parameters", "simulate_ramps", "simulate_exposure",
    "simulate_dataset", "summarize", "get_detector", "get_subarray", "get_readout_pattern", "frame_time",
]

log = logging.getLogger(__name__)


def _truth_basename(filename: str) -> str:
    stem = filename[:-len("_uncal.fits")] if filename.endswith("_uncal.fits") else Path(filename).stem
    return f"{stem}_truth.fits"


def simulate_exposure(truth: DetectorTruth, spec: ExposureSpec, outdir, seed: int = 0,
                      truth_dir=None) -> dict:
    """Simulate and write one exposure (and its per-exposure truth).

    Returns a manifest row (dict).  The randomness depends only on
    ``(seed, detector, kind, index)``.
    """
    outdir = Path(outdir)
    geom = truth.geometry
    if spec.detector.upper() != geom.detector:
        raise ValueError(f"exposure detector {spec.detector} differs from the truth's "
                         f"{geom.detector}")
    subarray = get_subarray(geom.instrument, spec.subarray)
    pattern = get_readout_pattern(spec.readpatt)
    tframe = frame_time(geom, subarray, spec.readpatt)
    rng = np.random.default_rng(stable_seed(seed, geom.detector, spec.kind, spec.index))
    t0 = time.perf_counter()
    ramps = simulate_ramps(truth, subarray, pattern, spec.ngroups, spec.nints, tframe,
                           flux=spec.flux, rng=rng, cosmic_rays=spec.cosmic_rays)
    t_sim = time.perf_counter() - t0
    filename = exposure_filename(spec, geom)
    model = build_level1b(spec, geom, subarray, pattern, ramps, filename)
    path = atomic_save(model, outdir / filename)
    model.close()
    truth_dir = Path(truth_dir) if truth_dir is not None else outdir / "truth"
    tpath = write_exposure_truth(truth_dir / _truth_basename(filename), spec, ramps,
                                 tframe, pattern)
    timing = exposure_timing(pattern, spec.ngroups, spec.nints, tframe, spec.start)
    log.info("wrote %s (%s, %s %s, %d ints x %d groups, flux %.1f e-/s, %d CR hits) "
             "in %.1f s", path.name, spec.kind, geom.detector, subarray.name, spec.nints,
             spec.ngroups, spec.flux, len(ramps.cosmic_rays), time.perf_counter() - t0)
    return {
        "filename": path.name, "kind": spec.kind,
        "exp_type": model.meta.exposure.type, "detector": geom.detector,
        "subarray": subarray.name, "readpatt": pattern.name, "ngroups": spec.ngroups,
        "nints": spec.nints, "flux": float(spec.flux), "date_beg": timing["start"].isot,
        "date_end": timing["end"].isot, "mjd_end": timing["end"].mjd,
        "tframe": tframe, "n_cr_pixels": len(ramps.cosmic_rays),
        "truth_file": str(tpath.relative_to(outdir)) if tpath.is_relative_to(outdir)
        else str(tpath), "sim_seconds": round(t_sim, 3),
    }


@dataclass
class SimulatedDataset:
    """What :func:`simulate_dataset` wrote."""

    outdir: Path
    manifest: Table
    truth: DetectorTruth
    truth_maps: Path
    defects: Path
    reffiles: dict = field(default_factory=dict)

    def files(self, kind: str | None = None) -> list[Path]:
        """Paths of the exposures, optionally of one kind ("dark"/"flat")."""
        rows = self.manifest if kind is None else self.manifest[self.manifest["kind"] == kind]
        return [self.outdir / f for f in rows["filename"]]


def _as_parameters(instrument: str, truth_parameters) -> TruthParameters:
    base = default_parameters(instrument)
    if truth_parameters is None:
        return base
    if isinstance(truth_parameters, TruthParameters):
        return truth_parameters
    return base.with_overrides(**dict(truth_parameters))


def simulate_dataset(outdir, detector: str = "NRCA1", subarray: str = "SUB160",
                     readpatt: str = "RAPID", ngroups: int = 10, nints: int = 2,
                     ndarks: int = 4, nflats: int = 4, flat_flux=(2000.0,),
                     start: str = "2026-01-01T00:00:00", cadence_days: float = 0.5,
                     dark_starts=None, flat_starts=None, style: str = "ground",
                     flat_label: str = "LIN", seed: int = 0, truth_parameters=None,
                     cosmic_rays: bool = True, write_reffiles: bool = True,
                     truth: DetectorTruth | None = None,
                     flat_nints: int | None = None) -> SimulatedDataset:
    """Simulate a set of dark and flat exposures of one detector.

    Parameters
    ----------
    outdir : path
        Where to write (created).  See the module docstring for the layout.
    detector, subarray, readpatt : str
        DETECTOR, SUBARRAY and READPATT values (``get_detector`` etc. list them).
    ngroups, nints : int
        Groups per integration and integrations per exposure.
    flat_nints : int, optional
        Integrations per flat exposure, when not ``nints`` (a superbias wants
        many dark integrations, a linearity fit a few flat ones).
    ndarks, nflats : int
        Number of dark and flat exposures.
    flat_flux : float or sequence of float
        Illumination of the flats [e-/s per pixel], cycled over the flats.
    start : str
        ISO date-time of the first exposure.
    cadence_days : float
        Days between consecutive exposures of one kind; flats start half a
        cadence after the darks.
    dark_starts, flat_starts : sequence of str, optional
        Explicit start times (override start/cadence), e.g. to exercise the
        ``max_Delta_MJD`` grouping rules.
    style : "ground" or "flight"
        File naming: ground-test names contain DARK / ``flat_label``; flight
        names (``jw01234001001_03101_00001_nrca1_uncal.fits``) do not, only
        EXP_TYPE in the header tells a dark from a flat.
    seed : int
        Everything written depends only on the seed and the arguments.
    truth_parameters : TruthParameters or dict, optional
        Population parameters, or overrides of the instrument's defaults.
    cosmic_rays : bool
        Inject cosmic rays.
    write_reffiles : bool
        Also write the truth reference files under ``reffiles/``.
    truth : DetectorTruth, optional
        Use this truth instead of drawing one (to add exposures to a data set).
    """
    outdir = Path(outdir)
    geom: DetectorGeometry = get_detector(detector)
    sub = get_subarray(geom.instrument, subarray)
    pattern = get_readout_pattern(readpatt)
    if np.isscalar(flat_flux):
        flat_flux = [float(flat_flux)]
    flat_flux = [float(f) for f in flat_flux]
    if nflats and not flat_flux:
        raise ValueError("flat_flux must give at least one illumination level")
    if any(f <= 0 for f in flat_flux):
        raise ValueError(f"flat_flux values must be > 0 e-/s, got {flat_flux}")
    t0 = Time(start, format="isot", scale="utc")

    def starts(explicit, n, offset):
        if explicit is not None:
            if len(explicit) != n:
                raise ValueError(f"{n} exposures but {len(explicit)} start times given")
            return [Time(s, format="isot", scale="utc").isot for s in explicit]
        return [(t0 + TimeDelta((k + offset) * cadence_days, format="jd")).isot
                for k in range(n)]

    dstarts = starts(dark_starts, ndarks, 0.0)
    fstarts = starts(flat_starts, nflats, 0.5)
    if truth is None:
        truth = make_truth(geom, seed=seed,
                           parameters=_as_parameters(geom.instrument, truth_parameters))
    truth_dir = outdir / "truth"
    maps_path, defects_path = write_detector_truth(truth, truth_dir)

    specs = [ExposureSpec(geom.detector, sub.name, pattern.name, ngroups, nints, "dark", 0.0,
                          s, style, flat_label, index=k, cosmic_rays=cosmic_rays)
             for k, s in enumerate(dstarts)]
    nints_flat = nints if flat_nints is None else int(flat_nints)
    specs += [ExposureSpec(geom.detector, sub.name, pattern.name, ngroups, nints_flat, "flat",
                           flat_flux[k % len(flat_flux)], s, style, flat_label, index=k,
                           cosmic_rays=cosmic_rays)
              for k, s in enumerate(fstarts)]
    rows = []
    for n, spec in enumerate(specs, 1):
        log.info("[%d/%d] simulating %s exposure %d", n, len(specs), spec.kind, spec.index)
        rows.append(simulate_exposure(truth, spec, outdir, seed=seed, truth_dir=truth_dir))
    names = ["filename", "kind", "exp_type", "detector", "subarray", "readpatt", "ngroups",
             "nints", "flux", "date_beg", "date_end", "mjd_end", "tframe", "n_cr_pixels",
             "truth_file", "sim_seconds"]
    manifest = Table(rows=[[r[k] for k in names] for r in rows] or None, names=names)
    manifest.meta.update({"detector": geom.detector, "seed": seed,
                          "truth_maps": str(maps_path.relative_to(outdir)),
                          "defects": str(defects_path.relative_to(outdir))})
    reffiles = {}
    if write_reffiles:
        tframe = frame_time(geom, sub, pattern.name)
        nframes_total = ngroups * (pattern.nframes + pattern.groupgap) - pattern.groupgap
        reffiles = write_truth_reffiles(truth, outdir / "reffiles",
                                        darks=[(sub, nframes_total, tframe)])
        manifest.meta["reffiles"] = {k: str(p.relative_to(outdir)) for k, p in reffiles.items()}
    atomic_write(outdir / "manifest.ecsv",
                 lambda tmp: manifest.write(tmp, format="ascii.ecsv"))
    return SimulatedDataset(outdir=outdir, manifest=manifest, truth=truth,
                            truth_maps=maps_path, defects=defects_path, reffiles=reffiles)


def _nints(manifest) -> str:
    """'6 int', or '25 int (dark) / 6 int (flat)' when the kinds differ."""
    per_kind = {k: sorted(set(int(n) for n in manifest["nints"][manifest["kind"] == k]))
                for k in ("dark", "flat") if (manifest["kind"] == k).any()}
    values = {tuple(v) for v in per_kind.values()}
    if len(values) == 1 and len(next(iter(values))) == 1:
        return f"{next(iter(values))[0]} int"
    return " / ".join(f"{','.join(map(str, v))} int ({k})" for k, v in per_kind.items())


def summarize(ds: SimulatedDataset, elapsed: float | None = None) -> str:
    """A human-readable account of what :func:`simulate_dataset` wrote."""
    m = ds.manifest
    geom = ds.truth.geometry
    lines = []
    took = f" in {elapsed:.1f} s" if elapsed is not None else ""
    sizes = [(ds.outdir / f).stat().st_size for f in m["filename"]]
    nd, nf = int((m["kind"] == "dark").sum()), int((m["kind"] == "flat").sum())
    lines.append(f"Simulated {geom.instrument} {geom.detector} (seed {ds.truth.seed}){took} "
                 f"-> {ds.outdir}")
    if len(m):
        lines.append(f"  {len(m)} exposures ({nd} dark, {nf} flat): {m['subarray'][0]}, "
                     f"{m['readpatt'][0]}, {_nints(m)} x {m['ngroups'][0]} groups, "
                     f"{sum(sizes) / 2**20:.1f} MiB in all")
        width = max(len(f) for f in m["filename"])
        lines.append(f"  {'file':<{width}}  {'kind':<4}  {'EXP_TYPE':<13} {'flux e-/s':>9}  "
                     f"{'DATE-END':<23} {'CR px':>6}")
        for r in m:
            lines.append(f"  {r['filename']:<{width}}  {r['kind']:<4}  {r['exp_type']:<13} "
                         f"{r['flux']:>9.0f}  {r['date_end']:<23} {r['n_cr_pixels']:>6}")
    sub = get_subarray(geom.instrument, m["subarray"][0]) if len(m) else None
    d = ds.truth.defects
    counts = []
    for cls in list(DEFECT_CLASSES):
        n_all = int((d["defect"] == cls).sum())
        if sub is not None:
            ys, xs = sub.slices()
            inside = ((d["defect"] == cls) & (d["y"] >= ys.start) & (d["y"] < ys.stop)
                      & (d["x"] >= xs.start) & (d["x"] < xs.stop))
            counts.append(f"{cls} {int(inside.sum())}/{n_all}")
        else:
            counts.append(f"{cls} {n_all}")
    lines.append("  injected defects (in the data / full frame): " + ", ".join(counts))
    lines.append(f"  truth maps: {ds.truth_maps}")
    lines.append(f"  defect table: {ds.defects}")
    if ds.reffiles:
        lines.append(f"  truth reference files ({ds.outdir / 'reffiles'}): "
                     + ", ".join(ds.reffiles))
    lines.append(f"  manifest: {ds.outdir / 'manifest.ecsv'}")
    return "\n".join(lines)

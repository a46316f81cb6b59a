"""Benchmarks, run by `make bench`.

Each benchmark reports ratios against a baseline measured in the same run (never a
lone time): simulating and writing an exposure against writing the same uint16 ramp
through stdatamodels alone (the I/O floor) and through plain astropy FITS.

    python benchmarks/run.py --outdir bench_output [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_full_frame_exposure(outdir: Path, repeat: int) -> dict:
    from astropy.io import fits
    from stdatamodels.jwst import datamodels as dm

    from jwst_reffiles.simulate import ExposureSpec, make_truth, simulate_exposure

    truth = make_truth("NRCA1", seed=1)
    work = outdir / "full_frame"
    shutil.rmtree(work, ignore_errors=True)
    spec = ExposureSpec("NRCA1", "FULL", "RAPID", ngroups=10, nints=1, kind="flat",
                        flux=500.0, start="2026-01-01T00:00:00")
    row = {}

    def simulate():
        row.update(simulate_exposure(truth, spec, work, seed=1))

    t_sim = timed(simulate, repeat)
    path = work / row["filename"]
    size = path.stat().st_size
    data = fits.getdata(path, "SCI")

    def write_datamodel():
        m = dm.Level1bModel(data=data)
        m.meta.instrument.name = "NIRCAM"
        m.save(str(work / "floor_uncal.fits"))

    def write_fits():
        fits.PrimaryHDU(data).writeto(work / "floor_plain.fits", overwrite=True)

    t_dm = timed(write_datamodel, repeat)
    t_fits = timed(write_fits, repeat)
    t0 = time.perf_counter()
    make_truth("NRCA2", seed=1)
    t_truth = time.perf_counter() - t0
    return {
        "benchmark": "full-frame NIRCam exposure, 1 int x 10 groups RAPID, flat 500 e-/s",
        "file_bytes": size,
        "file_MiB": round(size / 2**20, 1),
        "simulate_and_write_s": round(t_sim, 2),
        "stdatamodels_write_only_s": round(t_dm, 2),
        "astropy_write_only_s": round(t_fits, 2),
        "ratio_vs_stdatamodels_write": round(t_sim / t_dm, 2),
        "ratio_vs_astropy_write": round(t_sim / t_fits, 2),
        "full_frame_truth_draw_s": round(t_truth, 2),
        "ratio_truth_vs_stdatamodels_write": round(t_truth / t_dm, 2),
        "repeat": repeat,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--outdir", type=Path, default=Path("bench_output"))
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    results = [bench_full_frame_exposure(args.outdir, args.repeat)]
    for r in results:
        print(r["benchmark"])
        for k, v in r.items():
            if k != "benchmark":
                print(f"  {k:36s} {v}")
    (args.outdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {args.outdir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

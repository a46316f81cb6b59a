"""``mkrefs demo``: the whole job on an embedded data set.

Simulates NIRCam NRCA1 SUB160 darks and flats over several days (the latest
dark and flat held out of the reference files, to verify the final files on) (with a dark
current high enough to be measured in short ramps, and flats that saturate
two thirds of the way up their ramps), then runs one mkrefs call for superbias,
readnoise, dark, bad_pixel_mask, gain, linearity and saturation offline through
the real pipeline, validates the final files against the simulator's truth
reference files (as a previous delivery would be), writes the report and prints
the recovered-vs-injected accuracy.  The simulator's truth reference files
stand in for CRDS where the pipeline needs a reference file the run does not
make itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["run_demo", "DEMO_LABELS"]

DEMO_LABELS = ("superbias", "readnoise", "dark", "bad_pixel_mask", "gain_armin", "linearity",
               "saturation")


def _config(outdir: Path, refdir: Path) -> str:
    truth = {"readnoise": "readnoise", "superbias": "superbias", "gain": "gain",
             "linearity": "linearity", "saturation": "saturation", "mask": "mask",
             "dark": "dark_sub160"}
    validation = ", ".join(f"{k}: '{refdir}/jwst_reffiles_sim_nrca1_{v}.fits'"
                           for k, v in truth.items())
    return f"""# mkrefs demo configuration (written by mkrefs demo)
output: {{outrootdir: '{outdir / 'mkrefs'}', runID: AUTO}}
reffile4ssb: {{default: '{refdir}/*.fits'}}
grouping: {{group_by: [INSTRUME, DETECTOR, READPATT, SUBARRAY, NGROUPS]}}
DD: {{max_Delta_MJD: 4.0}}
FF: {{max_Delta_MJD: 4.0}}
DDFF: {{max_Delta_MJD: 4.0}}
validation: {{{validation}}}
verification: {{holdout: 1}}
bad_pixel_mask: {{hot_threshold: 40.0, max_jump_limit: 1}}
"""


def run_demo(outdir="demo_output", jobs: int | None = None, seed: int = 7) -> int:
    """Simulate the demo data set under ``outdir`` and run mkrefs on it; the exit status."""
    from . import cli
    from .simulate import default_parameters, simulate_dataset
    outdir = Path(outdir).absolute()
    t0 = time.perf_counter()
    par = default_parameters("NIRCAM").with_overrides(
        # warm from 40 e-/s: 10 sigma over the ordinary 20 +- 2 (from 30, the faintest
        # sat at the 5-sigma detection limit and were found half the time)
        dark_current_mean=20.0, dark_current_sigma=2.0, hot_dark_current=(100.0, 1e5),
        warm_dark_current=(40.0, 70.0),
        fractions={k: 2e-3 for k in ("DEAD", "LOW_QE", "OPEN", "HOT", "WARM", "RC",
                                     "TELEGRAPH", "LOW_PED")})
    sim = outdir / "data"
    if (sim / "manifest.ecsv").is_file():
        print(f"mkrefs demo: using the data simulated before in {sim}")
    else:
        print(f"mkrefs demo: simulating NIRCam NRCA1 SUB160 darks and flats over 3 days in {sim}")
        # 25 integrations per dark: the superbias is the mean of 100 zero
        # frames (read noise 6 DN per frame -> 0.6 DN per pixel); the fifth
        # dark and flat are held out of the reference files to verify them on
        simulate_dataset(sim, subarray="SUB160", ngroups=30, nints=25, ndarks=5, nflats=5,
                         flat_nints=6, flat_flux=(16000.0,), cadence_days=0.75, seed=seed,
                         truth_parameters=par)
    t_sim = time.perf_counter() - t0
    cfg = outdir / "demo.cfg"
    cfg.write_text(_config(outdir, sim / "reffiles"))
    argv = ["-v", "--cfgfile", str(cfg), ",".join(DEMO_LABELS), str(sim / "*_uncal.fits")]
    if jobs:
        argv[3:3] = ["-j", str(jobs)]
    print(f"mkrefs demo: mkrefs.py {' '.join(argv)}\n")
    rc = cli.main(argv)
    print(f"\nmkrefs demo: simulation {t_sim:.0f} s, whole demo {time.perf_counter() - t0:.0f} s, "
          f"exit status {rc}")
    return rc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="mkrefs demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--outdir", default="demo_output", help="where to write (default demo_output)")
    p.add_argument("-j", "--jobs", type=int, help="tasks at once (default: the cores)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    return run_demo(args.outdir, args.jobs, args.seed)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

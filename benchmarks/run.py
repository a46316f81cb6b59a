"""Benchmarks, run by `make bench`.

Each benchmark reports ratios against a baseline measured in the same run (never a
lone time): simulating and writing an exposure against writing the same uint16 ramp
through stdatamodels alone (the I/O floor) and through plain astropy FITS; the
algorithms on 10 and 40 full-frame darks against astropy's whole-stack clipping;
superbias, readnoise, dark and bad pixel mask against the predecessor
(jwst-reffiles 1.0.1 in a virtualenv of its own) on the same files, each as a fresh
process and as the call alone after a warm-up call (the fastest of 3 calls, for
both packages alike: this machine's speed wanders; the dark and bad-pixel inputs are
made by calwebb_detector1 through our stage 1, once per output directory: minutes).

    python benchmarks/run.py --outdir bench_output [--repeat 3] [--only NAME]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from jwst_reffiles.execution.resources import peak_memory_gib


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


def bench_pipeline_dedupe(outdir: Path, repeat: int) -> dict:
    """calwebb_detector1 offline on simulated darks, deduplicated vs one run per module.

    Realistic configuration: readnoise on dq_init, dark on jump-, bad pixels on
    rate-.  Baseline (same run): each module planned on its own, as a tool
    without deduplication would, into a separate ssb directory.
    """
    import textwrap

    from jwst_reffiles.config import load_config
    from jwst_reffiles.simulate import simulate_dataset
    from jwst_reffiles.stage1 import calibrate_inputs, organise_inputs

    work = outdir / "pipeline"
    shutil.rmtree(work, ignore_errors=True)
    sub = simulate_dataset(work / "sub160", subarray="SUB160", ngroups=10, nints=2,
                           ndarks=2, nflats=0, seed=1)
    full = simulate_dataset(work / "full", subarray="FULL", ngroups=10, nints=1, ndarks=1,
                            nflats=0, seed=1, truth=sub.truth, start="2026-02-01T00:00:00")
    modules = {"rn": "dq_init", "dk": "jump-", "bp": "rate-"}

    def cfg(run_id, ssb):
        text = textwrap.dedent(f"""
            reflabels: [rn, dk, bp]
            reftypes: [readnoise, dark, bpm]
            output: {{outrootdir: {work / 'out'}, runID: {run_id}, ssbdir: {ssb}}}
            reffile4ssb: {{default: '{sub.outdir / 'reffiles'}/*.fits',
                          dark: '{work}/*/reffiles/*_dark_*.fits'}}
            """) + "".join(f"{k}: {{reftype: {'readnoise' if k == 'rn' else 'dark' if k == 'dk' else 'bpm'}, "
                           f"imtypes: D, ssbsteps: '{v}'}}\n" for k, v in modules.items())
        path = work / f"cfg{run_id}.yaml"
        path.write_text(text)
        return load_config(path)

    inputs = [str(p) for p in sub.files() + full.files()]
    t0 = time.perf_counter()
    s1 = organise_inputs(cfg(1, work / "ssb_dedupe"), "rn,dk,bp", inputs)
    plan, outcomes = calibrate_inputs(s1, jobs=1)
    t_dedupe = time.perf_counter() - t0
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    per_file = {o.run.root: round(o.seconds, 1) for o in outcomes}
    t0 = time.perf_counter()
    naive_runs = 0
    for k, label in enumerate(modules, 2):
        s1n = organise_inputs(cfg(k, work / f"ssb_naive_{label}"), label, inputs)
        plan_n, out_n = calibrate_inputs(s1n, jobs=1)
        assert all(o.ok for o in out_n), [o.error for o in out_n]
        naive_runs += len(out_n)
    t_naive = time.perf_counter() - t0
    sub_times = [v for k, v in per_file.items() if k in {p.name[:-11] for p in sub.files()}]
    full_times = [v for k, v in per_file.items() if k in {p.name[:-11] for p in full.files()}]
    return {
        "benchmark": "calwebb_detector1 offline, modules rn (dq_init), dk (jump-), bp (rate-), "
                     "2 SUB160 darks (2 ints x 10 groups) + 1 FULL dark (1 int x 10 groups), 1 job",
        "runs_deduplicated": len(plan.runs),
        "runs_without_dedupe": naive_runs,
        "runs_saved": naive_runs - len(plan.runs),
        "pipeline_s_per_SUB160_file": sub_times,
        "pipeline_s_per_FULL_file": full_times,
        "total_s_deduplicated": round(t_dedupe, 1),
        "total_s_without_dedupe": round(t_naive, 1),
        "ratio_without_vs_with_dedupe": round(t_naive / t_dedupe, 2),
    }


_ALGO_SNIPPETS = {
    "superbias": ("from jwst_reffiles.superbias.superbias import make_superbias\n"
                  "make_superbias(files, outfile=out)"),
    "readnoise": ("from jwst_reffiles.readnoise.readnoise import make_readnoise\n"
                  "make_readnoise(files, outfile=out)"),
    # the predecessor's approach: the whole stack in memory, astropy's sigma clipping
    "superbias_baseline": (
        "import numpy as np\nfrom astropy.io import fits\n"
        "from astropy.stats import sigma_clipped_stats\n"
        "stack = np.concatenate([fits.getdata(f, 'SCI')[:, 0].astype(float) for f in files])\n"
        "sigma_clipped_stats(stack, sigma=3, maxiters=3, axis=0)"),
    "readnoise_baseline": (
        "import numpy as np\nfrom astropy.io import fits\n"
        "from astropy.stats import sigma_clipped_stats\n"
        "cds = []\n"
        "for f in files:\n"
        "    d = fits.getdata(f, 'SCI').astype(float)\n"
        "    n = d.shape[1] // 2 * 2\n"
        "    cds.append((d[:, 1:n:2] - d[:, 0:n:2]).reshape(-1, *d.shape[2:]))\n"
        "sigma_clipped_stats(np.concatenate(cds), sigma=3, maxiters=3, axis=0)"),
}


#: the calls both benchmarks time, as the documented API is called from a
#: user's script (``files`` and ``out`` given; the bad pixel mask's inputs as
#: the variables its snippet names)
CALLS = {
    "superbias": "from jwst_reffiles.superbias.superbias import make_superbias\n"
                 "make_superbias(files, outfile=out)",
    # consecutive: the predecessor's 'independent' crashes for odd NGROUPS
    "readnoise": "from jwst_reffiles.readnoise.readnoise import make_readnoise\n"
                 "make_readnoise(files, method='stack', group_diff_type='consecutive', "
                 "outfile=out)",
    # the documented defaults (max_equivalent_groups=60 suits full frame)
    "dark": "from jwst_reffiles.dark_current.dark_reffile import Dark\n"
            "Dark(file_list=files, pedigree='GROUND', descrip='benchmark dark', "
            "author='bench', use_after='2019-04-01T00:00:00', history='benchmark', "
            "output_file=out)",
    "bad_pixel_mask": "from jwst_reffiles.bad_pixel_mask.bad_pixel_mask import bad_pixels\n"
                      "bad_pixels(flat_slope_files=flats, dark_slope_files=rates, "
                      "dark_uncal_files=uncal, dark_jump_files=jumps, "
                      "dark_fitopt_files=fitopt, output_file=out)",
}


#: the child's own peak RSS [GiB], by the run's own measure (its source is sent:
#: the predecessor's interpreter cannot import ours).  Linux's ru_maxrss of a
#: process started by fork/vfork + exec begins at the parent's peak at the time
#: (the bench itself holds simulated data then); VmHWM is the child's own.
_PEAK_SOURCE = inspect.getsource(peak_memory_gib) + "\n_peak_gib = peak_memory_gib\n"


def _measure(snippet: str, files, out, python: str | None = None,
             warm: bool = False, variables: dict | None = None,
             repeat: int = 3) -> tuple[float, float]:
    """Wall time [s] and peak RSS [GiB] of a snippet run in a fresh process.

    The process runs in the output's directory (whatever it writes beside its
    output stays there), so paths are made absolute first.  ``warm``: the
    snippet runs once first (on two of the files, or, with ``variables``, on
    the same inputs: imports, the data models' and asdf's one-time set-up,
    compiled kernels), then ``repeat`` timed calls on all of them, and the
    fastest counts (this machine's speed wanders by tens of percent from one
    call to the next).  ``variables``: more names (str -> list of paths) the
    snippet uses.
    """
    import subprocess
    out = Path(out).resolve()
    files = [str(Path(f).resolve()) for f in files]
    variables = {k: [str(Path(f).resolve()) for f in v] for k, v in (variables or {}).items()}
    warmup = ""
    if warm and variables:
        warmup = ("_out = out\nout = _out + '.warmup.fits'\n" + snippet + "\nout = _out\n")
    elif warm:
        warmup = ("_all, _out = files, out\nfiles, out = _all[:2], out + '.warmup.fits'\n"
                  + snippet + "\nfiles, out = _all, _out\n")
    timed = "t0 = time.perf_counter()\n" + snippet + "\n_t.append(time.perf_counter() - t0)\n"
    code = ("import resource, sys, time, json\n" + _PEAK_SOURCE +
            f"files = {files!r}\nout = {str(out)!r}\n"
            + "".join(f"{k} = {v!r}\n" for k, v in variables.items()) + warmup
            + "_t = []\n" + timed * (max(1, repeat) if warm else 1) +
            "print(json.dumps([min(_t), _peak_gib()]))\n")
    res = subprocess.run([python or sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(Path(out).parent))
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return tuple(json.loads(res.stdout.strip().splitlines()[-1]))


def bench_algorithms(outdir: Path, nfiles=(10, 40)) -> dict:
    """superbias and readnoise on N full-frame darks (1 int x 5 groups): time, peak RSS."""
    from jwst_reffiles.simulate import make_truth, simulate_dataset
    work = outdir / "algorithms"
    shutil.rmtree(work, ignore_errors=True)
    truth = make_truth("NRCA1", seed=3)
    sim = simulate_dataset(work / "darks", subarray="FULL", ngroups=5, nints=1,
                           ndarks=max(nfiles), nflats=0, seed=3, truth=truth,
                           write_reffiles=False, cadence_days=0.1)
    files = sim.files("dark")
    result = {"benchmark": "superbias and readnoise (stack, independent) on full-frame NIRCam "
                           "darks, 1 int x 5 groups; baseline: whole stack in memory through "
                           "astropy sigma_clipped_stats (the predecessor's approach)"}
    for name in ("superbias", "readnoise"):
        for n in nfiles:
            t, rss = _measure(_ALGO_SNIPPETS[name], files[:n], work / f"{name}_{n}.fits")
            result[f"{name}_{n}_files_s"] = round(t, 1)
            result[f"{name}_{n}_files_peak_GiB"] = round(rss, 2)
        n = min(nfiles)
        t, rss = _measure(_ALGO_SNIPPETS[name + "_baseline"], files[:n], work / "x.fits")
        result[f"{name}_baseline_{n}_files_s"] = round(t, 1)
        result[f"{name}_baseline_{n}_files_peak_GiB"] = round(rss, 2)
        result[f"{name}_{n}_files_speedup_vs_baseline"] = round(t / result[f"{name}_{n}_files_s"], 1)
        result[f"{name}_{n}_files_memory_ratio_baseline_vs_ours"] = round(
            rss / result[f"{name}_{n}_files_peak_GiB"], 1)
    return result


PREDECESSOR = "jwst-reffiles==1.0.1"


def predecessor_python(outdir: Path) -> str:
    """A virtualenv with the predecessor (it imports as jwst_reffiles too: never ours)."""
    import subprocess
    venv = outdir / "predecessor_venv"
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        constraints = Path(__file__).resolve().parent.parent / "constraints.txt"
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-c", str(constraints),
                        PREDECESSOR], check=True)
        (venv / ".installed").touch()
    return str(python)


def calibrated_products(outdir: Path, ndarks: int = 10, nflats: int = 3) -> dict:
    """Full-frame darks and flats (5 groups, 1 integration) through calwebb_detector1,
    offline, by our stage 1: the darks to jump and to rate (rateints, fitopt), the
    flats to rate.  Made once per output directory (minutes); returns the paths."""
    import textwrap

    from astropy.table import Table

    from jwst_reffiles.config import load_config
    from jwst_reffiles.simulate import make_truth, simulate_dataset
    from jwst_reffiles.stage1 import calibrate_inputs, organise_inputs

    work = (outdir / "products").resolve()
    index = work / f"products_{ndarks}_{nflats}.json"
    if index.exists():
        return json.loads(index.read_text())
    shutil.rmtree(work, ignore_errors=True)
    sim = simulate_dataset(work / "sim", subarray="FULL", ngroups=5, nints=1, ndarks=ndarks,
                           nflats=nflats, flat_flux=[3000.0], seed=3,
                           truth=make_truth("NRCA1", seed=3), cadence_days=0.1)
    steps = "dq_init, saturation, superbias, refpix, linearity, jump"   # no dark subtraction
    cfg = work / "main.cfg"
    cfg.write_text(textwrap.dedent(f"""
        reflabels: [dj, dr, fr]
        reftypes: [bpm]
        output: {{outrootdir: {work / 'out'}, runID: 1}}
        reffile4ssb: {{default: '{sim.outdir / 'reffiles'}/*.fits'}}
        dj: {{reftype: bpm, imtypes: D+, ssbsteps: '{steps}'}}
        dr: {{reftype: bpm, imtypes: D+, ssbsteps: '{steps}, rate'}}
        fr: {{reftype: bpm, imtypes: F+, ssbsteps: 'rate-'}}
        """))
    s1 = organise_inputs(load_config(cfg), "dj,dr,fr", [str(p) for p in sim.files()])
    t0 = time.perf_counter()
    plan, outcomes = calibrate_inputs(s1, jobs=2)
    failed = [o.error for o in outcomes if not o.ok]
    if failed:
        raise RuntimeError(f"calibrating the benchmark's inputs failed: {failed[:3]}")
    prods = Table.read(s1.layout.rundir / "ssb_products.ecsv")

    def column(name, label):
        return [str(p) for p, lab in zip(prods[name], prods["reflabel"]) if lab == label]
    paths = {"dark_uncal": [str(p) for p in sim.files("dark")],
             "dark_jump": column("product", "dj"), "dark_rate": column("product", "dr"),
             "dark_fitopt": column("fitopt", "dr"), "flat_rate": column("product", "fr"),
             "calibration_s": round(time.perf_counter() - t0, 1)}
    index.write_text(json.dumps(paths, indent=1))
    return paths


def _call_inputs(name: str, darks: dict, flats: list):
    """``(files, variables)`` of the dark's or the bad pixel mask's call in
    :data:`CALLS` on the calibrated dark products ``darks``."""
    if name == "dark":
        return darks["dark_jump"], None
    return darks["dark_rate"], {"flats": flats, "rates": darks["dark_rate"],
                                "uncal": darks["dark_uncal"], "jumps": darks["dark_jump"],
                                "fitopt": darks["dark_fitopt"]}


def bench_predecessor(outdir: Path, nfiles: int = 10) -> dict:
    """Ours and the predecessor on the same files, same calls, in the same run."""
    from jwst_reffiles.simulate import make_truth, simulate_dataset
    work = (outdir / "predecessor").resolve()
    shutil.rmtree(work / "darks", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    sim = simulate_dataset(work / "darks", subarray="FULL", ngroups=5, nints=1, ndarks=nfiles,
                           nflats=0, seed=3, truth=make_truth("NRCA1", seed=3),
                           write_reffiles=False, cadence_days=0.1)
    files = [str(f.resolve()) for f in sim.files("dark")]
    products = calibrated_products(outdir, ndarks=nfiles)
    pred = predecessor_python(outdir.resolve())
    calls = {"superbias": (files, None), "readnoise": (files, None),
             "dark": _call_inputs("dark", products, products["flat_rate"]),
             "bad_pixel_mask": _call_inputs("bad_pixel_mask", products, products["flat_rate"])}
    result = {"benchmark": f"ours vs {PREDECESSOR} (own venv), {nfiles} full-frame NIRCam darks, "
                           "1 int x 5 groups (and 3 flats for the bad pixel mask), same calls, "
                           "same run",
              "inputs_calibration_s": products["calibration_s"]}
    for name, (inputs, variables) in calls.items():
        snippet = CALLS[name]
        # once untimed: numba compiles a kernel whose source changed at its
        # first call (cached for later processes); that is not the algorithm's time
        _measure(snippet, inputs, work / f"ours_{name}_compile.fits", variables=variables)
        t_ours, m_ours = _measure(snippet, inputs, work / f"ours_{name}.fits",
                                  variables=variables)
        t_pred, m_pred = _measure(snippet, inputs, work / f"pred_{name}.fits", python=pred,
                                  variables=variables)
        # the call alone, after a warm-up call in the same process (the fastest of
        # 3): both packages share a fixed start-up (jwst/stdatamodels imports,
        # asdf's extension set-up at the first data model: seconds) that no
        # algorithm can shorten
        w_ours, _ = _measure(snippet, inputs, work / f"ours_{name}_warm.fits", warm=True,
                             variables=variables)
        w_pred, _ = _measure(snippet, inputs, work / f"pred_{name}_warm.fits", python=pred,
                             warm=True, variables=variables)
        result.update({f"{name}_ours_s": round(t_ours, 1), f"{name}_predecessor_s": round(t_pred, 1),
                       f"{name}_speedup": round(t_pred / t_ours, 1),
                       f"{name}_ours_call_s": round(w_ours, 2),
                       f"{name}_predecessor_call_s": round(w_pred, 2),
                       f"{name}_call_speedup": round(w_pred / w_ours, 1),
                       f"{name}_ours_peak_GiB": round(m_ours, 2),
                       f"{name}_predecessor_peak_GiB": round(m_pred, 2)})
    return result


def bench_memory(outdir: Path, copies: int = 4) -> dict:
    """Peak memory of the dark and the bad pixel mask on the 10 calibrated
    full-frame darks and on 4x as many files (each product linked 4 times
    under names of its own: the same pixels, 4x the files to stream)."""
    products = calibrated_products(outdir)
    work = (outdir / "memory").resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    def linked(paths, copy):
        out = []
        for p in paths:
            dst = work / f"copy{copy}_{Path(p).name}"
            dst.symlink_to(p)
            out.append(str(dst))
        return out
    many = {k: [f for c in range(copies) for f in linked(v, c)]
            for k, v in products.items() if k.startswith("dark_")}
    n = len(products["dark_jump"])
    result = {"benchmark": f"peak memory, {n} vs {copies * n} full-frame darks (1 int x 5 groups)"}
    for name in ("dark", "bad_pixel_mask"):
        for label, paths in ((n, products), (copies * n, many)):
            files, variables = _call_inputs(name, paths, products["flat_rate"])
            _, rss = _measure(CALLS[name], files, work / f"{name}_{label}.fits", variables=variables)
            result[f"{name}_{label}_files_peak_GiB"] = round(rss, 2)
    return result


def bench_pipeline_scaling(outdir: Path, repeat: int) -> dict:
    """The pipeline stage through the task graph with 1 and with 2 processes (this
    machine has 2 cores): the same 4 files, each into an ssb directory of its own."""
    import textwrap

    from jwst_reffiles.config import load_config
    from jwst_reffiles.execution import default_jobs
    from jwst_reffiles.simulate import simulate_dataset
    from jwst_reffiles.stage1 import calibrate_inputs, organise_inputs

    work = outdir / "scaling"
    shutil.rmtree(work, ignore_errors=True)
    sim = simulate_dataset(work / "sim", subarray="SUB160", ngroups=10, nints=2, ndarks=4,
                           nflats=0, seed=4)
    inputs = [str(p) for p in sim.files()]
    times = {}
    for jobs in (1, 2):
        cfg = work / f"cfg{jobs}.yaml"
        cfg.write_text(textwrap.dedent(f"""
            reflabels: [dk]
            reftypes: [dark]
            output: {{outrootdir: {work / 'out'}, runID: {jobs}}}
            reffile4ssb: {{default: '{sim.outdir / 'reffiles'}/*.fits'}}
            dk: {{reftype: dark, imtypes: D, ssbsteps: 'jump-'}}
            """))
        s1 = organise_inputs(load_config(cfg), "dk", inputs)
        t0 = time.perf_counter()
        plan, outcomes = calibrate_inputs(s1, jobs=jobs)
        times[jobs] = time.perf_counter() - t0
        assert len(outcomes) == 4 and all(o.ok for o in outcomes), [o.error for o in outcomes]
    return {
        "benchmark": "pipeline stage (calwebb_detector1 to jump, offline) on 4 SUB160 darks "
                     "(2 ints x 10 groups), processes executor, -j 1 vs -j 2",
        "cores": default_jobs(0.01),
        "j1_s": round(times[1], 1),
        "j2_s": round(times[2], 1),
        "speedup_j2_over_j1": round(times[1] / times[2], 2),
    }


#: read every HDU of the files once (memmap off: every byte), in a fresh process;
#: prints the seconds (the floor of any task that reads those files)
_READ_ONCE = """
import json, sys, time
from astropy.io import fits
files = json.loads(sys.argv[1])
t0 = time.perf_counter()
for f in files:
    with fits.open(f, memmap=False) as hdul:
        for hdu in hdul:
            hdu.data
print(time.perf_counter() - t0)
"""


def read_once_s(files) -> float:
    """The time to read ``files`` once (the fastest of two passes: both find them in
    the page cache where the task that read them just did)."""
    import subprocess
    if not files:
        return 0.0
    out = []
    for _ in range(2):
        res = subprocess.run([sys.executable, "-c", _READ_ONCE, json.dumps(list(files))],
                             capture_output=True, text=True, check=True)
        out.append(float(res.stdout.strip().splitlines()[-1]))
    return min(out)


def campaign_fluxes(subarray: str, groups=(8, 12, 18, 26)) -> list[float]:
    """Illuminations [e-/s] that saturate the simulator's mean pixel at these groups
    of a RAPID ramp of ``subarray``."""
    from jwst_reffiles.simulate import frame_time, get_detector, get_subarray
    from jwst_reffiles.simulate.truth import default_parameters
    par = default_parameters("NIRCAM")
    tframe = frame_time(get_detector("NRCA1"), get_subarray("NIRCAM", subarray), "RAPID")
    full_well = par.saturation_signal_mean * par.gain_mean          # electrons
    return [round(full_well / (k * tframe), 1) for k in groups]


def bench_campaign(outdir: Path, scale: str = "FULL", ndarks: int = 10, nflats: int = 8,
                   ngroups: int = 30, jobs: int | None = None) -> dict:
    """One mkrefs call for every shipped reflabel on a simulated NIRCam campaign:
    ``ndarks`` darks (2 integrations) and ``nflats`` flats at 4 illuminations that
    saturate at groups 8, 12, 18 and 26 (2 integrations), ``ngroups`` groups, offline
    through the real pipeline.  For each task: its wall time and peak memory (from
    the run's tables) and the time to read its inputs once, measured after the run
    (the floor); the pipeline stage's total beside the rest."""
    import subprocess
    import textwrap

    import yaml
    from astropy.table import Table

    from jwst_reffiles.config import default_config_text
    from jwst_reffiles.simulate import simulate_dataset

    work = (outdir / f"campaign_{scale.lower()}").resolve()
    sim_dir = work / "sim"
    fluxes = campaign_fluxes(scale)
    t0 = time.perf_counter()
    if not (sim_dir / "manifest.ecsv").is_file():
        shutil.rmtree(work, ignore_errors=True)
        simulate_dataset(sim_dir, subarray=scale, ngroups=ngroups, nints=2, ndarks=ndarks,
                         nflats=nflats, flat_flux=fluxes, cadence_days=0.25, seed=21)
    t_sim = time.perf_counter() - t0
    labels = yaml.safe_load(default_config_text())["reflabels"]
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    cfg = work / "campaign.cfg"
    cfg.write_text(textwrap.dedent(f"""
        output: {{outrootdir: {out}, runID: 1}}
        reffile4ssb: {{default: '{sim_dir / 'reffiles'}/*.fits'}}
        """))
    argv = [sys.executable, "-m", "jwst_reffiles.cli", "--strict-config", "--no-quality-check",
            "--cfgfile", str(cfg), ",".join(labels), str(sim_dir)]
    if jobs:
        argv[3:3] = ["-j", str(jobs)]
    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True)
    t_run = time.perf_counter() - t0
    (work / "mkrefs.out").write_text(res.stdout + res.stderr)
    if res.returncode != 0:
        raise RuntimeError(f"mkrefs exited {res.returncode}; see {work / 'mkrefs.out'}:\n"
                           + (res.stdout + res.stderr)[-3000:])
    rundir = out / "001"
    runs = Table.read(rundir / "pipeline_runs.ecsv")
    tasks = []
    for name in ("reffiles.ecsv", "final_reffiles.ecsv"):
        for row in Table.read(rundir / name):
            files = [f for f in str(row["inputs"]).split(",") if f]
            if name == "reffiles.ecsv":
                files = [str(rundir / "ssb" / f) if not Path(f).is_absolute() else f
                         for f in files]
                files = [f if Path(f).is_file() else _find_product(rundir, f) for f in files]
            tasks.append({"stage": "individual" if name == "reffiles.ecsv" else "final",
                          "reflabel": str(row["reflabel"]), "cmdID": str(row["cmdID"]),
                          "reftype": str(row["reftype"]), "status": str(row["status"]),
                          "s": float(row["seconds"]), "peak_GiB": float(row["peak_GiB"]),
                          "inputs": files})
    memory = campaign_memory(work, tasks)
    for t in tasks:
        t["read_once_s"] = read_once_s(t["inputs"])
        t["ratio"] = round(t["s"] / t["read_once_s"], 1) if t["read_once_s"] else None
        t["n_inputs"] = len(t.pop("inputs"))
    pipe_s = float(sum(runs["seconds"]))
    rest_s = sum(t["s"] for t in tasks)
    sample = sorted(sim_dir.glob("*_uncal.fits"))
    uncal_read = read_once_s([str(p) for p in sample])
    return {
        "benchmark": f"campaign: every shipped reflabel ({len(labels)}) in one mkrefs call, NIRCam "
                     f"NRCA1 {scale}, {ndarks} darks + {nflats} flats at {len(fluxes)} "
                     f"illuminations ({', '.join(f'{f:g}' for f in fluxes)} e-/s), 2 ints x "
                     f"{ngroups} groups RAPID, offline, --no-quality-check",
        "simulate_s": round(t_sim, 1),
        "mkrefs_wall_s": round(t_run, 1),
        "pipeline_runs": len(runs),
        "pipeline_task_s_sum": round(pipe_s, 1),
        "pipeline_peak_GiB_max": round(float(max(runs["peak_GiB"])), 2) if len(runs) else 0.0,
        "raw_inputs_read_once_s": round(uncal_read, 2),
        "individual_final_task_s_sum": round(rest_s, 1),
        "outside_pipeline_vs_pipeline": round(rest_s / pipe_s, 3) if pipe_s else None,
        **memory,
        "tasks": tasks,
    }


def campaign_memory(work: Path, tasks: list[dict], counts=(8, 32)) -> dict:
    """Peak memory of make_linearity and make_gain (FF) on 8 and on 32 flats: the
    linearity task's products, and one gain task's flat pair, each linked as many
    times as needed under names of their own (the same pixels, more files)."""
    lin = next(t["inputs"] for t in tasks if t["stage"] == "individual"
               and t["reftype"] == "linearity")
    pair = next(t["inputs"] for t in tasks if t["stage"] == "individual"
                and t["reflabel"] == "gain_armin")
    pair = [f for f in pair if "_dark_" not in Path(f).name.lower()
            and "-dark-" not in Path(f).name.lower()][:2]
    links = work / "memory"
    shutil.rmtree(links, ignore_errors=True)
    links.mkdir()

    def linked(paths, n):
        out = []
        for k in range(n):
            p = paths[k % len(paths)]
            dst = links / f"copy{k:03d}_{Path(p).name}"
            dst.symlink_to(p)
            out.append(str(dst))
        return out
    calls = {"linearity": ("from jwst_reffiles.linearity.linearity import make_linearity\n"
                           "make_linearity(files, output_file=out)", lin),
             "gain": ("from jwst_reffiles.gain.gain import make_gain\n"
                      "make_gain(files, output_file=out)", pair)}
    result = {}
    for name, (snippet, files) in calls.items():
        for n in counts:
            t, rss = _measure(snippet, linked(files, n), links / f"{name}_{n}.fits")
            result[f"{name}_{n}_flats_s"] = round(t, 1)
            result[f"{name}_{n}_flats_peak_GiB"] = round(rss, 2)
            for p in links.glob("copy*"):
                p.unlink()
    return result


def _find_product(rundir: Path, name: str) -> str:
    hits = list(rundir.rglob(Path(name).name))
    return str(hits[0]) if hits else name


def format_campaign(result: dict) -> str:
    """The campaign's task table (the README's)."""
    lines = [f"{'stage':<11}{'reflabel':<25}{'cmdID':<9}{'reftype':<11}{'files':>6}"
             f"{'task s':>9}{'read once s':>12}{'ratio':>8}{'peak GiB':>10}"]
    for t in result["tasks"]:
        ratio = "-" if t["ratio"] is None else f"{t['ratio']:.1f}"
        lines.append(f"{t['stage']:<11}{t['reflabel']:<25}{t['cmdID'] or '-':<9}"
                     f"{t['reftype']:<11}{t['n_inputs']:>6}{t['s']:>9.1f}"
                     f"{t['read_once_s']:>12.2f}{ratio:>8}{t['peak_GiB']:>10.2f}")
    return "\n".join(lines)


#: what a fresh process pays before work, each measured as its own process
#: (python -c; the fastest of ``repeat``): the interpreter alone is the baseline
_STARTUP = {
    "python": "pass",
    "mkrefs CLI (import jwst_reffiles.cli)": "import jwst_reffiles.cli",
    "a plug-in and its algorithm (linearity)":
        "import jwst_reffiles.plugins.mkref_linearity, jwst_reffiles.linearity.linearity",
    "numpy + astropy.io.fits": "import numpy, astropy.io.fits",
    "stdatamodels.jwst.datamodels": "from stdatamodels.jwst import datamodels",
    "first data model opened (asdf extensions)":
        "from stdatamodels.jwst import datamodels as dm\nm = dm.open(FILE)\nm.close()",
    "jwst Detector1Pipeline imported":
        "from jwst.pipeline import Detector1Pipeline",
    "a pipeline run's process before its first step (worker + pipeline + model)":
        "import jwst_reffiles.pipeline.worker\nfrom jwst.pipeline import Detector1Pipeline\n"
        "from stdatamodels.jwst import datamodels as dm\nm = dm.open(FILE)\nm.close()\n"
        "Detector1Pipeline()",
}


def bench_startup(outdir: Path, repeat: int = 3) -> dict:
    """Fresh-process start-up: imports, asdf's extension set-up at the first data
    model, a pipeline object; against the bare interpreter."""
    import subprocess
    from jwst_reffiles.simulate import ExposureSpec, make_truth, simulate_exposure
    work = (outdir / "startup").resolve()
    shutil.rmtree(work, ignore_errors=True)
    row = simulate_exposure(make_truth("NRCA1", seed=1), ExposureSpec(
        "NRCA1", "SUB160", "RAPID", ngroups=3, nints=1, kind="dark", flux=0.0,
        start="2026-01-01T00:00:00"), work, seed=1)
    path = str(work / row["filename"])
    result = {"benchmark": f"fresh-process start-up (python -c, fastest of {repeat})"}
    for name, code in _STARTUP.items():
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", f"FILE = {path!r}\n" + code], check=True,
                           capture_output=True, cwd=str(work))
            times.append(time.perf_counter() - t0)
        best = min(times)
        result[f"{name} s"] = round(best, 2)
    # the same as the pipeline's processes start: forked from a warm forkserver (its own
    # start is the first call's), and as a new interpreter
    from jwst_reffiles.pipeline.launch import run_function
    for name, env in (("forked warm (launch.run_function)", {}),
                      ("started cold (JWST_REFFILES_FORKSERVER=0)",
                       {"JWST_REFFILES_FORKSERVER": "0"})):
        saved = os.environ.get("JWST_REFFILES_FORKSERVER")
        os.environ.update(env)
        times = []
        try:
            for _ in range(repeat + 1):
                t0 = time.perf_counter()
                assert run_function("jwst_reffiles.pipeline.launch:probe", [path]).returncode == 0
                times.append(time.perf_counter() - t0)
        finally:
            if saved is None:
                os.environ.pop("JWST_REFFILES_FORKSERVER", None)
            else:
                os.environ["JWST_REFFILES_FORKSERVER"] = saved
        result[f"a pipeline process before its first step, {name}: first s"] = round(times[0], 2)
        result[f"a pipeline process before its first step, {name} s"] = round(min(times[1:]), 2)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--outdir", type=Path, default=Path("bench_output"))
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", choices=["simulate", "pipeline", "scaling", "algorithms", "predecessor",
                                      "memory", "campaign", "startup"], help="run one benchmark")
    p.add_argument("--scale", default="FULL",
                   help="the campaign's NIRCam subarray (FULL, SUB640, SUB320, SUB160)")
    args = p.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    p_only = args.only
    results = []
    if p_only in (None, "simulate"):
        results.append(bench_full_frame_exposure(args.outdir, args.repeat))
    if p_only in (None, "pipeline"):
        results.append(bench_pipeline_dedupe(args.outdir, args.repeat))
    if p_only in (None, "scaling"):
        results.append(bench_pipeline_scaling(args.outdir, args.repeat))
    if p_only in (None, "algorithms"):
        results.append(bench_algorithms(args.outdir))
    if p_only in (None, "predecessor"):
        results.append(bench_predecessor(args.outdir))
    if p_only in (None, "memory"):
        results.append(bench_memory(args.outdir))
    if p_only in (None, "startup"):
        results.append(bench_startup(args.outdir, args.repeat))
    if p_only in (None, "campaign"):
        results.append(bench_campaign(args.outdir, scale=args.scale))
    for r in results:
        print(r["benchmark"])
        for k, v in r.items():
            if k not in ("benchmark", "tasks"):
                print(f"  {k:36s} {v}")
        if "tasks" in r:
            print(format_campaign(r))
    (args.outdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {args.outdir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Closed-loop verification: the scores on arrays, held-out selection, and the
wrong-file targets through the real pipeline.

Targets (issue 24): a readnoise file scaled by 1.1, a superbias shifted by
5 DN, a saturation map transposed and a linearity file with zeroed
coefficients and no flags each fail, with the right test named; the correct
files (the simulator's truth) pass.
"""

import glob
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from astropy.table import Table
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles.config import load_config
from jwst_reffiles.inputs import hold_out
from jwst_reffiles.pipeline.offline import make_offline_crds_cache
from jwst_reffiles.simulate import simulate_dataset
from jwst_reffiles.verify import (score_dark, score_linearity, score_mask, score_readnoise,
                                  score_saturation, score_superbias, verdict, verify_file)

RNG = np.random.default_rng(5)


def _settings():
    import os
    os.environ.setdefault("JWST_MKREFS_OUTDIR", "/tmp")
    v = load_config()["verification"]
    return {k: x for k, x in v.items()
            if k not in ("enabled", "holdout", "min_kept", "max_exposures")}


# ---- scores on arrays ----------------------------------------------------------

def test_superbias_offset_and_noise():
    rn = np.full((64, 64), 8.0)                              # CDS noise: 8/sqrt 2 per read
    drift = RNG.normal(0, 4.0, 50)[:, None, None]           # per integration
    zero = drift + RNG.normal(0, 8.0 / np.sqrt(2), (50, 64, 64))
    th = dict(offset_dn=0.5, noise_tolerance=0.1)
    good = score_superbias(zero, rn, **th)
    assert verdict(good) == "passed", good
    assert abs(good[1]["value"] - 1) < 0.03
    shifted = score_superbias(zero - 5.0, rn, **th)
    assert not shifted[0]["passed"] and shifted[1]["passed"]
    assert abs(shifted[0]["value"] + 5) < 1.5
    noisy = score_superbias(zero * 1.3, rn, **th)           # structure left: too much noise
    assert not noisy[1]["passed"]


def test_readnoise_ratio():
    rn = RNG.uniform(7, 9, (64, 64))
    cds = RNG.normal(0, 1, (40, 64, 64)) * rn
    cds[3, 10, 10] = 5000.0                                  # a cosmic ray does not count
    ok = score_readnoise(cds, rn, tolerance=0.05)
    assert ok[0]["passed"] and abs(ok[0]["value"] - 1) < 0.01
    bad = score_readnoise(cds, rn * 1.1, tolerance=0.05)
    assert not bad[0]["passed"] and abs(bad[0]["value"] - 1 / 1.1) < 0.01


def test_dark_residual():
    tgroup, rate = 10.0, 2.0
    ramps = RNG.normal(0, 5.0, (2, 30, 64, 64))              # dark subtracted: read noise
    ok = score_dark(ramps, tgroup, rate, tolerance=0.05)
    assert ok[0]["passed"], ok
    left = ramps + 0.2 * rate * tgroup * np.arange(30)[None, :, None, None]   # 20 % left
    bad = score_dark(left, tgroup, rate, tolerance=0.05)
    assert not bad[0]["passed"] and abs(bad[0]["value"] - 0.4) < 0.05


def _flat_ramps(npix=4000, ngroups=30, alpha=2.5e-6, sat=42000.0):
    """Linear signal, the measured (nonlinear) ramp, its exact correction."""
    rate = RNG.uniform(1500, 2500, npix)
    lin = rate[None, :] * np.arange(ngroups)[:, None]
    meas = lin - alpha * lin ** 2
    usable = meas < sat
    return lin[None], meas[None], usable[None], np.full(npix, sat)


def test_linearity_residual():
    lin, meas, usable, sat = _flat_ramps()
    th = dict(tolerance=0.01, fit_fraction=0.5)
    good = score_linearity(lin + RNG.normal(0, 5, lin.shape), meas, usable, sat, **th)
    assert good[0]["passed"] and good[0]["value"] < 0.002
    assert good[0]["plot"]["x"][0] == 0.15
    uncorrected = score_linearity(meas, meas, usable, sat, **th)
    assert not uncorrected[0]["passed"] and uncorrected[0]["value"] > 0.02
    zeroed = score_linearity(np.zeros_like(meas), meas, usable, sat, **th)
    assert not zeroed[0]["passed"] and zeroed[0]["value"] == 1.0


def test_saturation_onset():
    npix, ng = 3000, 30
    level = 40000.0 * (1 + RNG.normal(0, 0.03, npix))
    rate = RNG.uniform(2000, 3000, npix)
    ramps = np.minimum(rate[None, :] * np.arange(ng)[:, None], level[None, :])
    ramps = (ramps + RNG.normal(0, 6, ramps.shape))[None]
    usable = np.ones(npix, bool)

    def flags(threshold):
        return np.maximum.accumulate(ramps >= threshold[None, None, :], axis=1)
    ok = score_saturation(ramps, flags(level - 30.0), usable, max_rate=0.01)
    assert ok[0]["passed"] and ok[0]["value"] < 0.005, ok
    swapped = score_saturation(ramps, flags(RNG.permutation(level) - 30.0), usable,
                               max_rate=0.01)
    assert not swapped[0]["passed"] and swapped[0]["value"] > 0.3
    assert swapped[0]["late"] > 0 and swapped[0]["early"] > 0 or swapped[0]["late"] > 100


def test_mask_outliers():
    ny = nx = 100
    flat = 1000 * (1 + 0.1 * np.sin(np.arange(nx) / 15.0))[None, :] * np.ones((ny, 1))
    signal = flat[None] * (1 + RNG.normal(0, 0.01, (2, ny, nx)))
    bad = RNG.random((ny, nx)) < 0.01
    signal[:, bad] *= 0.3                                   # low QE in both integrations
    signal[0, 5, 5] *= 3                                    # a cosmic ray in one only
    th = dict(outlier_sigma=5.0, max_rate=0.001)
    ok = score_mask(signal, bad, **th)
    assert ok[0]["passed"] and ok[0]["outliers"] == 0, ok
    empty = score_mask(signal, np.zeros_like(bad), **th)
    assert not empty[0]["passed"] and abs(empty[0]["value"] - bad.mean()) < 0.002


def test_hold_out_latest_per_split():
    t = Table({"imtype": ["dark"] * 4 + ["flat"] * 2 + ["dark"] * 2,
               "MJD": [3.0, 1.0, 2.0, 4.0, 1.0, 2.0, 1.0, 2.0],
               "basename": [f"f{i}" for i in range(8)],
               "DETECTOR": ["A"] * 6 + ["B"] * 2})
    held = hold_out(t, 1, min_kept=2, group_by=["DETECTOR"])
    # the latest dark of A; not a flat (one would be left); not B's (one left)
    assert list(np.nonzero(held)[0]) == [3]
    assert list(np.nonzero(hold_out(t, 1, min_kept=1, group_by=["DETECTOR"]))[0]) == [3, 5, 7]
    assert not hold_out(t, 0, group_by=["DETECTOR"]).any()


# ---- through the pipeline: the wrong-file targets ---------------------------

@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verify")
    darks = simulate_dataset(tmp / "darks", subarray="SUB160", ngroups=10, nints=25, ndarks=2,
                             nflats=0, seed=41)
    flats = simulate_dataset(tmp / "flats", subarray="SUB160", ngroups=30, nints=2, ndarks=0,
                             nflats=1, flat_flux=[16000.0], truth=darks.truth,
                             write_reffiles=False)
    ref = darks.outdir / "reffiles"

    def truth(kind):
        (path,) = glob.glob(str(ref / f"*_{kind}*.fits"))
        return path
    refs = {k: truth(k) for k in ("superbias", "readnoise", "linearity", "saturation", "mask")}
    return tmp, refs, [str(p) for p in darks.files()], [str(p) for p in flats.files()]


def _wrong(refs, tmp, reftype, change):
    with dm.open(refs[reftype]) as m:
        w = m.copy()
    change(w)
    path = tmp / f"wrong_{reftype}.fits"
    w.save(path)
    return str(path)


def test_wrong_files_fail_and_right_files_pass(heldout):
    tmp, refs, darks, flats = heldout
    th = _settings()
    crds = make_offline_crds_cache(tmp / "crds")
    wrong = {
        "readnoise": _wrong(refs, tmp, "readnoise", lambda m: setattr(m, "data", m.data * 1.1)),
        "superbias": _wrong(refs, tmp, "superbias", lambda m: setattr(m, "data", m.data + 5.0)),
        "saturation": _wrong(refs, tmp, "saturation",
                             lambda m: setattr(m, "data", np.ascontiguousarray(m.data.T))),
        "linearity": _wrong(refs, tmp, "linearity",
                            lambda m: setattr(m, "coeffs", np.zeros_like(m.coeffs))),
    }
    cases = [(rt, path, good) for rt in wrong for path, good in ((refs[rt], True),
                                                                  (wrong[rt], False))]

    def run(case):
        rt, path, _ = case
        exposures = flats if rt in ("linearity", "saturation") else darks
        return verify_file(path, rt, exposures, refs, th, crds)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, cases))
    names = {"readnoise": "readnoise_cds", "superbias": "superbias_residual",
             "saturation": "saturation_onset", "linearity": "linearity_residual"}
    for (rt, path, good), r in zip(cases, results):
        assert r["test"] == names[rt]
        assert r["status"] == ("passed" if good else "failed"), (rt, good, r)
    by = {(rt, good): r for (rt, _, good), r in zip(cases, results)}
    # the failing check is the one the fault is about
    assert [c["passed"] for c in by["superbias", False]["checks"]] == [False, True]
    assert by["superbias", False]["checks"][0]["value"] == pytest.approx(-5.0, abs=1.5)
    assert by["readnoise", False]["checks"][0]["value"] == pytest.approx(1 / 1.1, abs=0.02)
    assert by["readnoise", True]["checks"][0]["value"] == pytest.approx(1.0, abs=0.02)
    assert by["saturation", False]["checks"][0]["value"] > 0.2
    assert by["linearity", False]["checks"][1]["value"] > 0.9      # left uncorrected


def test_no_heldout_exposure_is_said(heldout):
    tmp, refs, _, _ = heldout
    r = verify_file(refs["readnoise"], "rdnoise", [], refs, _settings(), tmp / "crds")
    assert r["status"] == "skipped" and "holdout" in r["reason"]
    assert verify_file(refs["readnoise"], "gain", ["x"], refs, _settings(),
                       tmp / "crds")["status"] == "skipped"

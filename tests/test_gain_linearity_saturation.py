"""Gain (photon transfer), linearity and saturation: recovered against the injected truth.

The algorithm tests read simulated raw ramps directly (the photon transfer and
plateau methods need no calibration: differences cancel the bias); the
linearity fit is given ramps less the true bias.  The last test runs all four
plug-ins through mkrefs and the real pipeline, and hands the products to the
pipeline steps that use them.
"""

import numpy as np
import pytest
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles import cli
from jwst_reffiles.dq import flag_value
from jwst_reffiles.gain.gain import make_gain
from jwst_reffiles.gain.photon_transfer import fit_ptc, ptc_levels
from jwst_reffiles.linearity.linearity import fit_linearity, group_times, usable_groups
from jwst_reffiles.saturation.saturation import make_saturation, plateau_levels
from jwst_reffiles.simulate import (frame_time, get_readout_pattern, get_subarray, make_truth,
                                    simulate_dataset, simulate_ramps)

N = 160
SUB = get_subarray("NIRCAM", "SUB160")


@pytest.fixture(scope="module")
def ptc_data(tmp_path_factory):
    """Two darks and two flats of one illumination, 20 groups up to ~60 % of saturation."""
    tmp = tmp_path_factory.mktemp("ptc")
    return simulate_dataset(tmp, ndarks=2, nflats=2, ngroups=20, nints=5,
                            flat_flux=(10000.0,), seed=3, write_reffiles=False)


def _box_truth(gain, box):
    n = gain.shape[0] // box
    return gain[: n * box, : n * box].reshape(n, box, n, box).mean(axis=(1, 3))


@pytest.mark.parametrize("with_darks", [True, False], ids=["DDFF", "FF"])
def test_gain_recovered_and_scatter_matches_the_uncertainty(ptc_data, tmp_path, with_darks):
    truth = _box_truth(ptc_data.truth.cutout("gain", SUB), 32)
    darks = ptc_data.files("dark") if with_darks else []
    r = make_gain(ptc_data.files("flat"), darks, tmp_path / "gain.fits", box=32)
    ratio = r.box_gain / truth
    assert abs(np.median(ratio) - 1) < 0.02
    # the boxes scatter about the truth as much as the per-box uncertainty says
    scatter = np.std(ratio)
    predicted = np.sqrt(np.mean((r.box_err / truth) ** 2))
    assert 0.6 < scatter / predicted < 1.6, (scatter, predicted)
    with dm.GainModel(str(tmp_path / "gain.fits")) as m:
        m.validate()
        assert m.data.shape == (N, N) and m.meta.subarray.name == "SUB160"
        assert abs(np.median(m.data) / np.median(ptc_data.truth.cutout("gain", SUB)) - 1) < 0.02
    assert (tmp_path / "gain_ptc.ecsv").exists()


def test_gain_region_scatter_scales_with_the_pixels_used(ptc_data, tmp_path):
    gain = ptc_data.truth.cutout("gain", SUB)
    out = {}
    for box in (16, 32):
        r = make_gain(ptc_data.files("flat"), ptc_data.files("dark"), tmp_path / f"g{box}.fits",
                      box=box, ptc_table=False)
        out[box] = np.std(r.box_gain / _box_truth(gain, box))
    # 4x the pixels: half the scatter
    assert 1.5 < out[16] / out[32] < 2.7, out


def test_per_pixel_gain_uncertainty_is_honest(tmp_path):
    ds = simulate_dataset(tmp_path / "sim", subarray="SUB64P", ndarks=2, nflats=2,
                          ngroups=20, nints=30, flat_flux=(10000.0,), seed=8,
                          write_reffiles=False)
    sub = get_subarray("NIRCAM", "SUB64P")
    truth = ds.truth.cutout("gain", sub)
    r = make_gain(ds.files("flat"), ds.files("dark"), tmp_path / "g.fits", box=16,
                  per_pixel_max_error=1.0)
    good = np.isfinite(r.pixel_gain) & (ds.truth.defect_map()[sub.slices()] == "")
    ratio = r.pixel_gain[good] / truth[good]
    spread = 1.4826 * np.median(np.abs(ratio - np.median(ratio)))
    assert 0.7 < spread / np.median(r.pixel_err[good]) < 1.4
    assert abs(np.median(ratio) - 1) < 0.08        # 1/slope of a noisy slope: biased high
    # where a pixel's own gain is not precise enough, the box's is used
    r2 = make_gain(ds.files("flat"), ds.files("dark"), tmp_path / "g2.fits", box=16,
                   per_pixel_max_error=0.01)
    assert np.array_equal(r2.gain, np.repeat(np.repeat(r2.box_gain, 16, 0), 16, 1)[:64, :64])


def test_flats_of_different_illumination_are_refused(tmp_path):
    ds = simulate_dataset(tmp_path, ndarks=0, nflats=2, ngroups=5, nints=1,
                          flat_flux=(5000.0, 10000.0), seed=1, write_reffiles=False)
    with pytest.raises(ValueError, match="differ in illumination"):
        make_gain(ds.files("flat"), [], tmp_path / "g.fits", box=32)
    assert not (tmp_path / "g.fits").exists()


def _ipc_ramps(rng, ipc, shape=(128, 128), ngroups=10, e_per_group=4000.0, gain=2.0, rn=6.0):
    from scipy.ndimage import convolve
    kernel = np.array([[0, ipc, 0], [ipc, 1 - 4 * ipc, ipc], [0, ipc, 0]])
    q = np.cumsum(rng.poisson(e_per_group, (ngroups,) + shape), axis=0) / gain
    coupled = np.stack([convolve(x, kernel, mode="nearest") for x in q])
    return coupled + rn * rng.standard_normal(coupled.shape) + 1000.0


def test_ipc_correction_restores_the_gain():
    rng = np.random.default_rng(2)
    est = {False: [], True: []}
    for _ in range(4):
        f1, f2 = _ipc_ramps(rng, 0.02), _ipc_ramps(rng, 0.02)
        d1, d2 = _ipc_ramps(rng, 0.0, e_per_group=0), _ipc_ramps(rng, 0.0, e_per_group=0)
        for corr in (False, True):
            r = ptc_levels(f1, f2, d1, d2, box=32, ipc_correction=corr)
            est[corr].append(np.median(fit_ptc(r["signal"], r["variance"], r["npix"]).gain))
    # 1 / sum(kernel^2) = 1.18 too high without the correction
    assert np.mean(est[False]) / 2.0 == pytest.approx(1.18, abs=0.03)
    assert np.mean(est[True]) / 2.0 == pytest.approx(1.0, abs=0.03)


# ---- saturation ---------------------------------------------------------------

@pytest.fixture(scope="module")
def saturating(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sat")
    return simulate_dataset(tmp, ndarks=0, nflats=2, ngroups=40, nints=3,
                            flat_flux=(40000.0,), seed=4, write_reffiles=False)


def test_saturation_levels_within_one_percent(saturating, tmp_path):
    path = make_saturation(saturating.files("flat"), tmp_path / "sat.fits")
    truth = saturating.truth.cutout("saturation", SUB)
    defect = saturating.truth.defect_map()[SUB.slices()]
    sci = ~saturating.truth.refpix[SUB.slices()]
    with dm.SaturationModel(str(path)) as m:
        m.validate()
        has_level = m.dq == 0
        # the reset level of LOW_PED pixels wanders, and a telegraph pixel's plateau
        # jumps: their plateau is not the truth's saturation
        normal = sci & ~np.isin(defect, ["LOW_PED", "TELEGRAPH", "DEAD"])
        assert has_level[normal].mean() > 0.99
        rel = np.abs(m.data / truth - 1)[normal & has_level]
        assert rel.max() < 0.01, rel.max()
        # dead pixels never saturate: no check
        dead = defect == "DEAD"
        if dead.any():
            assert np.all(m.dq[dead] & flag_value("NO_SAT_CHECK"))


def test_plateau_found_only_where_the_ramp_flattens():
    t = np.arange(30, dtype=float)[:, None, None]
    ramps = np.concatenate([np.minimum(1000 * t, 20000.0), 500 * t, 0 * t + 3.0], axis=2)
    p = plateau_levels(ramps)
    assert p["level"][0, 0] == pytest.approx(20000.0) and p["onset"][0, 0] == 20
    assert np.isnan(p["level"][0, 1]) and np.isnan(p["level"][0, 2])


# ---- linearity ----------------------------------------------------------------

def test_linearity_corrects_ramps_to_half_a_percent():
    det_truth = make_truth("NRCA1", seed=5)
    tframe = frame_time(det_truth.geometry, SUB, "RAPID")
    rng = np.random.default_rng(1)
    bias = det_truth.cutout("bias", SUB)
    times = group_times(40, 1, 0, tframe)
    ramps, tlist, usable = [], [], []
    for flux in (10000.0, 14000.0, 20000.0):
        sim = simulate_ramps(det_truth, SUB, get_readout_pattern("RAPID"), 40, 4, tframe,
                             flux=flux, rng=rng)
        for i in range(4):
            ramp = sim.data[i].astype(float) - bias
            use, _ = usable_groups(ramp)
            ramps.append(ramp), tlist.append(times), usable.append(use)
    coeffs, fitted, reach = fit_linearity(ramps, tlist, usable, degree=5, model_degree=3)
    alpha = det_truth.cutout("nonlin_alpha", SUB)
    sat = det_truth.cutout("saturation", SUB) - bias
    good = (det_truth.defect_map()[SUB.slices()] == "") & ~det_truth.refpix[SUB.slices()]
    assert fitted[good].mean() > 0.99
    m = np.linspace(0.02, 0.9, 50)[:, None, None] * sat[None]
    linear = (1 - np.sqrt(1 - 4 * alpha * m)) / (2 * alpha)      # the truth's inverse
    corrected = sum(coeffs[k] * m ** k for k in range(coeffs.shape[0]))
    dev = np.abs(corrected / linear - 1).max(axis=0)[good & fitted]
    assert np.median(dev) < 0.005, np.median(dev)
    assert np.percentile(dev, 90) < 0.01
    # uncorrected, the deficit at 90 % of saturation is several percent
    assert np.median(np.abs(m[-1] / linear[-1] - 1)[good]) > 0.05


# ---- through mkrefs and the pipeline --------------------------------------------

@pytest.fixture(scope="module")
def job(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("glsjob")
    # flats saturate two thirds of the way up their ramps
    ds = simulate_dataset(tmp / "sim", ndarks=2, nflats=4, ngroups=30, nints=2,
                          flat_flux=(16000.0,), seed=9, cadence_days=0.2)
    cfg = tmp / "main.cfg"
    cfg.write_text(f"""
output: {{outrootdir: {tmp / 'out'}, runID: 1}}
reffile4ssb: {{default: '{ds.outdir / 'reffiles'}/*.fits'}}
""")
    rc = cli.main(["-v", "--cfgfile", str(cfg), "gain_armin,gain_bryan,linearity,saturation",
                   str(ds.outdir / "*_uncal.fits")])
    return rc, ds, tmp / "out" / "001"


def test_mkrefs_makes_gain_linearity_saturation_that_the_pipeline_uses(job, tmp_path):
    rc, ds, rundir = job
    assert rc == 0
    final = {lab: rundir / "final" / f"{lab}_001.{rt}.fits" for lab, rt in
             (("gain_armin", "gain"), ("gain_bryan", "gain"), ("linearity", "linearity"),
              ("saturation", "saturation"))}
    gain_truth = np.median(ds.truth.cutout("gain", SUB))
    for lab in ("gain_armin", "gain_bryan"):
        with dm.GainModel(str(final[lab])) as m:
            m.validate()
            assert abs(np.median(m.data) / gain_truth - 1) < 0.02, lab
    sat_truth = ds.truth.cutout("saturation", SUB)
    with dm.SaturationModel(str(final["saturation"])) as m:
        ok = (m.dq == 0) & (ds.truth.defect_map()[SUB.slices()] == "")
        assert np.median(np.abs(m.data[ok] / sat_truth[ok] - 1)) < 0.01
    with dm.LinearityModel(str(final["linearity"])) as m:
        m.validate()
        assert (m.dq == 0).mean() > 0.9

    # mkrefs validated them, ran the step that uses each, and wrote the report
    import json
    v = json.loads((rundir / "validation" / "validation.json").read_text())
    assert {e["reflabel"] for e in v["files"]} == set(final)
    for e in v["files"]:
        assert e["format"]["valid"], e
        assert e["quality"]["status"] == "ran", e
    page = (rundir / "report" / "index.html").read_text()
    assert all(f"{p.name[:-5]}_image.png" in page for p in final.values())

    # the pipeline's steps take them
    from jwst.linearity import LinearityStep
    from jwst.ramp_fitting import RampFitStep
    from jwst.saturation import SaturationStep
    from jwst_reffiles.pipeline.offline import offline_crds
    raw = str(ds.files("flat")[0])
    refs = {k: str(v) for k, v in ds.reffiles.items()}
    with offline_crds(tmp_path / "crds"):
        sat = SaturationStep.call(raw, override_saturation=str(final["saturation"]),
                                  override_superbias=refs["superbias"])
        flagged = (sat.groupdq & flag_value("SATURATED")) > 0
        # flats saturate about two thirds of the way up: the last group is saturated,
        # the first is not
        assert flagged[:, -1].mean() > 0.9 and flagged[:, 0].mean() < 0.01
        from jwst.superbias import SuperBiasStep
        sb = SuperBiasStep.call(sat, override_superbias=refs["superbias"])
        lin = LinearityStep.call(sb, override_linearity=str(final["linearity"]))
        assert lin.meta.cal_step.linearity == "COMPLETE"
        result = RampFitStep.call(lin, override_gain=str(final["gain_armin"]),
                                  override_readnoise=refs["readnoise"])
        rate = result[0] if isinstance(result, tuple) else result
        assert rate.meta.cal_step.ramp_fit == "COMPLETE"
        # the rate in e-/s (DN/s x gain) is the illumination x the QE
        qe = ds.truth.cutout("photo_response", SUB)
        good = (ds.truth.defect_map()[SUB.slices()] == "") & (qe > 0)
        electrons = rate.data * ds.truth.cutout("gain", SUB)
        assert np.median(electrons[good] / (16000.0 * qe[good])) == pytest.approx(1.0, abs=0.02)

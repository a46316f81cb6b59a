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
from jwst_reffiles.linalg import solve_batched
from jwst_reffiles.linearity.linearity import (fit_linearity, group_times, invert_forward,
                                              jump_onset, usable_groups)
from jwst_reffiles.stats import MAD_TO_SIGMA, nanmedian
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


# ---- the compiled fit against the numpy formulation it replaced -------------------

def test_compiled_linearity_fit_equals_the_numpy_formulation():
    """The Gauss-Newton accumulation is compiled (linearity._kernel): on a block of
    simulated ramps of three illuminations and two lengths, with cosmic rays and
    unusable groups, it gives the numpy formulation's coefficients to float precision."""
    det_truth = make_truth("NRCA1", seed=8)
    tframe = frame_time(det_truth.geometry, SUB, "RAPID")
    rng = np.random.default_rng(4)
    bias = det_truth.cutout("bias", SUB)
    ramps, tlist, usable = [], [], []
    for flux, ng in ((10000.0, 40), (14000.0, 30), (20000.0, 40)):
        sim = simulate_ramps(det_truth, SUB, get_readout_pattern("RAPID"), ng, 2, tframe,
                             flux=flux, rng=rng)
        for i in range(2):
            ramp = sim.data[i].astype(float) - bias
            use, _ = usable_groups(ramp)
            ramps.append(ramp), tlist.append(group_times(ng, 1, 0, tframe)), usable.append(use)
    new = fit_linearity(ramps, tlist, usable, degree=5, model_degree=3)
    ref = _fit_linearity_numpy(ramps, tlist, usable, degree=5, model_degree=3)
    # (reference pixels see no light: their systems are degenerate, and which of them
    # pass the conditioning test depends on the order of the sums; make_linearity
    # leaves them uncorrected, their reach being nil)
    science = ~det_truth.refpix[SUB.slices()]
    assert np.array_equal(new[1][science], ref[1][science])       # the same pixels fitted
    ok = ref[1] & science
    assert ok[science].mean() > 0.9
    np.testing.assert_allclose(new[2][ok], ref[2][ok], rtol=1e-9)  # reach
    for k in range(2, 6):                                           # c2 .. c5
        scale = np.abs(ref[0][k][ok]).max()
        np.testing.assert_allclose(new[0][k][ok], ref[0][k][ok], rtol=1e-6,
                                   atol=1e-9 * scale)


def _fit_linearity_numpy(ramps, times, usable, degree: int = 5, model_degree: int = 3,
                  scale: float | None = None, iterations: int = 8, tolerance: float = 1e-7,
                  min_groups: int | None = None, min_ramps: int = 1):
    """The numpy formulation ``linearity.fit_linearity`` replaced (its parameters and
    results), kept to compare the compiled kernels with."""
    if degree < 2 or model_degree < 2:
        raise ValueError(f"polynomial degrees must be >= 2, got {degree} and {model_degree}")
    if not ramps:
        raise ValueError("fit_linearity: no ramps")
    shape = ramps[0].shape[1:]
    min_groups = model_degree + 2 if min_groups is None else min_groups
    if scale is None:
        scale = max(float(np.nanmax(np.where(u, r, np.nan))) if u.any() else 0.0
                    for r, u in zip(ramps, usable)) or 1.0
    tmax = max(float(np.max(t)) for t in times)
    npix = int(np.prod(shape))
    xs, ws, ts, thetas = [], [], [], []
    nramps = np.zeros(npix, np.int32)
    for r, t, u in zip(ramps, times, usable):
        r = np.asarray(r, np.float64).reshape(len(t), npix)
        w = (np.asarray(u).reshape(len(t), npix) & np.isfinite(r)).astype(np.float64)
        ok = w.sum(axis=0) >= min_groups
        w *= ok[None]
        x = np.where(w > 0, r / scale, 0.0)
        tt = np.asarray(t, np.float64)[:, None] / tmax
        # start: the straight line through the usable values
        s0, s1, s2 = w.sum(0), (w * tt).sum(0), (w * tt * tt).sum(0)
        a, b = (w * tt * x).sum(0), (w * x).sum(0)
        det = np.where(ok, s0 * s2 - s1 * s1, 1.0)
        det = np.where(det != 0, det, 1.0)
        xs.append(x), ws.append(w), ts.append(tt)
        thetas.append(np.stack([(s0 * a - s1 * b) / det, (s2 * b - s1 * a) / det], -1))
        nramps += ok
    q = model_degree - 1
    beta = np.zeros((npix, q))
    powers = np.arange(2, model_degree + 1)
    for _ in range(iterations):
        h = np.zeros((npix, q, q))
        g = np.zeros((npix, q))
        parts = []
        for x, w, tt, theta in zip(xs, ws, ts, thetas):
            lin = theta[None, :, 0] * tt + theta[None, :, 1]      # (G, P): L / scale
            lp = np.stack([lin ** j for j in powers], axis=-1)    # (G, P, q)
            dfdl = 1.0 + (np.stack([j * lin ** (j - 1) for j in powers], -1)
                          * beta[None]).sum(-1)
            res = w * (x - lin - (lp * beta[None]).sum(-1))
            cols = [dfdl * tt, dfdl] + [lp[..., i] for i in range(q)]
            k = len(cols)
            m = np.empty((npix, k, k))
            grad = np.empty((npix, k))
            for i in range(k):
                wc = w * cols[i]
                grad[:, i] = np.einsum("gp,gp->p", cols[i], res)
                for j in range(i, k):
                    m[:, i, j] = m[:, j, i] = np.einsum("gp,gp->p", wc, cols[j])
            a_, c_, b_ = m[:, :2, :2], m[:, :2, 2:], m[:, 2:, 2:]
            det = a_[:, 0, 0] * a_[:, 1, 1] - a_[:, 0, 1] * a_[:, 1, 0]
            good = np.abs(det) > 1e-300
            det = np.where(good, det, 1.0)
            ainv = np.stack([np.stack([a_[:, 1, 1], -a_[:, 0, 1]], -1),
                             np.stack([-a_[:, 1, 0], a_[:, 0, 0]], -1)], -2) / det[:, None, None]
            ainv = np.where(good[:, None, None], ainv, 0.0)
            ac = ainv @ c_                                        # (P, 2, q)
            h += b_ - np.swapaxes(c_, -1, -2) @ ac
            g += grad[:, 2:] - (np.swapaxes(ac, -1, -2) @ grad[:, :2, None])[..., 0]
            parts.append((ainv, grad[:, :2], c_))
        dbeta, ok_b = solve_batched(h, g)
        beta = beta + dbeta
        done = float(np.max(np.abs(dbeta))) < tolerance if dbeta.size else True
        for k, (ainv, gr, c_) in enumerate(parts):
            thetas[k] = thetas[k] + (ainv @ (gr - (c_ @ dbeta[..., None])[..., 0])[..., None])[..., 0]
        if done:
            break
    fitted = ok_b & (nramps >= min_ramps)
    # reach: the largest linear signal fitted
    reach = np.zeros(npix)
    for w, tt, theta in zip(ws, ts, thetas):
        lin = theta[None, :, 0] * tt + theta[None, :, 1]
        reach = np.maximum(reach, np.where(w > 0, lin, 0.0).max(axis=0))
    coeffs = invert_forward(beta.reshape(shape + (q,)), reach.reshape(shape), degree)
    coeffs[2:] = coeffs[2:] * (scale ** (1.0 - np.arange(2, degree + 1)))[:, None, None]
    fitted = fitted.reshape(shape)
    coeffs[:, ~fitted] = 0.0
    coeffs[1, ~fitted] = 1.0
    return coeffs, fitted, reach.reshape(shape) * scale



def _jump_onset_numpy(ramp, nsigma=6.0, window=2):
    r = np.asarray(ramp, dtype=np.float64)
    ng = r.shape[0]
    d = np.diff(r, axis=0)
    n = d.shape[0]
    pad = np.pad(d, ((window, window), (0, 0), (0, 0)), mode="edge")
    neigh = np.stack([pad[window + o: window + o + n] for o in range(-window, window + 1)
                      if o != 0])
    trend = nanmedian(neigh, axis=0)
    resid = d - trend
    mad = MAD_TO_SIGMA * nanmedian(np.abs(resid), axis=0)
    with np.errstate(invalid="ignore"):
        jump = resid > nsigma * np.maximum(mad, 1e-6)[None]
    return np.where(jump.any(axis=0), np.argmax(jump, axis=0) + 1, ng)


@pytest.mark.parametrize("ngroups", [2, 3, 8, 30])
def test_compiled_jump_onset_equals_the_numpy_formulation(ngroups):
    rng = np.random.default_rng(ngroups)
    ramp = np.cumsum(rng.normal(100.0, 5.0, (ngroups, 40, 50)), axis=0)
    hits = rng.random((40, 50)) < 0.2
    where = rng.integers(1, ngroups, (40, 50))
    for (y, x) in np.argwhere(hits):                      # cosmic rays
        ramp[where[y, x]:, y, x] += rng.uniform(50.0, 500.0)
    ramp[rng.random(ramp.shape) < 0.05] = np.nan            # unusable groups
    ramp[:, :3, :3] = 7.0                                   # flat: a spread of 0
    ramp[:, 5, :] = np.nan                                  # nothing usable
    for nsigma, window in ((6.0, 2), (3.0, 1), (4.0, 3)):
        assert np.array_equal(jump_onset(ramp, nsigma, window),
                              _jump_onset_numpy(ramp, nsigma, window)), (nsigma, window)


def _invert_forward_numpy(beta, reach, degree, npoints=64):
    shape = beta.shape[:-1]
    q = beta.shape[-1]
    frac = np.linspace(1.0 / npoints, 1.0, npoints)[:, None, None]
    lin = frac * np.maximum(reach, 1e-6)[None]
    m = lin + sum(beta[..., j] * lin ** (j + 2) for j in range(q))
    cols = np.stack([m ** j for j in range(2, degree + 1)], -1)
    h = np.einsum("n...i,n...j->...ij", cols, cols)
    gvec = np.einsum("n...i,n...->...i", cols, lin - m)
    c, _ = solve_batched(h, gvec)
    out = np.zeros((degree + 1,) + shape)
    out[1] = 1.0
    out[2:] = np.moveaxis(c, -1, 0)
    return out


@pytest.mark.parametrize("q, degree", [(2, 5), (1, 3), (3, 6)])
def test_compiled_inversion_equals_the_numpy_formulation(q, degree):
    rng = np.random.default_rng(q + degree)
    beta = rng.normal(0.0, 0.05, (30, 40, q)) * 0.1 ** np.arange(q)
    reach = rng.uniform(0.3, 1.0, (30, 40))
    reach[0, :5] = 0.0                                      # nothing fitted
    new, ref = invert_forward(beta, reach, degree), _invert_forward_numpy(beta, reach, degree)
    # the polynomials agree over the range they are fitted on (their coefficients are
    # as ill-conditioned as high powers on [0, reach] make them)
    m = np.linspace(0.01, 1.0, 50)[:, None, None] * np.maximum(reach, 1e-6)
    values = [sum(c[k] * m ** k for k in range(degree + 1)) for c in (new, ref)]
    assert np.abs(values[0] - values[1]).max() <= 1e-10 * np.abs(values[1]).max()

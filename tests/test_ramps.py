"""The simulated ramps carry the injected truth (statistics of the data)."""

import numpy as np
import pytest

from jwst_reffiles.simulate import (default_parameters, frame_time, get_readout_pattern,
                                    get_subarray, make_truth, simulate_ramps)
from jwst_reffiles.simulate.ramps import group_times

from conftest import robust_std

NO_DEFECTS = {k: 0.0 for k in ("DEAD", "LOW_QE", "OPEN", "HOT", "WARM", "RC", "TELEGRAPH",
                               "LOW_PED")}


def run(truth, subarray="SUB160", readpatt="RAPID", ngroups=10, nints=2, flux=0.0, seed=0,
        cosmic_rays=False):
    sub = get_subarray(truth.geometry.instrument, subarray)
    pat = get_readout_pattern(readpatt)
    tframe = frame_time(truth.geometry, sub, readpatt)
    res = simulate_ramps(truth, sub, pat, ngroups, nints, tframe, flux=flux,
                         rng=np.random.default_rng(seed), cosmic_rays=cosmic_rays)
    return res, sub, pat, tframe


def slopes(ramp, t):
    """Least-squares slope per pixel of (nints, ngroups, ny, nx) vs times t, averaged over ints."""
    tc = t - t.mean()
    s = np.tensordot(tc, ramp - ramp.mean(axis=1, keepdims=True), axes=([0], [1]))
    return (s / (tc ** 2).sum()).mean(axis=0)


def remove_bias_and_drift(res, truth, sub):
    """Raw data minus the truth bias and the per-amplifier drift (float64)."""
    geom = truth.geometry
    data = res.data.astype(np.float64) - truth.bias[sub.slices()]
    amp = geom.amplifier_map(sub.xstart, sub.xsize, sub.noutputs)
    parity = np.arange(sub.xstart - 1, sub.xstart - 1 + sub.xsize) % 2
    return data - res.drift[:, :, amp, parity][:, :, None, :]


def test_cds_noise_is_sqrt2_times_read_noise(clean_truth):
    res, sub, _, _ = run(clean_truth, "SUB320", ngroups=10, nints=2)
    sci = ~clean_truth.refpix[sub.slices()]
    cds = np.diff(res.data.astype(np.float64), axis=1)          # (2, 9, ny, nx)
    # consecutive differences are anti-correlated: a sample variance around
    # their mean would be biased; their true mean is ~0 (dark current 0.002 DN
    # per frame), so the mean square is the estimator.  Rounding to integer DN
    # adds 1/12 DN^2 per read.
    var = (cds ** 2).reshape(-1, *cds.shape[2:]).mean(axis=0) - 2 / 12.0
    rn = clean_truth.read_noise[sub.slices()]
    ratio = np.sqrt(var[sci].mean() / (2 * rn[sci] ** 2).mean())
    assert ratio == pytest.approx(1.0, abs=0.02)
    # and pixel by pixel: noisier pixels are noisier, in proportion
    edges = np.quantile(rn[sci], [0, 0.1, 0.5, 0.9, 1])
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = sci & (rn >= lo) & (rn <= hi)
        r = np.sqrt(var[sel].mean() / (2 * rn[sel] ** 2).mean())
        assert r == pytest.approx(1.0, abs=0.03), (lo, hi)


def test_frame_averaging_reduces_group_noise(clean_truth):
    res, sub, pat, _ = run(clean_truth, "SUB320", "SHALLOW4", ngroups=6, nints=2)
    assert pat.nframes == 4
    sci = ~clean_truth.refpix[sub.slices()]
    cds = np.diff(res.data.astype(np.float64), axis=1)
    var = (cds ** 2).reshape(-1, *cds.shape[2:]).mean(axis=0)   # see the CDS test
    rn = clean_truth.read_noise[sub.slices()]
    expected = 2 * rn ** 2 / pat.nframes + 2 / 12.0      # + quantisation of the averages
    assert np.sqrt(var[sci].mean() / expected[sci].mean()) == pytest.approx(1.0, abs=0.03)


def test_dark_slope_matches_dark_current():
    par = default_parameters("NIRCAM").with_overrides(
        dark_current_mean=20.0, dark_current_sigma=5.0, fractions=NO_DEFECTS,
        refpix_drift_sigma=0.0, refpix_even_odd_sigma=0.0)
    truth = make_truth("NRCA2", seed=8, parameters=par)
    res, sub, pat, tframe = run(truth, ngroups=20, nints=2)
    sl = sub.slices()
    sci = ~truth.refpix[sl]
    measured = slopes(res.data.astype(np.float64), group_times(pat, 20, tframe))
    expected = (truth.dark_current / truth.gain)[sl]
    assert measured[sci].mean() / expected[sci].mean() == pytest.approx(1.0, abs=0.01)
    fit = np.polyfit(expected[sci], measured[sci], 1)
    assert fit[0] == pytest.approx(1.0, abs=0.05)
    # reference pixels collect nothing
    assert abs(measured[~sci].mean()) < 0.05


def test_hot_pixels_ramp_at_their_dark_current():
    par = default_parameters("NIRCAM").with_overrides(fractions={**NO_DEFECTS, "HOT": 0.01})
    t = make_truth("NRCA1", seed=11, parameters=par)
    res, sub, pat, tframe = run(t, "SUB640", ngroups=10, nints=1)
    sl = sub.slices()
    data = remove_bias_and_drift(res, t, sub)
    gt = group_times(pat, 10, tframe)
    rate = (t.dark_current / t.gain)[sl]
    d = t.defects
    hot = (d["defect"] == "HOT") & (d["y"] < 640) & (d["x"] < 640)
    ys, xs = d["y"][hot], d["x"][hot]
    # well above the noise, clear of nonlinearity (< 0.7 % at the last group)
    last = rate[ys, xs] * gt[-1]
    ok = (last > 300) & (last < 3000)
    assert ok.sum() > 500
    ys, xs, last = ys[ok], xs[ok], last[ok]
    ratio = slopes(data[:, :, ys, xs][..., None], gt)[:, 0] / rate[ys, xs]
    assert ratio.mean() == pytest.approx(1.0, abs=0.005)
    # scatter as expected: a least-squares slope of n equally spaced reads of a
    # cumulative Poisson ramp reaching N electrons has relative variance
    # 6(n^2+1) / (5(n^2-1) N); white read noise adds 12 rn^2 / (n(n^2-1) dt^2)
    n = len(gt)
    electrons = last * t.gain[ys, xs]
    var_shot = 6 * (n * n + 1) / (5 * (n * n - 1) * electrons)
    var_read = 12 * t.read_noise[ys, xs] ** 2 / (n * (n * n - 1) * tframe ** 2) / rate[ys, xs] ** 2
    z = (ratio - 1) / np.sqrt(var_shot + var_read)
    assert z.std() == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("readpatt", ["RAPID", "BRIGHT2", "SHALLOW2"])
def test_flat_slope_is_flux_times_qe_over_gain(nrca1_truth, readpatt):
    t = nrca1_truth
    flux = 2000.0
    res, sub, pat, tframe = run(t, readpatt=readpatt, ngroups=8, nints=2, flux=flux)
    sl = sub.slices()
    m = remove_bias_and_drift(res, t, sub)
    coeffs = t.linearity_coefficients()[:, sl[0], sl[1]].astype(np.float64)
    linear = sum(coeffs[k] * m ** k for k in range(coeffs.shape[0]))
    gt = group_times(pat, 8, tframe)
    expected = ((flux * t.photo_response + t.dark_current) / t.gain)[sl]
    good = ~t.refpix[sl]
    d = t.defects
    inside = (d["y"] < 160) & (d["x"] < 160)
    good[d["y"][inside], d["x"][inside]] = False
    ratio = slopes(linear, gt)[good] / expected[good]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.003)
    assert robust_std(ratio) < 0.02
    # without the linearity correction the slope is measurably low
    raw_ratio = slopes(m, gt)[good] / expected[good]
    assert np.median(raw_ratio) < np.median(ratio) - 0.003


def test_flat_response_of_defects(nrca1_truth):
    t = nrca1_truth
    res, sub, pat, tframe = run(t, "SUB640", ngroups=5, nints=1, flux=3000.0)
    sl = sub.slices()
    rate = slopes(remove_bias_and_drift(res, t, sub), group_times(pat, 5, tframe))
    norm = rate / np.median(rate[~t.refpix[sl]])
    d = t.defects
    inside = (d["y"] < 640) & (d["x"] < 640)

    def vals(cls, side=False):
        sel = inside & (d["defect"] == cls) & (d["value"] > 1.0 if side else True)
        return norm[d["y"][sel], d["x"][sel]]

    assert vals("DEAD").size and (vals("DEAD") < 0.1).all()
    assert (vals("LOW_QE") < 0.5).all()
    assert (vals("OPEN") < 0.5).all()
    assert (vals("ADJ_OPEN", side=True) > 1.05).all()     # the side ones collect the charge


def test_saturated_ramps_plateau_at_the_saturation_level(nrca1_truth):
    t = nrca1_truth
    res, sub, _, _ = run(t, ngroups=8, nints=1, flux=100000.0)
    sl = sub.slices()
    sci = ~t.refpix[sl] & (t.photo_response[sl] > 0.5)
    last = remove_bias_and_drift(res, t, sub)[0, -1] + t.bias[sl]
    diff = (last - t.saturation[sl])[sci]
    rn = t.read_noise[sl][sci]
    assert np.median(np.abs(diff)) < 1.5 * np.median(rn)
    assert (np.abs(diff) < 6 * rn + 1).mean() > 0.995


def test_telegraph_pixels_switch_between_two_levels():
    par = default_parameters("NIRCAM").with_overrides(
        fractions={**NO_DEFECTS, "TELEGRAPH": 2e-3}, refpix_drift_sigma=0.0,
        refpix_even_odd_sigma=0.0)
    t = make_truth("NRCA4", seed=2, parameters=par)
    res, sub, _, _ = run(t, "SUB320", ngroups=60, nints=2)
    sl = sub.slices()
    data = res.data.astype(np.float64) - t.bias[sl]
    d = t.defects
    sel = (d["y"] < 320) & (d["x"] < 320)
    ys, xs = d["y"][sel], d["x"][sel]
    assert len(ys) > 20
    both = 0
    for y, x in zip(ys, xs):
        v = data[:, :, y, x].ravel()
        amp, rn = t.telegraph_amplitude[y, x], t.read_noise[y, x]
        near_low = np.abs(v) < 5 * rn + 1
        near_high = np.abs(v - amp) < 5 * rn + 1
        assert (near_low | near_high).mean() > 0.99
        both += near_low.any() and near_high.any()
    assert both >= 3


def test_rc_and_low_pedestal_pixels(nrca1_truth):
    t = nrca1_truth
    res, sub, pat, tframe = run(t, "SUB640", ngroups=10, nints=4)
    data = remove_bias_and_drift(res, t, sub)
    gt = group_times(pat, 10, tframe)
    d = t.defects
    inside = (d["y"] < 640) & (d["x"] < 640)
    rc = inside & (d["defect"] == "RC")
    assert rc.sum() >= 3
    for y, x in zip(d["y"][rc], d["x"][rc]):
        exp = (t.rc_amplitude[y, x] * (1 - np.exp(-gt / t.rc_tau[y, x]))
               + t.dark_current[y, x] / t.gain[y, x] * gt)
        got = data[:, :, y, x].mean(axis=0)
        assert np.abs(got - exp).max() < 5 * t.read_noise[y, x] / np.sqrt(4) + 1
    lp = inside & (d["defect"] == "LOW_PED")
    assert lp.sum() >= 3
    for y, x in zip(d["y"][lp], d["x"][lp]):
        first = data[:, 0, y, x]
        off = t.low_pedestal[y, x]
        tol = 5 * t.read_noise[y, x] + 1
        assert ((first < 0.8 * off + tol) & (first > 1.2 * off - tol)).all()


def test_reference_pixels_track_the_amplifier_drift(nrca1_truth):
    t = nrca1_truth
    res, sub, _, _ = run(t, ngroups=10, nints=2)
    sl = sub.slices()
    ref = t.refpix[sl]
    resid = res.data.astype(np.float64) - t.bias[sl]
    parity = np.arange(sub.xsize) % 2
    for p in (0, 1):
        cols = ref & (parity == p)[None, :]
        measured = resid[:, :, cols].mean(axis=-1)          # (nints, ngroups)
        np.testing.assert_allclose(measured, res.drift[:, :, 0, p], atol=1.0)
    assert res.drift.std() > 2.0       # the drift is really there


def test_cosmic_rays_appear_where_and_when_recorded():
    par = default_parameters("NIRCAM").with_overrides(
        cosmic_ray_flux=2000.0, fractions=NO_DEFECTS)
    t = make_truth("NRCB1", seed=4, parameters=par)
    res, sub, pat, tframe = run(t, ngroups=10, nints=2, cosmic_rays=True)
    cr = res.cosmic_rays
    area = 160 * 160 * (18e-4) ** 2
    t_int = 10 * tframe
    expected_events = par.cosmic_ray_flux * area * t_int * 2
    main = cr[cr["electrons"] > 0]
    # 5 pixels per event, fewer at the edges and on reference pixels
    assert 3.5 * expected_events < len(main) < 5.5 * expected_events
    # pixels hit once, in a group after the first: the jump is charge / gain
    keys = list(zip(cr["integration"], cr["y"], cr["x"]))
    once = [i for i, k in enumerate(keys) if keys.count(k) == 1 and cr["group"][i] > 0
            and cr["electrons"][i] > 1000]
    assert len(once) >= 5
    data = res.data.astype(np.float64)
    for i in once:
        it, g, y, x = cr["integration"][i] - 1, cr["group"][i], cr["y"][i], cr["x"][i]
        jump = data[it, g, y, x] - data[it, g - 1, y, x]
        q_dn = cr["electrons"][i] / t.gain[y, x]
        assert abs(jump - q_dn) < 0.05 * q_dn + 6 * t.read_noise[y, x] + 20


def test_ramps_are_deterministic_in_the_generator_seed(nrca1_truth):
    a, *_ = run(nrca1_truth, ngroups=3, nints=1, flux=100.0, seed=9, cosmic_rays=True)
    b, *_ = run(nrca1_truth, ngroups=3, nints=1, flux=100.0, seed=9, cosmic_rays=True)
    c, *_ = run(nrca1_truth, ngroups=3, nints=1, flux=100.0, seed=10, cosmic_rays=True)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)


def test_invalid_arguments(nrca1_truth):
    sub = get_subarray("NIRCAM", "SUB160")
    with pytest.raises(ValueError, match="ngroups"):
        simulate_ramps(nrca1_truth, sub, get_readout_pattern("RAPID"), 0, 1, 1.0)
    with pytest.raises(ValueError, match="flux"):
        simulate_ramps(nrca1_truth, sub, get_readout_pattern("RAPID"), 2, 1, 1.0, flux=-1)

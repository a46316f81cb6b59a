"""Bad pixels from darks (work in progress: what already meets its target is tested)."""

import warnings

import numpy as np
import pytest

from jwst_reffiles.dark_current import badpix_from_darks as bd
from jwst_reffiles.dq import flag_value
from jwst_reffiles.stats import MAD_TO_SIGMA


N = 320


def run(darks, **kw):
    sim, rates, jumps, fitopt, tmp = darks
    return bd.find_bad_pix(rates, jump_filenames=jumps, fitopt_filenames=fitopt, **kw)


def scores(sim, dq, cls, flag):
    d = sim.truth.defects
    sel = (d["y"] < N) & (d["x"] < N) & (d["defect"] == cls)
    truth = np.zeros((N, N), bool)
    truth[d["y"][sel], d["x"][sel]] = True
    found = (dq & flag_value(flag)) > 0
    tp = (truth & found).sum()
    return tp / max(1, truth.sum()), tp / max(1, found.sum()), truth.sum()


@pytest.fixture(scope="module")
def found(darks):
    return run(darks, hot_threshold=0.7, max_jump_limit=1)


@pytest.mark.parametrize("cls, flag", [("HOT", "HOT"), ("RC", "RC"), ("TELEGRAPH", "TELEGRAPH"),
                                       ("LOW_PED", "OTHER_BAD_PIXEL")])
def test_classes_at_target_precision_and_recall(darks, found, cls, flag):
    recall, precision, n = scores(darks[0], found, cls, flag)
    assert n >= 20
    assert recall >= 0.99 and precision >= 0.99, (recall, precision)
    assert ((found[found & flag_value(flag) > 0] & flag_value("DO_NOT_USE")) > 0).all()


def test_warm(darks, found):
    # the faintest warm pixels are below a 5 sigma detection in these ramps
    recall, precision, _ = scores(darks[0], found, "WARM", "WARM")
    assert precision >= 0.99 and recall >= 0.5


def test_user_thresholds_are_honoured(darks):
    """Predecessor defect: max_jump_limit and friends were ignored."""
    loose = run(darks, max_jump_limit=1, high_cr_fraction=0.2)
    strict, maps = run(darks, max_jump_limit=50, return_maps=True)
    tel = flag_value("TELEGRAPH")
    # with no jump count high enough, TELEGRAPH comes only from a switching pedestal
    assert not maps["high_cr_count"].any()
    np.testing.assert_array_equal((strict & tel) > 0, maps["switching_pedestal"])
    assert ((loose & tel) > 0).sum() > ((strict & tel) > 0).sum()


def test_defaults_are_not_shared_between_calls(darks):
    """Predecessor defect: a mutable default flag_values accumulated DO_NOT_USE."""
    before = {k: tuple(v) for k, v in bd.DEFAULT_FLAG_VALUES.items()}
    a = run(darks, do_not_use=[])
    b = run(darks)
    c = run(darks, do_not_use=[])
    assert {k: tuple(v) for k, v in bd.DEFAULT_FLAG_VALUES.items()} == before
    np.testing.assert_array_equal(a, c)
    assert not (a & flag_value("DO_NOT_USE")).any() and (b & flag_value("DO_NOT_USE")).any()


def test_pixels_with_few_clean_slopes_are_not_called_noisy(darks):
    """Predecessor defect: every CR-hit pixel became TELEGRAPH with < 5 clean slopes."""
    dq, maps = run(darks, return_maps=True)
    few = maps["n_clean"] < 5
    assert few.any()
    assert not ((dq[few] & flag_value("UNRELIABLE_SLOPE")) > 0).any()


def test_jump_echoes_on_neighbours_are_not_jumps():
    rng = np.random.default_rng(0)
    ramp = rng.normal(0, 5, (20, 3, 3))
    ramp[10:, 1, 1] += 200                       # a real step in the centre pixel
    gdq = np.zeros((20, 3, 3), np.uint32)
    jump = flag_value("JUMP_DET")
    gdq[10, 1, 1] = jump
    gdq[10, 0, 1] = gdq[10, 2, 1] = gdq[10, 1, 0] = gdq[10, 1, 2] = jump   # neighbour echoes
    real = bd.real_jumps(ramp, gdq)
    # at the jump's group only the pixel that stepped counts, not its echoes
    assert real[10, 1, 1] and real[10].sum() == 1
    whole, late = bd.ramp_slopes(np.cumsum(np.ones((20, 1, 1)), axis=0))
    assert whole[0, 0] == pytest.approx(1.0) and late[0, 0] == pytest.approx(1.0)


def test_shot_noise_of_a_saturating_hot_pixel_is_not_steps():
    """The noise of a hot pixel's rising groups, not of its flat plateau, judges its steps.

    Found in the demo: a 33000 e-/s pixel saturating at group 10 of 30 was
    called RC because its plateau differences (a few DN) set the noise against
    which the shot noise of its rise (~50 DN) looked like early jumps.
    """
    rng = np.random.default_rng(3)
    ngroups, nsat = 30, 10
    rise = np.cumsum(rng.normal(4600, 48, (nsat, 4, 4)), axis=0)
    plateau = rise[-1] + rng.normal(0, 6, (ngroups - nsat, 4, 4))
    ramp = np.concatenate([rise, plateau])
    gdq = np.zeros(ramp.shape, np.uint32)
    gdq[nsat:] = flag_value("SATURATED")
    assert not bd.real_jumps(ramp, gdq).any()
    _, sigma = bd._difference_noise(ramp, gdq)
    assert 30 < np.median(sigma) < 70


# plain numpy formulations of the two per-pixel ramp kernels, to compare with

def _numpy_difference_noise(ramp, skip):
    d = np.diff(np.asarray(ramp, dtype=np.float64), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        quiet = np.where(skip[1:], np.nan, d)
        med = np.nanmedian(quiet, axis=0)
        sigma = MAD_TO_SIGMA * np.nanmedian(np.abs(quiet - med), axis=0)
    lost = ~np.isfinite(med)
    med[lost] = np.median(d[:, lost], axis=0)
    sigma[lost] = MAD_TO_SIGMA * np.median(np.abs(d[:, lost] - med[lost]), axis=0)
    return med, sigma


def _numpy_real_jumps(ramp, gdq, nsigma, step_nsigma, sigma=None):
    from scipy.ndimage import median_filter
    flagged = (gdq & flag_value("JUMP_DET")) > 0
    saturated = (gdq & flag_value("SATURATED")) > 0
    d = np.diff(np.asarray(ramp, dtype=np.float64), axis=0)
    med, own = _numpy_difference_noise(ramp, flagged | saturated)
    sigma = np.maximum(own if sigma is None else sigma, 1e-6)
    local = median_filter(d, size=(5,) + (1,) * (d.ndim - 1), mode="nearest")
    step = np.abs(d - local) / sigma > step_nsigma
    near_sat = np.zeros_like(saturated)
    for k in range(4):
        near_sat[: saturated.shape[0] - k] |= saturated[k:]
    out = np.zeros_like(flagged)
    out[1:] = (flagged[1:] & (np.abs(d - med) / sigma > nsigma)) | (step & ~near_sat[1:])
    return out


# 25 / 26 groups: the last with the tile path (24 differences sorted by a
# network), the first without
@pytest.mark.parametrize("ngroups", [3, 4, 5, 7, 25, 26, 30])
def test_ramp_kernels_equal_their_numpy_formulation(ngroups):
    rng = np.random.default_rng(ngroups)
    ramp = np.cumsum(rng.normal(3, 6, (ngroups, 40, 50)), axis=0).astype(np.float32)
    steps = rng.random(ramp.shape) < 0.03
    ramp += np.cumsum(steps * rng.uniform(20, 400, ramp.shape), axis=0).astype(np.float32)
    gdq = np.zeros(ramp.shape, np.uint32)
    gdq[steps] |= flag_value("JUMP_DET")
    gdq[rng.random(ramp.shape) < 0.03] |= flag_value("JUMP_DET")        # neighbour echoes
    sat = np.zeros(ramp.shape, bool)
    sat[-max(1, ngroups // 3):, :5] = True                             # saturating pixels
    gdq[sat] |= flag_value("SATURATED")
    gdq[:, 6, :] |= flag_value("JUMP_DET")                             # every difference flagged
    skip = (gdq & flag_value(["JUMP_DET", "SATURATED"])) > 0
    for got, want in zip(bd._difference_noise(ramp, gdq), _numpy_difference_noise(ramp, skip)):
        np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    t = np.arange(ngroups, dtype=float)[:, None, None]
    for part, got in zip((ramp, ramp[ngroups // 2:] if ngroups - ngroups // 2 >= 2 else ramp),
                         bd.ramp_slopes(ramp)):
        tp = t[:part.shape[0]] - t[:part.shape[0]].mean()
        want = (tp * (part - part.mean(axis=0, dtype=float))).sum(axis=0) / (tp ** 2).sum()
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    for sigma in (None, np.full((40, 50), 6.0)):
        got = bd.real_jumps(ramp, gdq, 5.0, 4.0, sigma=sigma)
        want = _numpy_real_jumps(ramp, gdq, 5.0, 4.0, sigma=sigma)
        np.testing.assert_array_equal(got, want)
        assert got[1:].any() and not got[0].any()
    # two groups: no noise to judge by, jwst's flags as they are
    two = bd.real_jumps(ramp[:2], gdq[:2])
    np.testing.assert_array_equal(two, (gdq[:2] & flag_value("JUMP_DET")) > 0)


def _many_jumps(jump_map, max_jump_limit=10, jump_ratio_threshold=5, early_cutoff_fraction=0.25):
    """The search's many-jumps rule in numpy (what the compiled pass does): 0/1 maps (high_jumps, potential_rc): more than
    ``max_jump_limit`` jumps; of those, an early jump rate (the first
    ``early_cutoff_fraction``, at least one group) more than ``jump_ratio_threshold``
    times the rate in the rest of the ramp."""
    jumps = np.asarray(jump_map) > 0
    ngroups = jumps.shape[0]
    n_early = bd._early_groups(ngroups, early_cutoff_fraction)
    total = jumps.sum(axis=0)
    early = jumps[:n_early].sum(axis=0)
    late = total - early
    high = total > max_jump_limit
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (early / n_early) / (late / max(1, ngroups - n_early))
    potential_rc = high & ((late == 0) & (early > 0) | (ratio > jump_ratio_threshold))
    return high.astype(np.uint8), potential_rc.astype(np.uint8)


def _composed_integration(ramp, gdq, slope, pedestal, noise, ref, acc, high_file, rc_ints,
                          threshold, max_jump_limit, ratio, early):
    """One integration added to the accumulators by the public functions, step
    by step (the formulation the compiled pass replaced)."""
    sat_bit = flag_value("SATURATED")
    jumps = bd.real_jumps(ramp, gdq, sigma=noise)
    njump = jumps.sum(axis=0)
    saturated = (gdq & sat_bit) > 0
    g1 = min(1, saturated.shape[0] - 1)
    med, mad = bd.robust_stats(ramp[g1])
    last_med, last_sig = bd.robust_stats(ramp[-1])
    bright = ramp[-1] > last_med + 20 * max(last_sig, 1.0) + 1000
    early_sat = saturated.any(axis=0) & ((~saturated).sum(axis=0) < 3) & bright
    acc["sat_count"] += (saturated[g1] & (ramp[g1] > med + 20 * max(mad, 1.0))) | early_sat
    acc["bright_count"] += bright
    unsat_ok = (~saturated).sum(axis=0) >= 3
    never_sat = ~saturated.any(axis=0)
    dev = bd.pedestal_deviation(pedestal, mask=ref)
    hi = never_sat & (dev > threshold)
    acc["ped_high_n"] += hi
    acc["ped_normal_n"] += never_sat & (np.abs(dev) < 3.0)
    acc["ped_n"] += never_sat
    acc["ped_high_sum"][hi] += dev[hi]
    acc["ped_high_sq"][hi] += dev[hi] ** 2
    high, prc = _many_jumps(jumps, max_jump_limit, ratio, early)
    high_file |= high.astype(bool)
    rc_ints += prc.astype(bool)
    clean, iclean = bd.slopes_not_cr(slope, njump)
    good = iclean.astype(bool) & unsat_ok & np.isfinite(clean)
    acc["s_sum"][good] += clean[good]
    acc["s_sq"][good] += clean[good] ** 2
    acc["n_clean"] += good
    curv = good & never_sat
    whole, late = bd.ramp_slopes(ramp)
    acc["whole_sum"][curv] += whole[curv]
    acc["late_sum"][curv] += late[curv]
    acc["diff_sq"][curv] += (whole - late)[curv] ** 2
    acc["n_curv"] += curv


def _integration_inputs(ngroups, seed):
    rng = np.random.default_rng(seed)
    shape = (40, 50)
    ramp = np.cumsum(rng.normal(3, 6, (ngroups, *shape)), axis=0).astype(np.float32)
    steps = rng.random(ramp.shape) < 0.15
    steps[0] = False
    ramp += np.cumsum(steps * rng.uniform(20, 400, ramp.shape), axis=0).astype(np.float32)
    ramp[:, 20:23, 20:23] += 1e5                                    # saturated and bright
    gdq = np.zeros(ramp.shape, np.uint8)
    gdq[steps] |= flag_value("JUMP_DET")
    gdq[rng.random(ramp.shape) < 0.03] |= flag_value("JUMP_DET")
    gdq[:, 20:23, 20:24] |= flag_value("SATURATED")
    gdq[-1:, :5] |= flag_value("SATURATED")
    slope = rng.normal(0.01, 0.002, shape)
    slope[3, 3] = np.nan
    pedestal = rng.normal(10, 2, shape).astype(np.float32)
    pedestal[::7, ::9] += 30
    pedestal[5, 5] = np.nan
    ref = np.zeros(shape, bool)
    ref[:, :4] = True
    return ramp, gdq, slope, pedestal, ref


@pytest.mark.parametrize("ngroups", [2, 3, 4, 5, 7, 30])
@pytest.mark.parametrize("with_noise", [False, True])
def test_compiled_integration_pass_equals_the_public_functions_composed(ngroups, with_noise):
    ramp, gdq, slope, pedestal, ref = _integration_inputs(ngroups, ngroups)
    noise = np.full(slope.shape, 5.0) if with_noise else None
    params = (5, 0, 2.0, 0.5)       # threshold, max_jump_limit, ratio, early fraction
    results = []
    for add in (bd._integration_pass, _composed_integration):
        acc = {k: np.zeros(slope.shape, np.int32 if k in bd._COUNTS else float)
               for k in bd._ACCUMULATORS}
        high_file = np.zeros(slope.shape, bool)
        rc_ints = np.zeros(slope.shape, np.int32)
        for _ in range(2):          # accumulates
            add(ramp, gdq, slope, pedestal, noise, ref, acc, high_file, rc_ints, *params)
        results.append({**acc, "high_file": high_file, "rc_ints": rc_ints})
    got, want = results
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-12, equal_nan=True,
                                   err_msg=k)
    # the cases are exercised (a slope needs 3 unsaturated groups)
    for k in ("sat_count", "bright_count", "ped_high_n") + (
            ("n_clean", "n_curv", "high_file", "rc_ints") if ngroups >= 3 else ()):
        assert want[k].any(), k


def test_switching_pedestal_is_telegraph_not_reset_decay_or_cosmic_rays():
    rng = np.random.default_rng(5)
    nints = 24
    dev = rng.normal(0, 1, (nints, 4))                 # pedestal / its noise, 4 pixels
    state = rng.random(nints) < 0.5
    dev[state, 0] += 9.0                               # telegraph: two levels
    dev[:, 1] += 12.0                                  # reset decay: high every time
    dev[[3, 17], 2] += [40.0, 130.0]                   # two cosmic rays before the 1st read
    hi = dev > 5
    n_high, n_normal = hi.sum(0), (np.abs(dev) < 3).sum(0)
    s = np.where(hi, dev, 0).sum(0)
    sq = np.where(hi, dev ** 2, 0).sum(0)
    assert bd.switching_pedestal(n_high, n_normal, s, sq).tolist() == [True, False, False, False]
    # a detector image in units of its clipped noise
    image = rng.normal(100, 4, (50, 50))
    image[10, 10] = 160
    dev = bd.pedestal_deviation(image)
    assert dev[10, 10] == pytest.approx(15, rel=0.1) and abs(np.median(dev)) < 0.1


def test_pedestal_is_judged_against_the_level_expected_for_the_dark_rate():
    """Found in the demo (100 integrations): dead pixels, with no dark current, were RC.

    A ramp fit's pedestal falls with the dark rate; averaged over many
    integrations a pixel with none stands out above the detector's pedestal.
    """
    rng = np.random.default_rng(9)
    rate = rng.normal(10.0, 1.0, (60, 60))
    rate[5, 5] = 0.0                                   # dead
    rate[7, 7] = 5000.0                                # hot: outside the fit
    ped = -0.7 * rate - 0.7 + rng.normal(0, 0.3, rate.shape)
    ped[20, 20] += 10.0                                # reset decay
    raw_high, _ = bd._pedestal_outliers(ped, 5)
    assert raw_high[5, 5]                              # the symptom
    res = bd.pedestal_residual(ped, rate)
    high, low = bd._pedestal_outliers(res, 5)
    assert not high[5, 5] and high[20, 20] and abs(res[5, 5]) < 1.5
    # nothing else among the ordinary pixels (a hot pixel's pedestal, far off
    # the fitted range, is not judged: find_bad_pix calls it HOT)
    others = np.ones(rate.shape, bool)
    others[[5, 7, 20], [5, 7, 20]] = False
    assert not high[others].any() and not low[others].any()


def test_missing_products_are_named(darks, tmp_path):
    sim, rates, jumps, fitopt, tmp = darks
    lone = tmp_path / "x_rate.fits"
    lone.write_bytes(open(rates[0], "rb").read())
    with pytest.raises(FileNotFoundError, match="x_jump.fits"):
        bd.find_bad_pix([str(lone)])


def test_saved_mask_from_darks(darks, tmp_path):
    out = tmp_path / "darks_bpm.fits"
    dq = run(darks, hot_threshold=0.7, max_jump_limit=1, outfile=out)
    from stdatamodels.jwst import datamodels as dm
    with dm.MaskModel(str(out)) as m:
        m.validate()
        assert m.meta.description == "Bad pixels from darks" and m.meta.subarray.name == "SUB320"
        ref = (m.dq & flag_value("REFERENCE_PIXEL")) > 0
        assert ref.sum() == darks[0].truth.refpix[:N, :N].sum()
        np.testing.assert_array_equal(m.dq[~ref], dq[~ref])


def test_register_medians_equal_numpy():
    """The running median's five-value min/max formula and the four-difference
    median/MAD: every input of 4 levels (ties everywhere) and random ones."""
    import itertools

    from jwst_reffiles.dark_current._rampkernel import _median5, _median_mad4
    rng = np.random.default_rng(9)
    cases = [np.array(c, float) for c in itertools.product(range(4), repeat=5)]
    cases += list(rng.normal(size=(3000, 5)))
    for v in cases:
        assert _median5(*v) == np.median(v)
        med, sig = _median_mad4(*v[:4])
        assert med == np.median(v[:4])
        assert sig == pytest.approx(MAD_TO_SIGMA * np.median(np.abs(v[:4] - med)), rel=1e-15)
    assert np.isnan(_median5(1.0, np.nan, 2.0, 3.0, 4.0))


def test_read_slope_and_pedestal_data_strip_reference_pixels(tmp_path):
    """refpix = (left, right, bottom, top) outer columns/rows stripped (the
    documented API); the file's float32 kept, in native byte order."""
    from astropy.io import fits
    rng = np.random.default_rng(2)
    rate = rng.normal(size=(6, 8)).astype(np.float32)
    ped = rng.normal(size=(2, 6, 8)).astype(np.float32)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(rate, name="SCI")]).writeto(
        tmp_path / "x_rate.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(ped, name="PEDESTAL")]).writeto(
        tmp_path / "x_fitopt.fits")
    s = bd.read_slope_data(tmp_path / "x_rate.fits", (1, 2, 1, 0))
    p = bd.read_pedestal_data(tmp_path / "x_fitopt.fits", (1, 2, 1, 0))
    assert s.shape == (1, 5, 5) and p.shape == (2, 5, 5)
    assert s.dtype == np.float32 and s.dtype.isnative and p.dtype.isnative
    np.testing.assert_array_equal(s[0], rate[1:, 1:6])
    np.testing.assert_array_equal(p, ped[:, 1:, 1:6])
    np.testing.assert_array_equal(bd.read_slope_data(tmp_path / "x_rate.fits")[0], rate)

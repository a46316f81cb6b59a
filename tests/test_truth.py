import numpy as np
import pytest

from jwst_reffiles.simulate import DEFECT_CLASSES, make_truth
from jwst_reffiles.simulate.truth import MAX_DEFICIT


def test_truth_is_deterministic_in_the_seed():
    a = make_truth("NRCA3", seed=1)
    b = make_truth("NRCA3", seed=1)
    c = make_truth("NRCA3", seed=2)
    for name in a.MAPS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.bias, c.bias)
    assert list(a.defects["x"]) == list(b.defects["x"])


def test_defect_counts_follow_the_requested_fractions(nrca1_truth):
    t = nrca1_truth
    nsci = int((~t.refpix).sum())
    d = t.defects
    for cls, frac in t.parameters.fractions.items():
        assert (d["defect"] == cls).sum() == round(frac * nsci), cls
    # the 3x3 box around each OPEN pixel (the predecessor's ADJ_OPEN convention),
    # less the diagonal neighbours that are defects of their own
    n_open, n_adj = (d["defect"] == "OPEN").sum(), (d["defect"] == "ADJ_OPEN").sum()
    assert 7.5 * n_open <= n_adj <= 8 * n_open
    # one class per pixel, never on reference pixels
    assert len(set(zip(d["y"], d["x"]))) == len(d)
    assert not t.refpix[d["y"], d["x"]].any()
    assert set(d["defect"]) == set(DEFECT_CLASSES)


def test_defect_properties(nrca1_truth):
    t = nrca1_truth
    d = t.defects

    def at(cls, name):
        sel = d["defect"] == cls
        return getattr(t, name)[d["y"][sel], d["x"][sel]]

    assert (at("DEAD", "qe") < 0.04).all() and (at("DEAD", "dark_current") == 0).all()
    assert ((at("LOW_QE", "qe") >= 0.2) & (at("LOW_QE", "qe") <= 0.45)).all()
    # OPEN side neighbours collect the charge: more than 5 % above normal; the
    # diagonal ones (ADJ_OPEN by the flagging convention) respond normally
    resp = t.photo_response
    n_open, n_adj = (d["defect"] == "OPEN").sum(), (d["defect"] == "ADJ_OPEN").sum()
    sel = (d["defect"] == "ADJ_OPEN") & (d["value"] > 1.0)
    assert sel.sum() == 4 * (d["defect"] == "OPEN").sum()
    assert (resp[d["y"][sel], d["x"][sel]] / t.qe[d["y"][sel], d["x"][sel]] > 1.05).all()
    diag = (d["defect"] == "ADJ_OPEN") & (d["value"] == 1.0)
    assert diag.sum() == n_adj - 4 * n_open      # diagonal neighbours free of other defects
    np.testing.assert_allclose(resp[d["y"][diag], d["x"][diag]], t.qe[d["y"][diag], d["x"][diag]])
    # charge is conserved around each OPEN pixel: its 4 neighbours gain equal
    # shares, and those shares plus what it keeps make a normal pixel's QE
    sel = np.flatnonzero(d["defect"] == "OPEN")
    for i in sel:
        y, x = d["y"][i], d["x"][i]
        gained = [resp[p] - t.qe[p] for p in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1))]
        assert np.ptp(gained) < 1e-5 and min(gained) > 0.1
        assert 0.85 < t.qe[y, x] + sum(gained) < 1.15
    assert (at("HOT", "dark_current") >= 2.0).all()
    assert ((at("WARM", "dark_current") >= 0.1) & (at("WARM", "dark_current") <= 1)).all()
    assert (at("RC", "rc_amplitude") > 0).all()
    assert (at("TELEGRAPH", "telegraph_amplitude") > 0).all()
    assert (at("LOW_PED", "low_pedestal") < -99).all()
    # good pixels carry none of the defect signatures
    good = np.ones(t.geometry.shape, bool)
    good[d["y"], d["x"]] = False
    good &= ~t.refpix
    assert (t.rc_amplitude[good] == 0).all() and (t.low_pedestal[good] == 0).all()
    assert t.dark_current[good].max() < 0.1


def test_reference_pixels_see_no_light_and_no_dark(nrca1_truth):
    t = nrca1_truth
    assert (t.photo_response[t.refpix] == 0).all()
    assert (t.dark_current[t.refpix] == 0).all()


def test_population_statistics(nrca1_truth):
    t = nrca1_truth
    sci = ~t.refpix
    par = t.parameters
    assert np.median(t.read_noise[sci]) == pytest.approx(par.read_noise_mean, rel=0.02)
    assert np.median(t.gain[sci]) == pytest.approx(par.gain_mean, rel=0.03)
    assert np.median(t.qe[sci]) == pytest.approx(1.0, abs=0.02)
    sat_signal = (t.saturation - t.bias)[sci]
    assert np.median(sat_signal) == pytest.approx(par.saturation_signal_mean, rel=0.01)
    assert t.saturation.max() < 65535


def test_linearity_coefficients_invert_the_nonlinearity_to_saturation(nrca1_truth):
    t = nrca1_truth
    ys, xs = slice(100, 140), slice(200, 240)
    alpha = t.nonlin_alpha[ys, xs]
    sat_signal = (t.saturation - t.bias)[ys, xs]
    coeffs = t.linearity_coefficients()[:, ys, xs].astype(np.float64)
    assert np.all(coeffs[0] == 0)
    for frac in (0.05, 0.3, 0.6, 0.9, 1.0):
        m = frac * sat_signal
        L_true = (1 - np.sqrt(1 - 4 * alpha * m)) / (2 * alpha)
        L = sum(coeffs[k] * m ** k for k in range(coeffs.shape[0]))
        assert np.abs(L / L_true - 1).max() < 1e-4, frac


def test_nonlinearity_deficit_at_saturation_is_bounded(nrca1_truth):
    t = nrca1_truth
    m_sat = (t.saturation - t.bias)[~t.refpix]
    alpha = t.nonlin_alpha[~t.refpix]
    u = alpha * m_sat
    d = (1 - np.sqrt(1 - 4 * u)) / 2          # = alpha * L_sat = deficit
    assert d.max() <= MAX_DEFICIT + 1e-6
    assert np.median(d) == pytest.approx(t.parameters.nonlin_deficit_mean, abs=0.005)


def test_unknown_truth_parameters_are_rejected():
    from jwst_reffiles.simulate import default_parameters
    with pytest.raises(ValueError, match="read_nois"):
        default_parameters("NIRCAM").with_overrides(read_nois=3)
    with pytest.raises(ValueError, match="BROKEN"):
        default_parameters("NIRCAM").with_overrides(fractions={"BROKEN": 0.1})


def test_miri_truth():
    t = make_truth("MIRIMAGE", seed=3)
    assert t.bias.shape == (1024, 1032)
    assert np.median(t.gain[~t.refpix]) == pytest.approx(5.5, rel=0.03)

"""IPC: the simulator's coupling, the kernel on arrays, and the ipc reference type
through mkrefs on simulated data with 2 % coupling.

Targets (issue 24): alpha recovered within +-0.001 of the injected coupling; the
gain's IPC-corrected value within 1 % of the truth.
"""

import numpy as np
import pytest
from astropy.io import fits
from scipy.ndimage import convolve
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles import cli
from jwst_reffiles.consistency import ipc_convention
from jwst_reffiles.gain.photon_transfer import box_noise
from jwst_reffiles.ipc import (coupling_kernel, deconvolution_kernel, fit_kernel, header_cards,
                               hot_pixel_couplings, hot_pixel_stamps, kernel_ratios, lag_ratios,
                               variance_factor)
from jwst_reffiles.simulate import default_parameters, make_truth, simulate_dataset
from jwst_reffiles.simulate.detectors import get_subarray, get_readout_pattern
from jwst_reffiles.simulate.ramps import simulate_ramps

ALPHA = 0.02


def test_fit_recovers_a_kernel_from_its_own_ratios():
    k = coupling_kernel(0.02, 0.015, 0.002)
    fit = fit_kernel(kernel_ratios(k))
    assert (fit["alpha_x"], fit["alpha_y"], fit["alpha_d"]) == pytest.approx(
        (0.02, 0.015, 0.002), abs=1e-9)
    assert variance_factor(coupling_kernel(0.02, 0.02)) == pytest.approx(
        1 / (0.92 ** 2 + 4 * 0.02 ** 2))


def test_deconvolution_kernel_undoes_the_coupling():
    k = coupling_kernel(ALPHA, ALPHA)
    d = deconvolution_kernel(k)
    cards = {c[0]: c[1] for c in header_cards(d)}     # the couplings it undoes
    assert (cards["IPCALPHX"], cards["IPCALPHY"]) == pytest.approx((ALPHA, ALPHA), abs=2e-4)
    assert abs(cards["IPCALPHD"]) < 2e-4
    assert d.sum() == pytest.approx(1.0) and d[1, 1] > 1 and d[0, 1] < 0
    x = np.random.default_rng(1).normal(size=(128, 128))
    back = convolve(convolve(x, k, mode="wrap"), d, mode="wrap")
    coupled = convolve(x, k, mode="wrap")
    # 3x3 truncation leaves a small residue: far less than the coupling did
    assert np.std(back - x) < 0.1 * np.std(coupled - x)


def test_lag_ratios_of_coupled_noise_less_read_noise():
    rng = np.random.default_rng(2)
    k = coupling_kernel(ALPHA, ALPHA)
    flats = [convolve(rng.normal(0, 40, (160, 160)), k, mode="nearest")
             + rng.normal(0, 8, (160, 160)) for _ in range(60)]
    darks = [rng.normal(0, 8, (160, 160)) for _ in range(60)]
    ratios, samples = lag_ratios(flats, darks, box=32)
    fit = fit_kernel(ratios)
    assert samples > 1e6
    assert fit["alpha_x"] == pytest.approx(ALPHA, abs=0.001)
    assert fit["alpha_y"] == pytest.approx(ALPHA, abs=0.001)
    assert abs(fit["alpha_d"]) < 0.001
    # without the dark pairs the read noise dilutes the correlation
    assert fit_kernel(lag_ratios(flats, None, box=32)[0])["alpha_x"] < ALPHA - 0.0005


def test_box_noise_covariances_match_a_pair_by_pair_count():
    """The compiled lag sums against the definition: per box, the mean over the
    kept pairs (y, x)-(y+dy, x+dx) with (y, x) in the box of the product of
    their deviations (each from its own box's mean), plus var/n."""
    rng = np.random.default_rng(7)
    diff = rng.normal(0.0, 5.0, (45, 38))
    diff[rng.random(diff.shape) < 0.05] = np.nan
    diff[10, 10] = 500.0                                  # clipped
    box = 16
    var, n, kept, cov = box_noise(diff, box, 5.0, 5, covariances=True, per_lag=True)
    ny, nx = diff.shape

    def dev(y, x):
        ys, xs = slice(y // box * box, y // box * box + box), slice(x // box * box,
                                                                    x // box * box + box)
        return diff[y, x] - diff[ys, xs][kept[ys, xs]].mean()
    for (dy, dx), got in cov.items():
        want = np.full(got.shape, np.nan)
        for by, bx in np.ndindex(got.shape):
            prods = [dev(y, x) * dev(y + dy, x + dx)
                     for y in range(by * box, min((by + 1) * box, ny))
                     for x in range(bx * box, min((bx + 1) * box, nx))
                     if 0 <= y + dy < ny and 0 <= x + dx < nx and kept[y, x]
                     and kept[y + dy, x + dx]]
            if prods:
                want[by, bx] = np.mean(prods) + var[by, bx] / n[by, bx]
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10, equal_nan=True)
    total = box_noise(diff, box, 5.0, 5, covariances=True)[3]
    np.testing.assert_allclose(total, 2.0 * sum(cov.values()), rtol=1e-12)


def test_simulator_couples_the_signal_only():
    par = default_parameters("NIRCAM").with_overrides(
        ipc_alpha=ALPHA, refpix_drift_sigma=0.0, refpix_even_odd_sigma=0.0,
        fractions={k: 0.0 for k in ("DEAD", "LOW_QE", "OPEN", "HOT", "WARM", "RC",
                                    "TELEGRAPH", "LOW_PED")})
    truth = make_truth("NRCA1", seed=3, parameters=par)
    assert truth.ipc_kernel.sum() == pytest.approx(1.0)
    assert truth.ipc_kernel[0, 1] == ALPHA and truth.ipc_kernel[0, 0] == 0
    sub, pat = get_subarray("NIRCAM", "SUB160"), get_readout_pattern("RAPID")
    rng = np.random.default_rng(4)
    ramps = simulate_ramps(truth, sub, pat, ngroups=2, nints=40, tframe=1.0, flux=5000.0,
                           rng=rng, cosmic_rays=False).data.astype(float)
    diff = ramps[:, 1] - ramps[:, 0]
    diff = diff - diff.mean(axis=0)
    inner = diff[:, 8:-8, 8:-8]
    c0 = np.mean(inner * inner)
    c1 = np.mean(inner[:, :, 1:] * inner[:, :, :-1])
    # the shot noise dominates: the neighbour correlation is the kernel's
    expected = kernel_ratios(truth.ipc_kernel, [(0, 1)])[0]
    assert c1 / c0 == pytest.approx(expected, abs=0.01)


def _hot_darks(alpha, alpha_d, seed):
    """Simulated SUB160 dark ramps (NaN at reference pixels and where saturated) of a
    detector with 2 % of hot pixels and the given coupling."""
    par = default_parameters("NIRCAM").with_overrides(
        ipc_alpha=alpha, ipc_alpha_diagonal=alpha_d, refpix_drift_sigma=0.0,
        refpix_even_odd_sigma=0.0, fractions={"HOT": 0.02})
    truth = make_truth("NRCA1", seed=seed, parameters=par)
    sub, pat = get_subarray("NIRCAM", "SUB160"), get_readout_pattern("RAPID")
    ramps = simulate_ramps(truth, sub, pat, ngroups=20, nints=4, tframe=1.0, flux=0.0,
                           rng=np.random.default_rng(seed)).data.astype(float)
    sl = (slice(0, 160), slice(0, 160))
    ramps[ramps >= 0.97 * truth.saturation[sl]] = np.nan
    ramps[:, :, truth.refpix[sl]] = np.nan
    return ramps, truth


def test_hot_pixels_neighbour_ratios_recover_the_coupling():
    ramps, _ = _hot_darks(ALPHA, 0.002, seed=8)
    stamps = np.concatenate([hot_pixel_stamps(r) for r in ramps])
    assert len(stamps) > 200                 # hundreds of isolated hot pixel samples
    assert np.all((stamps[:, 0] >= 500) & (stamps[:, 0] <= 3000))
    hot = hot_pixel_couplings(stamps)
    assert hot["alpha_x"] == pytest.approx(ALPHA, abs=0.001)
    assert hot["alpha_y"] == pytest.approx(ALPHA, abs=0.001)
    assert hot["alpha_d"] == pytest.approx(0.002, abs=0.001)
    assert hot["alpha_x_err"] < 0.0005
    # an uncoupled detector's hot pixels give none
    flat_ramps, _ = _hot_darks(0.0, 0.0, seed=8)
    none = hot_pixel_couplings(np.concatenate([hot_pixel_stamps(r) for r in flat_ramps]))
    assert abs(none["alpha_x"]) < 0.001 and abs(none["alpha_y"]) < 0.001


def test_hot_pixel_stamps_skip_crowded_and_border_pixels():
    r = np.zeros((3, 20, 20))
    r[1:, 10, 10] = [800.0, 1600.0]
    r[1:, 10, 11] = [16.0, 32.0]                 # its x neighbour: 2 % of it
    r[1:, 4, 4], r[1:, 4, 6] = 2000.0, 1000.0    # two hot pixels 2 apart: not isolated
    r[1:, 1, 15] = 2000.0                        # on the border: no ring
    st = hot_pixel_stamps(r)
    assert st.shape == (1, 4)
    assert st[0, 0] == pytest.approx(1600.0) and st[0, 1] == pytest.approx(16.0)
    with pytest.raises(ValueError, match="too few"):
        hot_pixel_couplings(st)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ipc")
    par = default_parameters("NIRCAM").with_overrides(ipc_alpha=ALPHA)
    darks = simulate_dataset(tmp / "sim", subarray="SUB160", ngroups=30, nints=2, ndarks=2,
                             nflats=4, flat_flux=[10000.0], seed=17, truth_parameters=par)
    cfg = tmp / "main.cfg"
    cfg.write_text(f"""
output: {{outrootdir: {tmp / 'out'}, runID: 1}}
reffile4ssb: {{default: '{darks.outdir / 'reffiles'}/*.fits'}}
DD: {{max_Delta_MJD: 10.0}}
FF: {{max_Delta_MJD: 10.0}}
gain_armin: {{ipc_correction: true}}
""")
    rc = cli.main(["--cfgfile", str(cfg), "ipc,gain_armin", str(darks.outdir / "*_uncal.fits")])
    return rc, darks, tmp / "out" / "001"


def test_ipc_reference_file_recovers_alpha(run):
    rc, sim, rundir = run
    assert rc == 0
    path = rundir / "final" / "ipc_001.ipc.fits"
    with dm.IPCModel(str(path)) as m:
        m.validate()
        kernel = np.asarray(m.data)
    hdr = fits.getheader(path)
    assert hdr["IPCALPHX"] == pytest.approx(ALPHA, abs=0.001)
    assert hdr["IPCALPHY"] == pytest.approx(ALPHA, abs=0.001)
    assert abs(hdr["IPCALPHD"]) < 0.001
    truth_kernel = deconvolution_kernel(sim.truth.ipc_kernel)
    assert np.abs(kernel - truth_kernel).max() < 0.003
    # the run's accuracy figures against the injected coupling
    import json
    entries = json.loads((rundir / "validation" / "validation.json").read_text())["files"]
    acc = [e for e in entries if e["reftype"] == "ipc"][0]["accuracy"]
    assert len(acc) == 3 and all(r["ok"] for r in acc), acc
    # the darks' hot pixels (SUB160, 2 darks: a few dozen) give the coupling too, less precisely
    assert hdr["IPCHOTN"] >= 3
    assert hdr["IPCHOTX"] == pytest.approx(ALPHA, abs=0.005)
    # the simulator's truth file holds the same convention
    with dm.IPCModel(str(sim.outdir / "reffiles" / "jwst_reffiles_sim_nrca1_ipc.fits")) as t:
        assert np.allclose(t.data, truth_kernel, atol=1e-6)


def test_ipc_corrected_gain_within_1_percent(run):
    rc, sim, rundir = run
    path = rundir / "final" / "gain_armin_001.gain.fits"
    with dm.GainModel(str(path)) as g:
        gain = np.asarray(g.data)
    good = ~sim.truth.refpix[:160, :160]
    ratio = np.median(gain[good] / sim.truth.gain[:160, :160][good])
    assert ratio == pytest.approx(1.0, abs=0.01)
    hdr = fits.getheader(path)
    assert hdr["IPCCORR"] is True
    # the run's gain and IPC files agree on the convention
    assert ipc_convention(dict(hdr), dict(fits.getheader(rundir / "final" / "ipc_001.ipc.fits"))) \
        is None


def test_uncorrected_gain_is_an_ipc_convention_violation():
    ipc = {"IPCALPHX": ALPHA, "IPCALPHY": ALPHA, "IPCALPHD": 0.0}
    assert "not corrected" in ipc_convention({"IPCCORR": False}, ipc)
    assert "differs" in ipc_convention({"IPCCORR": True, "IPCFACTR": 1.0}, ipc)
    assert ipc_convention({"IPCCORR": True, "IPCFACTR": variance_factor(
        coupling_kernel(ALPHA, ALPHA))}, ipc) is None
    assert "IPCCORR" in ipc_convention({}, ipc)
    # a kernel measured on little data: within 3 standard errors is no violation
    assert ipc_convention({"IPCCORR": False}, {**ipc, "IPCFERR": 0.07}) is None

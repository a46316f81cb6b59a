"""Dark reference files from pipeline products recover the injected dark current."""

import textwrap

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles.config import load_config
from jwst_reffiles.dark_current.dark_reffile import Dark, _count_quantiles, first_hit_mask
from jwst_reffiles.dq import flag_value
from jwst_reffiles.simulate import default_parameters, simulate_dataset
from jwst_reffiles.simulate.ramps import frame_read_times
from jwst_reffiles.simulate.detectors import get_readout_pattern
from jwst_reffiles.stage1 import calibrate_inputs, organise_inputs

NIR_NO_DARK = "dq_init, saturation, superbias, refpix, linearity, jump"


@pytest.fixture(scope="module")
def jump_products(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dark")
    par = default_parameters("NIRCAM").with_overrides(
        dark_current_mean=60.0, dark_current_sigma=10.0, cosmic_ray_flux=50.0)
    sim = simulate_dataset(tmp / "sim", subarray="SUB160", ngroups=10, nints=2, ndarks=4,
                           nflats=0, seed=12, truth_parameters=par)
    cfg = tmp / "main.cfg"
    cfg.write_text(textwrap.dedent(f"""
        reflabels: [dk]
        reftypes: [dark]
        output: {{outrootdir: {tmp / 'out'}, runID: 1}}
        reffile4ssb: {{default: '{sim.outdir / 'reffiles'}/*.fits'}}
        dk: {{reftype: dark, imtypes: D+, ssbsteps: '{NIR_NO_DARK}'}}
        """))
    s1 = organise_inputs(load_config(cfg), "dk", [str(p) for p in sim.files()])
    plan, outcomes = calibrate_inputs(s1, jobs=2)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    products = Table.read(s1.layout.rundir / "ssb_products.ecsv")
    return sim, [str(p) for p in products["product"]], tmp


@pytest.fixture(scope="module")
def dark(jump_products):
    sim, files, tmp = jump_products
    d = Dark(files, output_file=tmp / "ref" / "dark.fits", descrip="test dark",
             pedigree="GROUND", author="tester", use_after="2026-01-01T00:00:00")
    return d


def test_per_group_mean_is_injected_dark_current_times_time(jump_products, dark):
    sim, files, tmp = jump_products
    t = sim.truth
    sl = (slice(0, 160), slice(0, 160))
    good = ~t.refpix[sl]
    d = t.defects
    inside = (d["y"] < 160) & (d["x"] < 160)
    good[d["y"][inside], d["x"][inside]] = False
    rate = (t.dark_current / t.gain)[sl][good]                  # DN/s
    times = frame_read_times(get_readout_pattern("RAPID"), 10, sim.manifest["tframe"][0])[:, 0]
    for g in range(10):
        expected = rate.mean() * times[g]
        assert dark.dark[0, g][good].mean() == pytest.approx(expected, rel=0.02), g


def test_cosmic_ray_groups_are_left_out(jump_products, dark):
    sim, files, tmp = jump_products
    # 4 files x 2 integrations: 8 values per pixel and group unless a jump removed some
    assert dark.num_good.max() == 8
    # (counts are after clipping too, so per pixel they need not fall monotonically;
    # on average later groups have lost the values after each integration's first hit)
    means = dark.num_good[0].reshape(10, -1).mean(axis=1)
    assert means[-1] < means[0] and (dark.num_good[0, -1] < 8).sum() > 20
    # every recorded cosmic ray of the truth tables reduces the later counts
    from astropy.io import fits
    hits = 0
    for row in sim.manifest:
        crs = fits.getdata(sim.outdir / row["truth_file"], "CRS")
        big = crs[(crs["electrons"] > 2000) & (crs["group"] > 0)]
        for c in big[:30]:
            y, x, g = int(c["y"]), int(c["x"]), int(c["group"])
            if not sim.truth.refpix[y, x]:
                hits += 1
                assert dark.num_good[0, g, y, x] < 8
    assert hits > 10


def test_hot_pixels_get_their_dark(jump_products, dark):
    sim, files, tmp = jump_products
    t = sim.truth
    d = t.defects
    sel = (d["defect"] == "HOT") & (d["y"] < 160) & (d["x"] < 160)
    ys, xs = d["y"][sel], d["x"][sel]
    rate = (t.dark_current / t.gain)[ys, xs]
    tf = sim.manifest["tframe"][0]
    # hot pixels below saturation at the last group: dark = rate x time (nonlinearity aside)
    ok = rate * 10 * tf < 3000
    assert ok.sum() >= 3
    expected = rate[ok] * 10 * tf
    # 8 values per pixel: read noise and shot noise, 4 sigma; 3 % for the linearity residue
    sigma = np.sqrt(t.read_noise[ys[ok], xs[ok]] ** 2 + expected / t.gain[ys[ok], xs[ok]]) / np.sqrt(8)
    assert (np.abs(dark.dark[0, -1, ys[ok], xs[ok]] - expected) < 0.03 * expected + 4 * sigma).all()
    assert np.isfinite(dark.dark).all()


def test_reference_file(dark):
    with dm.DarkModel(str(dark.path)) as m:
        m.validate()
        assert m.data.shape == (10, 160, 160)
        assert (m.meta.exposure.nframes, m.meta.exposure.groupgap) == (1, 0)
        assert m.meta.description == "test dark"                  # DESCRIP is written
        assert m.meta.subarray.name == "SUB160" and m.meta.subarray.xsize == 160
    names = sorted(p.name for p in dark.path.parent.iterdir())
    assert names == ["dark.fits", "dark_num_good.fits", "good_signals_per_group.pdf"]


def test_small_memory_budget_and_subarrays_work(jump_products):
    """Predecessor defect: max_equivalent_groups scaled the wrong way (failed on subarrays)."""
    sim, files, tmp = jump_products
    a = Dark(files, output_file=tmp / "a" / "dark.fits", contribution_file=None)
    b = Dark(files, output_file=tmp / "b" / "dark.fits", max_equivalent_groups=0.01,
             contribution_file=None)
    np.testing.assert_array_equal(a.dark, b.dark)


def test_the_constructor_makes_the_file_as_the_predecessor_did(jump_products, tmp_path):
    """Users' scripts call Dark(...) alone (the predecessor's constructor made the file)."""
    sim, files, tmp = jump_products
    out = tmp_path / "now" / "dark.fits"
    d = Dark(files[:2], output_file=out, contribution_file=None)
    assert d.path == out and out.exists()
    later = Dark(files[:2], output_file=tmp_path / "later" / "dark.fits",
                 contribution_file=None, create=False)
    assert later.path is None and not (tmp_path / "later" / "dark.fits").exists()
    assert later.create_reffile() == tmp_path / "later" / "dark.fits"
    np.testing.assert_array_equal(later.dark, d.dark)


def test_dark_works_in_the_pipeline_dark_step(jump_products, dark, tmp_path):
    sim, files, tmp = jump_products
    from jwst.dark_current import DarkCurrentStep
    from jwst_reffiles.pipeline.offline import offline_crds
    with offline_crds(tmp_path / "crds"):
        result = DarkCurrentStep.call(files[0], override_dark=str(dark.path))
    assert result.meta.cal_step.dark_sub == "COMPLETE"
    resid = np.nanmedian(result.data[0, -1, 4:, 4:])
    assert abs(resid) < 3          # the dark signal (~800 DN at the end) is gone


def test_errors(jump_products, tmp_path):
    sim, files, tmp = jump_products
    with pytest.raises(ValueError, match="output_file"):
        Dark(files)
    with pytest.raises(FileNotFoundError, match="no cosmic-ray flags"):
        Dark([str(sim.files()[0])], output_file=tmp_path / "d.fits")


def test_first_hit_mask():
    gdq = np.zeros((1, 5, 1, 2), np.uint32)
    gdq[0, 2, 0, 0] = flag_value("JUMP_DET")
    gdq[0, 4, 0, 1] = flag_value("SATURATED")
    gdq[0, :, 0, 1] |= flag_value("DO_NOT_USE")          # from the bad pixel mask: kept
    m = first_hit_mask(gdq)
    assert list(m[0, :, 0, 0]) == [False, False, True, True, True]
    assert list(m[0, :, 0, 1]) == [False, False, False, False, True]


def test_contribution_plot_quantiles_are_numpys():
    """The plot's median and 1st percentile of the values-used counts come from a
    histogram: the same as np.median / np.percentile, odd and even sizes, ties."""
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 1000, 40001):
        for top in (1, 3, 41):
            counts = rng.integers(0, top, n).astype(np.int32)
            want = [np.median(counts), *np.percentile(counts, (1, 0, 100, 37.5))]
            got = _count_quantiles(counts, (50, 1, 0, 100, 37.5))
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def _miri_jump_file(path, nints, rng, jump, ngroups=6, shape=(64, 72)):
    """A MIRI jump-step-like product: SCI ramps of known slope, GROUPDQ (with a jump)."""
    t = np.arange(1, ngroups + 1, dtype=np.float32)[None, :, None, None]
    level = np.where(np.arange(nints)[:, None, None, None] == 0, 2.0, 1.0)   # first int: 2 DN/group
    sci = (level * t + rng.normal(0, 0.01, (nints, ngroups) + shape)).astype(np.float32)
    gdq = np.zeros(sci.shape, np.uint8)
    if jump:
        gdq[0, 3, 5, 5] = flag_value("JUMP_DET")
        sci[0, 3:, 5, 5] += 1000                               # a cosmic ray from group 3 on
    hdr = fits.Header({"INSTRUME": "MIRI", "DETECTOR": "MIRIMAGE", "SUBARRAY": "SUB64",
                       "SUBSTRT1": 1, "SUBSTRT2": 779, "SUBSIZE1": shape[1],
                       "SUBSIZE2": shape[0], "READPATT": "FAST", "NGROUPS": ngroups,
                       "NINTS": nints, "NFRAMES": 1, "GROUPGAP": 0})
    fits.HDUList([fits.PrimaryHDU(header=hdr), fits.ImageHDU(sci, name="SCI"),
                  fits.ImageHDU(gdq, name="GROUPDQ")]).writeto(path)
    return str(path)


def test_miri_darks_keep_the_first_integration_apart(tmp_path):
    """MIRI: the first integration and the rest make the two integrations of a
    DarkMIRIModel; files with different numbers of integrations all count."""
    rng = np.random.default_rng(4)
    files = [_miri_jump_file(tmp_path / f"d{k}_jump.fits", n, rng, jump=k == 0)
             for k, n in enumerate((3, 2, 1))]
    d = Dark(files, output_file=tmp_path / "out" / "dark.fits", contribution_file=None)
    assert d.dark.shape == (2, 6, 64, 72)
    np.testing.assert_allclose(d.dark[0, :, 20, 20], 2.0 * np.arange(1, 7), atol=0.05)
    np.testing.assert_allclose(d.dark[1, :, 20, 20], np.arange(1, 7), atol=0.05)
    # first integrations: 3 files; the rest: 2 + 1 + 0
    assert (d.num_good[0, :, 20, 20] == 3).all() and (d.num_good[1, :, 20, 20] == 3).all()
    # the cosmic ray leaves its integration out from its group on
    assert d.num_good[0, :3, 5, 5].tolist() == [3, 3, 3] and (d.num_good[0, 3:, 5, 5] == 2).all()
    model = dm.DarkMIRIModel(str(d.path))
    assert model.data.shape == (2, 6, 64, 72) and model.meta.instrument.detector == "MIRIMAGE"

"""Superbias reference files recover the injected bias and flag unreliable pixels."""

import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles.dq import flag_value
from jwst_reffiles.readnoise import readnoise as rn

from conftest import drift_free_darks
from jwst_reffiles.superbias import superbias as sb

SL = (slice(0, 160), slice(0, 160))


@pytest.fixture(scope="module")
def darks(tmp_path_factory):
    # 6 files x 20 integrations: 120 zero frames, as a superbias wants
    return drift_free_darks(tmp_path_factory.mktemp("sb"), ngroups=2, nints=20, ndarks=6,
                            seed=5)


@pytest.fixture(scope="module")
def made(darks, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "superbias.fits"
    bias = sb.make_superbias(darks.files(), outfile=out, plot=True, save_filled=True)
    with dm.SuperBiasModel(str(out)) as model:      # the error and DQ as saved
        err, dq = model.err.copy(), model.dq.copy()
    return out, bias, err, dq


def test_superbias_within_half_a_dn_of_the_truth(darks, made):
    out, bias, err, dq = made
    with dm.SuperBiasModel(str(darks.reffiles["superbias"])) as truth:
        expected = truth.data[SL]
    assert np.median(np.abs(bias - expected)) < 0.5
    # the error is the scatter of one zero frame: read noise (plus nothing else here)
    sci = ~darks.truth.refpix[SL] & (dq == 0)
    assert np.median(err[sci] / darks.truth.read_noise[SL][sci]) == pytest.approx(1.0, abs=0.05)


def test_unreliable_bias_pixels(darks, made):
    out, bias, err, dq = made
    d = darks.truth.defects
    inside = (d["y"] < 160) & (d["x"] < 160)
    flag = flag_value(["UNRELIABLE_BIAS", "DO_NOT_USE"])
    for cls in ("LOW_PED", "TELEGRAPH"):          # reset levels that wander between integrations
        sel = inside & (d["defect"] == cls)
        assert sel.sum() >= 5
        assert ((dq[d["y"][sel], d["x"][sel]] & flag) == flag).all(), cls
    good = np.ones(dq.shape, bool)
    good[d["y"][inside], d["x"][inside]] = False
    assert (dq[good] != 0).mean() < 1e-3


def test_reference_file_and_side_products(darks, made):
    out, bias, err, dq = made
    with dm.SuperBiasModel(str(out)) as m:
        m.validate()
        np.testing.assert_array_equal(m.dq, dq)
        assert m.meta.subarray.name == "SUB160" and m.meta.subarray.xsize == 160
        assert "UNRELIABLE_BIAS" in {n.decode() if isinstance(n, bytes) else n
                                     for n in m.dq_def["NAME"]}
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == ["superbias.fits", "superbias_filled.fits",
                     "superbias_unreliable_bias_hist.png"]


def test_refpix_map_from_pixeldq_or_from_the_layout(darks, tmp_path):
    ref = sb.make_refpix_map(darks.files()[0])             # uncal: no PIXELDQ
    np.testing.assert_array_equal(ref.astype(bool), darks.truth.refpix[SL])
    pixeldq = np.zeros((160, 160), np.uint32)
    pixeldq[5, 5] = flag_value("REFERENCE_PIXEL")
    path = tmp_path / "cal.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((1, 2, 160, 160), np.float32),
                                                   name="SCI"),
                  fits.ImageHDU(pixeldq, name="PIXELDQ")]).writeto(path)
    assert sb.make_refpix_map(path).sum() == 1


def test_filled_superbias_replaces_only_high_science_pixels():
    rng = np.random.default_rng(1)
    image = rng.normal(12000, 20, (50, 50))
    image[20, 20] = 30000
    image[0, 0] = 50000                                     # a reference pixel: untouched
    ref = np.zeros((50, 50), bool)
    ref[:4] = True
    filled = sb.make_filled_superbias(image, ref, outfile=None)
    assert abs(filled[20, 20] - 12000) < 100 and filled[0, 0] == 50000
    changed = filled != image
    assert changed.sum() == 1


def test_documented_helpers_are_one_implementation():
    assert sb.calculate_mean is rn.calculate_mean and sb.none_check is rn.none_check
    assert sb.get_crds_info is rn.get_crds_info
    assert sb.none_check("None") is None and sb.none_check("x") == "x"


def test_errors_are_clear(darks):
    with pytest.raises(ValueError, match="outfile"):
        sb.make_superbias(darks.files(), outfile=None)
    with pytest.raises(ValueError, match="no input files"):
        sb.make_superbias([], outfile="x.fits")


def test_superbias_works_in_the_pipeline_superbias_step(darks, made, tmp_path):
    out, *_ = made
    from jwst.superbias import SuperBiasStep
    from jwst_reffiles.pipeline.offline import offline_crds
    with offline_crds(tmp_path / "crds"):
        result = SuperBiasStep.call(str(darks.files()[0]), override_superbias=str(out))
    assert result.meta.cal_step.superbias == "COMPLETE"
    # after subtraction the zero frame is noise around 0
    assert abs(np.median(result.data[:, 0, 4:, 4:])) < 2

"""Stage 3 combiners: the array kernel against numpy/astropy, and files of each kind."""

import numpy as np
from astropy.io import fits
import pytest
from astropy.stats import sigma_clipped_stats
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles.combine import combine_dq, combine_reffiles, combine_stack
from jwst_reffiles.dq import dq_def_records, flag_value
from jwst_reffiles.reffile import _Sub, save_reference

INFO = {"instrument": "NIRCAM", "detector": "NRCA1", "subarray": _Sub("SUB64P", 1, 1, 16, 12),
        "readpatt": "RAPID", "fastaxis": -1, "slowaxis": 2}


@pytest.fixture
def stack():
    rng = np.random.default_rng(1)
    values = rng.normal(10.0, 1.0, (7, 12, 16))
    values[2, 3, 4] = 500.0                    # an outlier
    values[5, 6, 7] = np.nan                   # a missing value
    errors = rng.uniform(0.5, 1.5, values.shape)
    return values, errors


def test_mean_and_median_with_errors(stack):
    values, errors = stack
    res = combine_stack(values, "mean", errors=errors)
    np.testing.assert_allclose(res.sci, np.nanmean(values, axis=0), rtol=1e-12)
    ok = np.isfinite(values)
    expected = np.sqrt(np.where(ok, errors ** 2, 0).sum(axis=0)) / ok.sum(axis=0)
    np.testing.assert_allclose(res.err, expected, rtol=1e-12)
    assert res.count[6, 7] == 6 and res.count[0, 0] == 7
    med = combine_stack(values, "median", errors=errors)
    np.testing.assert_allclose(med.sci, np.nanmedian(values, axis=0), rtol=1e-12)
    np.testing.assert_allclose(med.err, expected * np.sqrt(np.pi / 2), rtol=1e-12)


def test_sigma_clipped_mean_on_std_or_robust_spread(stack):
    """The clip is astropy's sigma_clip along the stack (the values within the last
    bounds kept), with its mad_std spread here."""
    import warnings
    from astropy.stats import sigma_clip
    from astropy.utils.exceptions import AstropyUserWarning
    values, errors = stack
    res = combine_stack(values, "sigma_clipped_mean", sigma=3.0, maxiters=5, errors=errors,
                        stdfunc="mad_std")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        ref = sigma_clip(values, sigma=3.0, maxiters=5, stdfunc="mad_std", axis=0, masked=True)
    np.testing.assert_allclose(res.sci, ref.mean(axis=0).filled(np.nan), rtol=1e-12)
    np.testing.assert_array_equal(res.count, ref.count(axis=0))
    # a standard-deviation clip (the default, as astropy's) cannot reject among 7
    # values (max z = 6/sqrt(7))
    std = combine_stack(values, "sigma_clipped_mean", sigma=3.0, maxiters=5)
    std_mean, _, _ = sigma_clipped_stats(values, sigma=3.0, maxiters=5, axis=0)
    np.testing.assert_allclose(std.sci, std_mean, rtol=1e-12)
    assert std_mean[3, 4] > 70
    assert abs(res.sci[3, 4] - 10) < 2 and res.count[3, 4] == 6       # the outlier is out
    kept = np.delete(errors[:, 3, 4], 2)
    assert res.err[3, 4] == pytest.approx(np.sqrt((kept ** 2).sum()) / 6)


def test_unknown_combiner_is_named():
    with pytest.raises(ValueError, match="unknown combiner 'mode'.*sigma_clipped_mean"):
        combine_stack(np.zeros((2, 2, 2)), "mode")


def test_dq_combination_by_fraction():
    a = np.array([[1, 2], [0, 4]], np.uint32)
    b = np.array([[1, 0], [0, 4]], np.uint32)
    c = np.array([[0, 0], [8, 4]], np.uint32)
    np.testing.assert_array_equal(combine_dq([a, b, c]), a | b | c)
    np.testing.assert_array_equal(combine_dq([a, b, c], 0.5), [[1, 0], [0, 4]])
    np.testing.assert_array_equal(combine_dq([a, b, c], 0.9), [[0, 0], [0, 4]])


def _superbias(path, data, dq):
    model = dm.SuperBiasModel(data=data.astype(np.float32), err=np.ones_like(data, np.float32),
                              dq=dq, dq_def=dq_def_records(dq))
    return save_reference(model, path, reftype="SUPERBIAS", info=INFO,
                          input_files=[f"{path.stem}_a_uncal.fits", f"{path.stem}_b_uncal.fits"])


def test_superbias_files_combined_with_dq_rules(tmp_path):
    dnu_ub = flag_value(["DO_NOT_USE", "UNRELIABLE_BIAS"])
    files = []
    for k, level in enumerate([100.0, 101.0, 102.0, 5000.0]):
        dq = np.zeros((12, 16), np.uint32)
        dq[0, 0] = dnu_ub                          # flagged in every file
        if k == 0:
            dq[1, 1] = dnu_ub                      # flagged in one file only
        files.append(_superbias(tmp_path / f"sb{k}.fits", np.full((12, 16), level), dq))
    out = combine_reffiles(files, tmp_path / "final" / "sb.fits", "superbias",
                           combiner="median", history=["from the groups"])
    with dm.SuperBiasModel(str(out)) as m:
        m.validate()
        assert m.data[5, 5] == pytest.approx(101.5)
        assert m.data[1, 1] == pytest.approx(102.0)          # the flagged value left out
        assert m.dq[0, 0] & dnu_ub == dnu_ub                  # no usable value at all
        assert m.data[0, 0] == pytest.approx(101.5)          # ... filled, but flagged
        assert m.dq[1, 1] == 0                                # 3 of 4 good: fine
        assert m.meta.subarray.name == "SUB64P" and m.meta.instrument.detector == "NRCA1"
    history = "".join(str(x) for x in fits.getheader(out)["HISTORY"])
    assert "made by jwst_reffiles: median, min_good_fraction 0.5, of 4 individual" in history
    assert "sb0.fits" in history and "from the groups" in history
    assert not list((tmp_path / "final").glob(".*"))         # no temporary left


def test_mask_files_combined_flag_by_flag(tmp_path):
    hot = flag_value(["HOT", "DO_NOT_USE"])
    files = []
    for k in range(3):
        dq = np.zeros((12, 16), np.uint32)
        dq[2, 2] = hot
        if k == 0:
            dq[3, 3] = hot
        model = dm.MaskModel(dq=dq, dq_def=dq_def_records(dq))
        files.append(save_reference(model, tmp_path / f"m{k}.fits", reftype="MASK", info=INFO))
    anyone = combine_reffiles(files, tmp_path / "or.fits", "mask")
    majority = combine_reffiles(files, tmp_path / "maj.fits", "mask", mask_flag_fraction=0.5)
    with dm.MaskModel(str(anyone)) as a, dm.MaskModel(str(majority)) as b:
        assert a.dq[2, 2] == hot and a.dq[3, 3] == hot
        assert b.dq[2, 2] == hot and b.dq[3, 3] == 0
    # the final's history is its own (not the first mask's), and says how it was made
    # (FITS folds HISTORY cards and drops the spaces at the folds: compare without)
    history = "".join(str(x) for x in fits.getheader(majority)["HISTORY"]).replace(" ", "")
    assert history.startswith("Final reference file made by jwst_reffiles: a flag vote: "
                              "each flag kept where more than 0.5 of the masks set it"
                              .replace(" ", ""))
    assert "Madebyjwst_reffilesfrom" not in history and "m2.fits" in history
    assert "flag vote of 3" in fits.getheader(majority)["DESCRIP"]


def test_mismatched_files_are_refused_by_name(tmp_path):
    a = save_reference(dm.ReadnoiseModel(data=np.ones((12, 16), np.float32)),
                       tmp_path / "a.fits", reftype="READNOISE", info=INFO)
    b = save_reference(dm.ReadnoiseModel(data=np.ones((10, 16), np.float32)),
                       tmp_path / "b.fits", reftype="READNOISE", info=INFO)
    with pytest.raises(ValueError, match="b.fits: SCI has shape"):
        combine_reffiles([a, b], tmp_path / "c.fits", "readnoise")
    assert not (tmp_path / "c.fits").exists()

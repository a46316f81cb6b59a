"""Consistency across the reference types of one run: each rule catches its fault."""

import numpy as np
from astropy.io import fits

from jwst_reffiles.consistency import (check_consistency, not_monotonic, unflagged_nonfinite,
                                       unhandled_by_mask,
                                       zero_linearity)
from jwst_reffiles.dq import flag_value

DNU, NLC = flag_value("DO_NOT_USE"), flag_value("NO_LIN_CORR")


def _linear_coeffs(shape=(4, 5), c2=-1e-6):
    c = np.zeros((4,) + shape)
    c[1], c[2] = 1.0, c2                # x - 1e-6 x^2: slope 1 - 2e-6 x > 0 below 5e5
    return c


def test_monotonic_correction_passes_and_a_turnover_below_saturation_is_caught():
    c, dq = _linear_coeffs(), np.zeros((4, 5), np.uint32)
    sat = np.full((4, 5), 60000.0)
    assert not_monotonic(c, dq, sat) == (20, 0)
    c[2, 1, 2] = -1e-4                  # slope 0 at 5000 DN, below the 60000 DN level
    assert not_monotonic(c, dq, sat) == (20, 1)
    dq[1, 2] = NLC                      # flagged: not a usable correction, not checked
    assert not_monotonic(c, dq, sat) == (19, 0)


def test_zero_coefficients_and_nonfinite_values_need_their_flags():
    c, dq = _linear_coeffs(), np.zeros((4, 5), np.uint32)
    c[:, 0, 0] = 0.0
    assert zero_linearity(c, dq) == 1
    dq[0, 0] = NLC
    assert zero_linearity(c, dq) == 0
    sci = np.ones((4, 5))
    sci[2, 3] = np.nan
    assert unflagged_nonfinite(sci, np.zeros((4, 5), np.uint32)) == 1
    assert unflagged_nonfinite(sci, np.where(np.isnan(sci), DNU, 0)) == 0
    assert unflagged_nonfinite(sci, None) == 1


def _write(path, reftype, data, dq, **hdr):
    h = fits.Header({"DETECTOR": "NRCA1", "REFTYPE": reftype.upper(), "SUBSTRT1": 1,
                     "SUBSTRT2": 1, "SUBSIZE1": data.shape[-1], "SUBSIZE2": data.shape[-2],
                     "FASTAXIS": 1, "SLOWAXIS": 2, **hdr})
    name = "COEFFS" if reftype == "linearity" else "SCI"
    fits.HDUList([fits.PrimaryHDU(header=h), fits.ImageHDU(data.astype(np.float32), name=name),
                  fits.ImageHDU(dq.astype(np.uint32), name="DQ")]).writeto(path)
    return {"reflabel": reftype, "reftype": reftype, "output": str(path)}


def test_a_run_whose_files_agree_has_no_violation_and_each_fault_is_named(tmp_path):
    dq = np.zeros((4, 5), np.uint32)
    good = [_write(tmp_path / "lin.fits", "linearity", _linear_coeffs(), dq),
            _write(tmp_path / "sat.fits", "saturation", np.full((4, 5), 60000.0), dq)]
    result = check_consistency(good)
    assert result["violations"] == [] and result["checked"]["monotonic_pixels"] == 20
    bad_c = _linear_coeffs()
    bad_c[:, 3, 4] = 0.0                                  # zeroed, unflagged
    sci = np.full((4, 5), 60000.0)
    sci[0, 0] = np.nan                                    # NaN, unflagged
    bad = [_write(tmp_path / "lin2.fits", "linearity", bad_c, dq),
           _write(tmp_path / "sat2.fits", "saturation", sci, dq, FASTAXIS=-2, SLOWAXIS=1)]
    rules = {v["rule"]: v for v in check_consistency(bad)["violations"]}
    assert set(rules) == {"geometry", "zero_linearity", "unflagged_nonfinite"}
    assert rules["geometry"]["files"] == ["lin2.fits", "sat2.fits"]
    assert "FASTAXIS 1 vs -2" in rules["geometry"]["detail"]
    assert rules["zero_linearity"]["pixels"] == 1 and rules["unflagged_nonfinite"]["pixels"] == 1


def test_what_a_file_cannot_serve_is_handled_by_its_flags_or_the_masks_do_not_use():
    mask = np.zeros((4, 5), np.uint32)
    gain = np.full((4, 5), 2.0)
    gain[1, 1], gain[2, 2] = 0.0, np.nan                 # not usable by the ramp fit
    assert unhandled_by_mask(gain, "gain", None, mask) == 2
    mask[1, 1] = mask[2, 2] = DNU                        # the mask takes them out
    assert unhandled_by_mask(gain, "gain", None, mask) == 0
    c = _linear_coeffs()
    c[:, 0, 0] = 0.0
    lin_dq = np.zeros((4, 5), np.uint32)
    assert unhandled_by_mask(c, "linearity", lin_dq, mask) == 1
    lin_dq[0, 0] = NLC                                   # the file says it does not correct it
    assert unhandled_by_mask(c, "linearity", lin_dq, mask) == 0
    dark = np.zeros((3, 4, 5))                           # a zero dark is a good dark
    dark[2, 3, 4] = np.inf
    assert unhandled_by_mask(dark, "dark", np.zeros((4, 5), np.uint32), mask) == 1


def test_the_run_mask_is_checked_against_each_other_file(tmp_path):
    mask = np.zeros((4, 5), np.uint32)
    mask[0, 0] = DNU
    rn = np.full((4, 5), 6.0)
    rn[0, 0] = np.nan                                    # in the mask: handled
    rn[3, 3] = -1.0                                      # not in the mask: unusable
    files = [_write(tmp_path / "mask.fits", "mask", np.zeros((4, 5)), mask),
             _write(tmp_path / "rn.fits", "readnoise", rn, np.zeros((4, 5), np.uint32))]
    result = check_consistency(files)
    rules = [v for v in result["violations"] if v["rule"] == "mask_do_not_use"]
    assert [(v["files"], v["pixels"]) for v in rules] == [(["rn.fits", "mask.fits"], 1)]
    assert result["checked"]["mask_do_not_use_pixels"] == 1

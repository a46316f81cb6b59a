"""Consistency across the reference types of one run: each rule catches its fault."""

import numpy as np
from astropy.io import fits

from jwst_reffiles.consistency import (check_consistency, not_monotonic, unflagged_nonfinite,
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

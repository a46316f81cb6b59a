"""The bad_pixels wrapper: flats and darks combined into one mask."""

import os
import re

import numpy as np
import pytest
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles.bad_pixel_mask import bad_pixel_mask as bpm
from jwst_reffiles.bad_pixel_mask import badpix_from_flats as bf
from jwst_reffiles.dark_current import badpix_from_darks as bd
from jwst_reffiles.dq import flag_value


def test_combines_both_searches_and_saves_one_mask(flats, darks, tmp_path):
    _, flat_rates, _ = flats
    _, dark_rates, jumps, fitopt, _ = darks
    out = tmp_path / "bpm.fits"
    final = bpm.bad_pixels(flat_slope_files=flat_rates, manual_flag_file=None,
                           flat_do_not_use=["DEAD"], dark_slope_files=dark_rates,
                           dark_jump_files=jumps, dark_fitopt_files=fitopt,
                           max_jump_limit=1, hot_threshold=0.7, output_file=out,
                           quality_check=True)
    flat_map = bf.find_bad_pix(flat_rates, manual_flag_file=None, do_not_use=["DEAD"],
                               quality_check=False)
    dark_map = bd.find_bad_pix(dark_rates, jump_filenames=jumps, fitopt_filenames=fitopt,
                               max_jump_limit=1, hot_threshold=0.7)
    np.testing.assert_array_equal(final & ~np.uint32(flag_value("REFERENCE_PIXEL")),
                                  (flat_map | dark_map) & ~np.uint32(flag_value("REFERENCE_PIXEL")))
    for name in ("DEAD", "LOW_QE", "OPEN", "HOT", "RC", "OTHER_BAD_PIXEL", "REFERENCE_PIXEL"):
        assert ((final & flag_value(name)) > 0).any(), name
    with dm.MaskModel(str(out)) as m:
        m.validate()
        np.testing.assert_array_equal(m.dq, final)
        assert m.meta.subarray.name == "SUB320"


def test_repeated_calls_give_the_same_mask(darks, tmp_path):
    """Predecessor defect: the mutable default flag_values gained DO_NOT_USE at every call."""
    _, dark_rates, jumps, fitopt, _ = darks
    kw = dict(dark_slope_files=dark_rates, dark_jump_files=jumps, dark_fitopt_files=fitopt)
    a = bpm.bad_pixels(output_file=tmp_path / "a.fits", dark_do_not_use=[], **kw)
    b = bpm.bad_pixels(output_file=tmp_path / "b.fits", **kw)
    c = bpm.bad_pixels(output_file=tmp_path / "c.fits", dark_do_not_use=[], **kw)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


def test_needs_some_input_and_names_outputs():
    with pytest.raises(ValueError, match="flat_slope_files"):
        bpm.bad_pixels()
    name = bpm.create_output_filename("nircam", "nrca1")
    assert re.fullmatch(re.escape(os.getcwd()) + r"/nircam_nrca1_\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d"
                        r"\.\d{6}_badpix_mask\.fits", name), name

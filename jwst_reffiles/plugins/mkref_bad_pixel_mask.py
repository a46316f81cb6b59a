#!/usr/bin/env python
"""Plug-in: bad pixel mask from flats and darks together
(jwst_reffiles.bad_pixel_mask.bad_pixel_mask.bad_pixels).

Needs the flats' rate products and, for the darks, their rate products with the
``fitopt`` companions and the ``jump`` products (``ssbsave: [jump]``).
"""

import sys

from jwst_reffiles.params import Float, Int, Param, StrList
from jwst_reffiles.plugins._common import (BPM_STEPS, DARK_TYPES, REFPIX_ONLY, column_of,
                                           darks_search, files_of, flats_search, metadata)
from jwst_reffiles.plugins.base import Plugin


class BadPixelMask(Plugin):
    reflabel = "bad_pixel_mask"
    reftype = "mask"
    algorithm = "jwst_reffiles.bad_pixel_mask.bad_pixel_mask:bad_pixels"
    imtypes = "D+F+"
    ssbsteps = BPM_STEPS
    ssbsave = ("jump",)
    reffile4ssb = REFPIX_ONLY
    summary = "flats and darks together (the documented bad_pixels wrapper)"
    params = (
        *flats_search(sigma_name="flat_mean_sigma_threshold",
                      norm_name="flat_mean_normalization_method", dnu_name="flat_do_not_use"),
        Param("dark_do_not_use", StrList(choices=DARK_TYPES),
              ["hot", "rc", "low_pedestal", "high_cr"],
              "searches of darks whose pixels also get DO_NOT_USE"),
        Param("dark_stdev_clipping_sigma", Float(minimum=0.1), 5.0,
              "clipping of the detector-wide slope statistics"),
        Param("dark_max_clipping_iters", Int(minimum=1), 5, "iterations of that clipping"),
        Param("dark_noisy_threshold", Float(minimum=0), 5.0,
              "sigmas above the mean slope (HOT) and noise (noisy)"),
        *darks_search(),
        *metadata("Bad pixel mask"),
    )

    def callalgorithm(self):
        from jwst_reffiles.bad_pixel_mask.bad_pixel_mask import bad_pixels
        t = self.inputimages
        flats, darks = files_of(t, "flat"), files_of(t, "dark")
        fixed = dict(flat_slope_files=flats or None, dark_slope_files=darks or None,
                     output_file=self.args.outputreffilename)
        if darks:
            fixed.update(dark_jump_files=column_of(t, "jump", "dark", self.reflabel),
                         dark_fitopt_files=column_of(t, "fitopt", "dark", self.reflabel))
        bad_pixels(**fixed, **self.algorithm_arguments())


if __name__ == "__main__":
    sys.exit(BadPixelMask.main())

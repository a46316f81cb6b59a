#!/usr/bin/env python
"""Plug-in: bad pixel mask from flats and darks
(jwst_reffiles.bad_pixel_mask.bad_pixel_mask.bad_pixels).

Flats give DEAD, LOW_QE, OPEN and ADJ_OPEN; darks (rate + fitopt products, and
jump products through ``ssbsave: [jump]``) give HOT, WARM, RC, TELEGRAPH, low
pedestal and noisy pixels.  A group with only flats or only darks runs that
half of the search.
"""

import sys

from jwst_reffiles.plugins._common import column_of, files_of
from jwst_reffiles.plugins.base import Plugin, add_config_parameters, call_with_parameters


class BadPixelMask(Plugin):
    reflabel = "bad_pixel_mask"
    reftype = "mask"

    def extra_optional_arguments(self, parser):
        add_config_parameters(parser, self.reflabel)

    def callalgorithm(self):
        from jwst_reffiles.bad_pixel_mask.bad_pixel_mask import bad_pixels
        t = self.inputimages
        flats, darks = files_of(t, "flat"), files_of(t, "dark")
        fixed = dict(flat_slope_files=flats or None, dark_slope_files=darks or None,
                     output_file=self.args.outputreffilename)
        if darks:
            fixed.update(dark_jump_files=column_of(t, "jump", "dark", self.reflabel),
                         dark_fitopt_files=column_of(t, "fitopt", "dark", self.reflabel))
        call_with_parameters(bad_pixels, self.parameters, self.reflabel, **fixed)


if __name__ == "__main__":
    sys.exit(BadPixelMask.main())

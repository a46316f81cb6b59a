#!/usr/bin/env python
"""Plug-in: bad pixel mask from flats (jwst_reffiles.bad_pixel_mask.badpix_from_flats)."""

import sys

from jwst_reffiles.plugins._common import files_of
from jwst_reffiles.plugins.base import Plugin, add_config_parameters, call_with_parameters


class BadpixFromFlats(Plugin):
    reflabel = "badpix_from_flats"
    reftype = "mask"

    def extra_optional_arguments(self, parser):
        add_config_parameters(parser, self.reflabel)

    def callalgorithm(self):
        from jwst_reffiles.bad_pixel_mask.badpix_from_flats import find_bad_pix
        params = {"quality_check": False, **self.parameters}
        call_with_parameters(find_bad_pix, params, self.reflabel,
                             input_files=files_of(self.inputimages, "flat"),
                             output_file=self.args.outputreffilename)


if __name__ == "__main__":
    sys.exit(BadpixFromFlats.main())

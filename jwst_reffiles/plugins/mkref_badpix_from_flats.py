#!/usr/bin/env python
"""Plug-in: bad pixel mask from flats (jwst_reffiles.bad_pixel_mask.badpix_from_flats)."""

import sys

from jwst_reffiles.plugins._common import (BPM_STEPS, REFPIX_ONLY, files_of, flats_search,
                                           metadata)
from jwst_reffiles.plugins.base import Plugin


class BadpixFromFlats(Plugin):
    reflabel = "badpix_from_flats"
    reftype = "mask"
    algorithm = "jwst_reffiles.bad_pixel_mask.badpix_from_flats:find_bad_pix"
    imtypes = "F+"
    ssbsteps = BPM_STEPS
    reffile4ssb = REFPIX_ONLY
    summary = "DEAD, LOW_QE, OPEN and ADJ_OPEN pixels from flat rate images"
    params = (*flats_search(), *metadata("Bad pixel mask from flats"))

    def callalgorithm(self):
        from jwst_reffiles.bad_pixel_mask.badpix_from_flats import find_bad_pix
        find_bad_pix(files_of(self.inputimages, "flat"), quality_check=False,
                     output_file=self.args.outputreffilename, **self.algorithm_arguments())


if __name__ == "__main__":
    sys.exit(BadpixFromFlats.main())

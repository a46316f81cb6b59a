#!/usr/bin/env python
"""Plug-in: bad pixel mask from darks (jwst_reffiles.dark_current.badpix_from_darks).

Needs each dark's rate product with its ``fitopt`` companion (a module whose
ssbsteps end with ramp fitting) and its ``jump`` product (``ssbsave: [jump]``).
"""

import sys

from jwst_reffiles.params import Float, Int, Param, StrList
from jwst_reffiles.plugins._common import (BPM_STEPS, DARK_TYPES, REFPIX_ONLY, column_of,
                                           darks_search, files_of, metadata)
from jwst_reffiles.plugins.base import Plugin

_METADATA = ("author", "description", "pedigree", "useafter")


class BadpixFromDarks(Plugin):
    reflabel = "badpix_from_darks"
    reftype = "mask"
    algorithm = "jwst_reffiles.dark_current.badpix_from_darks:find_bad_pix"
    imtypes = "D+"
    ssbsteps = BPM_STEPS
    ssbsave = ("jump",)
    reffile4ssb = REFPIX_ONLY
    summary = "HOT, WARM, RC, TELEGRAPH and low-pedestal pixels from darks"
    params = (
        Param("clipping_sigma", Float(minimum=0.1), 5.0,
              "clipping of the detector-wide slope statistics"),
        Param("max_clipping_iters", Int(minimum=1), 5, "iterations of that clipping"),
        Param("noisy_threshold", Float(minimum=0), 5.0,
              "sigmas above the mean slope (HOT) and noise (noisy)"),
        *darks_search(),
        Param("min_clean_slopes", Int(minimum=1), 5,
              "clean slopes a pixel needs for its noise to be judged"),
        Param("do_not_use", StrList(choices=DARK_TYPES), ["hot", "rc", "low_pedestal", "high_cr"],
              "searches whose pixels also get DO_NOT_USE"),
        *metadata("Bad pixel mask from darks"),
    )

    def callalgorithm(self):
        from jwst_reffiles.dark_current.badpix_from_darks import find_bad_pix
        t = self.inputimages
        args = self.algorithm_arguments()
        meta = {k: args.pop(k) for k in _METADATA if k in args}
        find_bad_pix(files_of(t, "dark"),
                     jump_filenames=column_of(t, "jump", "dark", self.reflabel),
                     fitopt_filenames=column_of(t, "fitopt", "dark", self.reflabel),
                     outfile=self.args.outputreffilename, metadata=meta, **args)


if __name__ == "__main__":
    sys.exit(BadpixFromDarks.main())

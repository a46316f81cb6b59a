#!/usr/bin/env python
"""Plug-in: superbias (jwst_reffiles.superbias.superbias.make_superbias)."""

import sys

from jwst_reffiles.params import Bool, Float, Int, Param
from jwst_reffiles.plugins._common import REFPIX_ONLY, files_of, metadata
from jwst_reffiles.plugins.base import Plugin


class Superbias(Plugin):
    reflabel = "superbias"
    reftype = "superbias"
    algorithm = "jwst_reffiles.superbias.superbias:make_superbias"
    imtypes = "D"
    ssbsteps = "dq_init"            # the 0th frames as read (superbias comes before refpix)
    reffile4ssb = REFPIX_ONLY
    summary = "sigma-clipped mean of the darks' zero frames"
    params = (
        Param("clipping_sigma", Float(minimum=0.1), 3.0, "sigma-clipping threshold"),
        Param("max_clipping_iters", Int(minimum=1), 3, "sigma-clipping iterations"),
        Param("bad_clipping_sigma", Float(minimum=0.1), 3.0,
              "clipping of the detector-wide statistics for UNRELIABLE_BIAS"),
        Param("bad_max_clipping_iters", Int(minimum=1), 3, "iterations of that clipping"),
        Param("bad_sigma_threshold", Float(minimum=0), 5.0,
              "UNRELIABLE_BIAS beyond this many sigmas"),
        Param("plot", Bool(), False, "save plots next to the file"),
        Param("save_filled", Bool(), False, "also save a superbias with bad pixels filled"),
        Param("box_width", Int(minimum=1), 3, "box for filling bad pixels [pixels]"),
        *metadata("Super Bias Image"),
    )

    def callalgorithm(self):
        from jwst_reffiles.superbias.superbias import make_superbias
        make_superbias(files_of(self.inputimages, "dark"), outfile=self.args.outputreffilename,
                       **self.algorithm_arguments())


if __name__ == "__main__":
    sys.exit(Superbias.main())

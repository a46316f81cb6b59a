#!/usr/bin/env python
"""Plug-in: saturation levels from the plateaus of flats that saturate
(jwst_reffiles.saturation.saturation.make_saturation), in raw DN."""

import sys

from jwst_reffiles.params import Float, Int, Param
from jwst_reffiles.plugins._common import REFPIX_ONLY, files_of, metadata
from jwst_reffiles.plugins.base import Plugin


class Saturation(Plugin):
    reflabel = "saturation"
    reftype = "saturation"
    algorithm = "jwst_reffiles.saturation.saturation:make_saturation"
    imtypes = "F+"
    ssbsteps = "dq_init"                          # levels in raw DN
    reffile4ssb = REFPIX_ONLY
    summary = "saturation levels from the plateaus of flats that saturate"
    params = (
        Param("flat_fraction", Float(minimum=0, maximum=1), 0.05,
              "a group difference below this fraction of the early slope is flat"),
        Param("min_step", Float(minimum=0), 30.0, "DN: smallest difference of a rising ramp"),
        Param("min_plateau_groups", Int(minimum=1), 2, "groups a plateau needs"),
        Param("margin_sigma", Float(minimum=0), 5.0,
              "threshold = plateau - margin_sigma x plateau noise"),
        Param("clipping_sigma", Float(minimum=0.1), 3.0, "clipping over the ramps"),
        Param("max_clipping_iters", Int(minimum=1), 5, "iterations of that clipping"),
        Param("min_ramps", Int(minimum=1), 1, "saturated ramps a pixel needs"),
        Param("memory_mb", Float(minimum=1), 512.0, "memory for one band of rows [MB]"),
        *metadata("Saturation levels from flat plateaus"),
    )

    def callalgorithm(self):
        from jwst_reffiles.saturation.saturation import make_saturation
        make_saturation(files_of(self.inputimages, "flat"),
                        output_file=self.args.outputreffilename, **self.algorithm_arguments())


if __name__ == "__main__":
    sys.exit(Saturation.main())

#!/usr/bin/env python
"""Plug-in: linearity from flats that reach saturation
(jwst_reffiles.linearity.linearity.make_linearity)."""

import sys

from jwst_reffiles.params import Float, Int, Param
from jwst_reffiles.plugins._common import REFPIX_ONLY, files_of, metadata
from jwst_reffiles.plugins.base import Plugin


class Linearity(Plugin):
    reflabel = "linearity"
    reftype = "linearity"
    algorithm = "jwst_reffiles.linearity.linearity:make_linearity"
    imtypes = "F+"
    ssbsteps = "dq_init, superbias, refpix"       # corrected for bias and reference pixels only
    reffile4ssb = REFPIX_ONLY
    summary = "linearity correction polynomial from flat ramps that saturate"
    params = (
        Param("degree", Int(minimum=2), 5, "correction polynomial (c0 = 0, c1 = 1)"),
        Param("model_degree", Int(minimum=2), 3, "forward model fitted to the ramps"),
        Param("max_fraction", Float(minimum=0, maximum=1), 0.95, "of each ramp's saturation plateau"),
        Param("min_fit_fraction", Float(minimum=0, maximum=1), 0.5,
              "NO_LIN_CORR below this fraction of saturation"),
        Param("jump_sigma", Float(minimum=0), 6.0, "group differences this far out are jumps"),
        Param("min_ramps", Int(minimum=1), 1, "ramps a pixel needs"),
        Param("iterations", Int(minimum=1), 8, "Gauss-Newton iterations"),
        Param("flat_fraction", Float(minimum=0, maximum=1), 0.05,
              "a difference below this fraction of the early slope is the plateau"),
        Param("min_step", Float(minimum=0), 30.0, "DN: smallest difference of a rising ramp"),
        Param("memory_mb", Float(minimum=1), 512.0, "memory for one band of rows [MB]"),
        *metadata("Linearity correction from flat ramps"),
    )

    def callalgorithm(self):
        from jwst_reffiles.linearity.linearity import make_linearity
        make_linearity(files_of(self.inputimages, "flat"),
                       output_file=self.args.outputreffilename, **self.algorithm_arguments())


if __name__ == "__main__":
    sys.exit(Linearity.main())

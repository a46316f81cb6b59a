#!/usr/bin/env python
"""Plug-in wrapper of the spec's example_readnoise_module."""

import sys

from jwst_reffiles.example.example_readnoise_module import make_readnoise_boxes
from jwst_reffiles.params import Float, Int, Param
from jwst_reffiles.plugins.base import Plugin


class ExampleReadnoiseModule(Plugin):
    reflabel = "example_readnoise_module"
    reftype = "rdnoise"
    algorithm = "jwst_reffiles.example.example_readnoise_module:make_readnoise_boxes"
    imtypes = "D"
    ssbsteps = "dq_init, saturation, superbias, refpix"   # the spec's example: dq_init
    reffile4ssb = {"mask": "REFPIX"}
    summary = "the spec's example module: readnoise as medians over boxes"
    params = (
        Param("verbose", Int(minimum=0), 3, "how much the module says"),
        Param("boxsize", Int(minimum=1), 128,
              "width of the boxes the readnoise is averaged over [pixels]"),
        Param("sigma_threshold", Float(minimum=0.1), 4.0, "sigma-clipping threshold"),
    )

    def callalgorithm(self):
        make_readnoise_boxes(list(self.inputimages["output_name"]),
                             self.args.outputreffilename, **self.algorithm_arguments())


if __name__ == "__main__":
    sys.exit(ExampleReadnoiseModule.main())

#!/usr/bin/env python
"""Plug-ins: readnoise (jwst_reffiles.readnoise.readnoise.make_readnoise).

``readnoise`` takes every dark on its own (imtypes D); ``rdnoise_nircam`` is
the spec's example module of that name: the same algorithm on pairs of darks
(imtypes DD).  Both read inputs calibrated through refpix: the reference-pixel
drift of raw frames would add to the noise measured (the spec's example
configuration sets dq_init, which measures it with that drift).
"""

import sys

from jwst_reffiles.params import Bool, Float, Int, Param, Str
from jwst_reffiles.plugins._common import REFPIX_ONLY, files_of, metadata
from jwst_reffiles.plugins.base import Plugin


class Readnoise(Plugin):
    reflabel = "readnoise"
    reftype = "readnoise"
    algorithm = "jwst_reffiles.readnoise.readnoise:make_readnoise"
    imtypes = "D"
    ssbsteps = "dq_init, saturation, superbias, refpix"
    reffile4ssb = REFPIX_ONLY
    summary = "CDS read noise of every pixel from darks"
    params = (
        Param("method", Str(choices=("stack", "ramp")), "stack",
              "stack (CDS images of all files) or ramp (per-ramp scatter)"),
        Param("group_diff_type", Str(choices=("independent", "consecutive")), "independent",
              "independent or consecutive group differences"),
        Param("clipping_sigma", Float(minimum=0.1), 3.0, "sigma-clipping threshold"),
        Param("max_clipping_iters", Int(minimum=1), 3, "sigma-clipping iterations"),
        Param("nproc", Int(minimum=1), 1, "processes (the predecessor's; threads are used)"),
        Param("slice_width", Int(minimum=1), 50, "rows per slice of the ramp method"),
        Param("single_value", Bool(), False, "one value for the whole detector"),
        *metadata("CDS Noise Image"),
    )

    def callalgorithm(self):
        from jwst_reffiles.readnoise.readnoise import make_readnoise
        make_readnoise(files_of(self.inputimages, "dark"),
                       outfile=self.args.outputreffilename, **self.algorithm_arguments())


class RdnoiseNircam(Readnoise):
    reflabel = "rdnoise_nircam"
    reftype = "rdnoise"
    imtypes = "DD"
    summary = "the spec's example module of this name: readnoise from pairs of darks"


if __name__ == "__main__":
    sys.exit(Readnoise.main())

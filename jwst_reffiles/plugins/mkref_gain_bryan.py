#!/usr/bin/env python
"""Plug-in: gain from two flats (FF), photon transfer method with the read-noise
term fitted (jwst_reffiles.gain.gain.make_gain without darks)."""

import sys

from jwst_reffiles.plugins._common import REFPIX_ONLY, files_of, gain_params
from jwst_reffiles.plugins.base import Plugin


class GainBryan(Plugin):
    reflabel = "gain_bryan"
    reftype = "gain"
    algorithm = "jwst_reffiles.gain.gain:make_gain"
    imtypes = "FF"
    ssbsteps = "dq_init, saturation, superbias, refpix"
    reffile4ssb = REFPIX_ONLY
    summary = "gain by photon transfer: flat pairs, read-noise term fitted (FF)"
    params = gain_params("Gain from the photon transfer method (flat pairs)")

    def callalgorithm(self):
        from jwst_reffiles.gain.gain import make_gain
        make_gain(files_of(self.inputimages, "flat"), dark_files=[],
                  output_file=self.args.outputreffilename, **self.algorithm_arguments())


if __name__ == "__main__":
    sys.exit(GainBryan.main())

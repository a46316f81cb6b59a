#!/usr/bin/env python
"""Plug-in: gain from two flats less two darks (DDFF), photon transfer method
(jwst_reffiles.gain.gain.make_gain).  Saturated groups must be flagged (the
saturation step)."""

import sys

from jwst_reffiles.plugins._common import REFPIX_ONLY, files_of, gain_params
from jwst_reffiles.plugins.base import Plugin


class GainArmin(Plugin):
    reflabel = "gain_armin"
    reftype = "gain"
    algorithm = "jwst_reffiles.gain.gain:make_gain"
    imtypes = "DDFF"
    ssbsteps = "dq_init, saturation, superbias, refpix"
    reffile4ssb = REFPIX_ONLY
    summary = "gain by photon transfer: flat pairs less dark pairs (DDFF)"
    params = gain_params("Gain from the photon transfer method (flat pairs less dark pairs)")

    def callalgorithm(self):
        from jwst_reffiles.gain.gain import make_gain
        darks = files_of(self.inputimages, "dark")
        if len(darks) < 2:
            raise ValueError(f"{self.reflabel}: the DDFF method needs two darks, got "
                             f"{len(darks)} (imtypes DDFF)")
        make_gain(files_of(self.inputimages, "flat"), dark_files=darks,
                  output_file=self.args.outputreffilename, **self.algorithm_arguments())


if __name__ == "__main__":
    sys.exit(GainArmin.main())

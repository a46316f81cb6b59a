#!/usr/bin/env python
"""Plug-in: dark current (jwst_reffiles.dark_current.dark_reffile.Dark)."""

import sys

from jwst_reffiles.params import Float, Int, Param
from jwst_reffiles.plugins._common import REFPIX_ONLY, files_of, metadata, side_file
from jwst_reffiles.plugins.base import Plugin


class DarkCurrent(Plugin):
    reflabel = "dark"
    reftype = "dark"
    algorithm = "jwst_reffiles.dark_current.dark_reffile:Dark"
    imtypes = "D+"
    ssbsteps = "dq_init, saturation, superbias, refpix, linearity, jump"
    reffile4ssb = REFPIX_ONLY
    summary = "sigma-clipped mean signal of every group of all darks"
    params = (
        Param("max_equivalent_groups", Int(minimum=1), 60,
              "memory budget, in full-frame float32 groups"),
        Param("sigma_threshold", Float(minimum=0.1), 3.0, "sigma-clipping threshold"),
        Param("max_clipping_iters", Int(minimum=1), 3, "sigma-clipping iterations"),
        *metadata("Dark current reference file",
                  {"description": "descrip", "useafter": "use_after"}),
    )

    def callalgorithm(self):
        from jwst_reffiles.dark_current.dark_reffile import Dark
        out = self.args.outputreffilename
        Dark(file_list=files_of(self.inputimages, "dark"), output_file=out,   # makes the file
             contribution_file=side_file(out, "good_signals_per_group.pdf"),
             **self.algorithm_arguments())


if __name__ == "__main__":
    sys.exit(DarkCurrent.main())

#!/usr/bin/env python
"""Plug-in: the IPC deconvolution kernel from the autocorrelation of flat-pair
differences less dark-pair differences (DDFF; jwst_reffiles.ipc.ipc.make_ipc); the
darks' hot pixels' neighbour ratios are recorded beside it.
Saturated groups must be flagged (the saturation step)."""

import sys

from jwst_reffiles.params import Bool, Float, Int, Param
from jwst_reffiles.plugins._common import REFPIX_ONLY, files_of, metadata
from jwst_reffiles.plugins.base import Plugin


class Ipc(Plugin):
    reflabel = "ipc"
    reftype = "ipc"
    algorithm = "jwst_reffiles.ipc.ipc:make_ipc"
    imtypes = "DDFF"
    ssbsteps = "dq_init, saturation, superbias, refpix"
    reffile4ssb = REFPIX_ONLY
    summary = "IPC kernel: autocorrelation of flat pairs less dark pairs (DDFF)"
    params = (
        Param("box", Int(minimum=2), 32, "region side [pixels] whose own mean is taken off"),
        Param("sigma", Float(minimum=0.1), 5.0, "clipping of each region's values"),
        Param("max_clipping_iters", Int(minimum=1), 5, "iterations of that clipping"),
        Param("memory_mb", Float(minimum=1), 512.0, "memory for one band of rows [MB]"),
        Param("hot_pixels", Bool(), True, "also measure the couplings from the darks' "
              "isolated hot pixels (IPCHOTX/Y/D in the header)"),
        Param("hot_min_signal", Float(minimum=1), 500.0, "least hot pixel signal used [DN]"),
        Param("hot_max_signal", Float(minimum=1), 3000.0, "most hot pixel signal used [DN] "
              "(its nonlinearity stays small)"),
        *metadata("IPC deconvolution kernel from flat-pair autocorrelation"),
    )

    def callalgorithm(self):
        from jwst_reffiles.ipc.ipc import make_ipc
        make_ipc(files_of(self.inputimages, "flat"), dark_files=files_of(self.inputimages, "dark"),
                 output_file=self.args.outputreffilename, **self.algorithm_arguments())


if __name__ == "__main__":
    sys.exit(Ipc.main())

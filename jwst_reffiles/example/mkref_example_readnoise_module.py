#!/usr/bin/env python
"""Plug-in wrapper of the spec's example_readnoise_module."""

import sys

from jwst_reffiles.example.example_readnoise_module import make_readnoise_boxes
from jwst_reffiles.plugins.base import Plugin


class ExampleReadnoiseModule(Plugin):
    reflabel = "example_readnoise_module"
    reftype = "rdnoise"

    def extra_optional_arguments(self, parser):
        parser.add_argument("--boxsize", type=int, default=None,
                            help="width of the boxes the readnoise is averaged over")
        parser.add_argument("--sigma_threshold", type=float, default=None,
                            help="sigma-clipping threshold")

    def callalgorithm(self):
        make_readnoise_boxes(list(self.inputimages["output_name"]),
                             self.args.outputreffilename,
                             boxsize=self.parameters.get("boxsize", 128),
                             sigma_threshold=self.parameters.get("sigma_threshold", 4),
                             verbose=self.parameters.get("verbose", 0))


if __name__ == "__main__":
    sys.exit(ExampleReadnoiseModule.main())

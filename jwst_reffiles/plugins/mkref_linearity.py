#!/usr/bin/env python
"""Plug-in: linearity reference file from flats that saturate
(jwst_reffiles.linearity.linearity.make_linearity)."""

import sys

from jwst_reffiles.plugins._common import files_of
from jwst_reffiles.plugins.base import Plugin, add_config_parameters, call_with_parameters


class Linearity(Plugin):
    reflabel = "linearity"
    reftype = "linearity"

    def extra_optional_arguments(self, parser):
        add_config_parameters(parser, self.reflabel)

    def callalgorithm(self):
        from jwst_reffiles.linearity.linearity import make_linearity
        call_with_parameters(make_linearity, self.parameters, self.reflabel,
                             files=files_of(self.inputimages, "flat"),
                             output_file=self.args.outputreffilename)


if __name__ == "__main__":
    sys.exit(Linearity.main())

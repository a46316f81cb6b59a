#!/usr/bin/env python
"""Plug-in: saturation reference file from flats that saturate
(jwst_reffiles.saturation.saturation.make_saturation)."""

import sys

from jwst_reffiles.plugins._common import files_of
from jwst_reffiles.plugins.base import Plugin, add_config_parameters, call_with_parameters


class Saturation(Plugin):
    reflabel = "saturation"
    reftype = "saturation"

    def extra_optional_arguments(self, parser):
        add_config_parameters(parser, self.reflabel)

    def callalgorithm(self):
        from jwst_reffiles.saturation.saturation import make_saturation
        call_with_parameters(make_saturation, self.parameters, self.reflabel,
                             files=files_of(self.inputimages, "flat"),
                             output_file=self.args.outputreffilename)


if __name__ == "__main__":
    sys.exit(Saturation.main())

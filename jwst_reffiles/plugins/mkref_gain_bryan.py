#!/usr/bin/env python
"""Plug-in: gain from two flats (FF), photon transfer method with the read-noise
term fitted (jwst_reffiles.gain.gain.make_gain without darks)."""

import sys

from jwst_reffiles.plugins._common import files_of
from jwst_reffiles.plugins.base import Plugin, add_config_parameters, call_with_parameters


class GainBryan(Plugin):
    reflabel = "gain_bryan"
    reftype = "gain"

    def extra_optional_arguments(self, parser):
        add_config_parameters(parser, self.reflabel)

    def callalgorithm(self):
        from jwst_reffiles.gain.gain import make_gain
        call_with_parameters(make_gain, self.parameters, self.reflabel,
                             flat_files=files_of(self.inputimages, "flat"), dark_files=[],
                             output_file=self.args.outputreffilename)


if __name__ == "__main__":
    sys.exit(GainBryan.main())

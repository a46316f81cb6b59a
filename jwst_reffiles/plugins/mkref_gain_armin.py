#!/usr/bin/env python
"""Plug-in: gain from two flats and two darks (DDFF), photon transfer method
(jwst_reffiles.gain.gain.make_gain with the dark pair's variance subtracted)."""

import sys

from jwst_reffiles.plugins._common import files_of
from jwst_reffiles.plugins.base import Plugin, add_config_parameters, call_with_parameters


class GainArmin(Plugin):
    reflabel = "gain_armin"
    reftype = "gain"

    def extra_optional_arguments(self, parser):
        add_config_parameters(parser, self.reflabel)

    def callalgorithm(self):
        from jwst_reffiles.gain.gain import make_gain
        darks = files_of(self.inputimages, "dark")
        if len(darks) < 2:
            raise ValueError(f"{self.reflabel}: the DDFF method needs two darks, got "
                             f"{len(darks)} (imtypes DDFF)")
        call_with_parameters(make_gain, self.parameters, self.reflabel,
                             flat_files=files_of(self.inputimages, "flat"), dark_files=darks,
                             output_file=self.args.outputreffilename)


if __name__ == "__main__":
    sys.exit(GainArmin.main())

#!/usr/bin/env python
"""Plug-in: readnoise reference file (jwst_reffiles.readnoise.readnoise.make_readnoise)."""

import sys

from jwst_reffiles.plugins._common import files_of
from jwst_reffiles.plugins.base import Plugin, add_config_parameters, call_with_parameters


class Readnoise(Plugin):
    reflabel = "readnoise"
    reftype = "readnoise"

    def extra_optional_arguments(self, parser):
        add_config_parameters(parser, self.reflabel)

    def callalgorithm(self):
        from jwst_reffiles.readnoise.readnoise import make_readnoise
        call_with_parameters(make_readnoise, self.parameters, self.reflabel,
                             filenames=files_of(self.inputimages, "dark"),
                             outfile=self.args.outputreffilename)


if __name__ == "__main__":
    sys.exit(Readnoise.main())

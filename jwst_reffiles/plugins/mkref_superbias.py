#!/usr/bin/env python
"""Plug-in: superbias reference file (jwst_reffiles.superbias.superbias.make_superbias)."""

import sys

from jwst_reffiles.plugins._common import files_of
from jwst_reffiles.plugins.base import Plugin, add_config_parameters, call_with_parameters


class Superbias(Plugin):
    reflabel = "superbias"
    reftype = "superbias"

    def extra_optional_arguments(self, parser):
        add_config_parameters(parser, self.reflabel)

    def callalgorithm(self):
        from jwst_reffiles.superbias.superbias import make_superbias
        call_with_parameters(make_superbias, self.parameters, self.reflabel,
                             filenames=files_of(self.inputimages, "dark"),
                             outfile=self.args.outputreffilename)


if __name__ == "__main__":
    sys.exit(Superbias.main())

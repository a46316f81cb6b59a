#!/usr/bin/env python
"""Plug-in: dark current reference file (jwst_reffiles.dark_current.dark_reffile.Dark)."""

import sys

from jwst_reffiles.plugins._common import files_of, side_file
from jwst_reffiles.plugins.base import Plugin, add_config_parameters, call_with_parameters


class DarkCurrent(Plugin):
    reflabel = "dark"
    reftype = "dark"

    def extra_optional_arguments(self, parser):
        add_config_parameters(parser, self.reflabel)

    def callalgorithm(self):
        from jwst_reffiles.dark_current.dark_reffile import Dark
        out = self.args.outputreffilename
        call_with_parameters(                 # Dark(...) makes the file
            Dark, self.parameters, self.reflabel,
            rename={"description": "descrip", "useafter": "use_after"},
            file_list=files_of(self.inputimages, "dark"), output_file=out,
            contribution_file=side_file(out, "good_signals_per_group.pdf"))


if __name__ == "__main__":
    sys.exit(DarkCurrent.main())

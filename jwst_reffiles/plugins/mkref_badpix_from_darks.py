#!/usr/bin/env python
"""Plug-in: bad pixel mask from darks (jwst_reffiles.dark_current.badpix_from_darks).

Needs each dark's rate product with its ``fitopt`` companion (a module whose
ssbsteps end with ramp fitting) and its ``jump`` product (``ssbsave: [jump]``).
"""

import sys

from jwst_reffiles.plugins._common import column_of, files_of
from jwst_reffiles.plugins.base import Plugin, add_config_parameters, call_with_parameters


class BadpixFromDarks(Plugin):
    reflabel = "badpix_from_darks"
    reftype = "mask"

    def extra_optional_arguments(self, parser):
        add_config_parameters(parser, self.reflabel)

    def callalgorithm(self):
        from jwst_reffiles.dark_current.badpix_from_darks import find_bad_pix
        t = self.inputimages
        call_with_parameters(find_bad_pix, self.parameters, self.reflabel,
                             filenames=files_of(t, "dark"),
                             jump_filenames=column_of(t, "jump", "dark", self.reflabel),
                             fitopt_filenames=column_of(t, "fitopt", "dark", self.reflabel),
                             outfile=self.args.outputreffilename)


if __name__ == "__main__":
    sys.exit(BadpixFromDarks.main())

#!/usr/bin/env python
"""Template of a jwst_reffiles plug-in.

1. Copy this file to mkref_<your module>.py in a directory listed in the
   configuration's ``plugin_dirs`` (or register the class under the
   ``jwst_reffiles.plugins`` entry-point group of your package).
2. chmod +x mkref_<your module>.py (batch systems can then call it directly).
3. Set reflabel and reftype, add your parameters, call your code below.
4. Add a section for the reflabel (reftype, imtypes, ssbsteps, parameters) to
   the configuration file.
"""

import sys

from jwst_reffiles.plugins import Plugin

# from my_package.gain import my_gain_module       # <- your code


class MyModule(Plugin):
    reflabel = "my_module"     # <- the name of your module (its configuration section)
    reftype = "gain"           # <- the reference type it makes

    # Your parameters, either as the spec has them (argparse options: their types check
    # the configuration's values too) ...
    def extra_optional_arguments(self, parser):
        # <- your parameters; they override the configuration when given
        parser.add_argument("--num_boxes", type=int, default=None, help="boxes per side")

    # ... or declared once, as the shipped modules do (type, default and doc; the
    # options and checks come from it; see jwst_reffiles/plugins/mkref_readnoise.py):
    #   from jwst_reffiles.params import Int, Param
    #   params = (Param("num_boxes", Int(minimum=1), 16, "boxes per side"),)
    # and then self.algorithm_arguments() gives them as keyword arguments.

    def callalgorithm(self):
        files = list(self.inputimages["output_name"])       # calibrated inputs of the group
        output = self.args.outputreffilename                # where to save the reference file
        params = self.parameters                            # configuration + command line
        raise NotImplementedError(f"call your module here: {files}, {output}, {params}")


if __name__ == "__main__":
    sys.exit(MyModule.main())

"""The plug-in API of the spec.

A plug-in is a subclass of :class:`Plugin` that sets ``reflabel`` and
``reftype``, adds its parameters in ``extra_optional_arguments(parser)`` and
calls its algorithm in ``callalgorithm()``, where it sees:

* ``self.inputimages``: a table of the group's files, one row per image with
  columns ``label`` (D1, D2, F1, ...), ``imtype`` (dark/flat), ``MJD``,
  ``input_name`` (the raw file) and ``output_name`` (the calibrated product the
  plug-in should read); ``self.inputimages['output_name']`` is the list of
  files, as the spec says;
* ``self.args.outputreffilename``: where to save the reference file;
* ``self.parameters``: the module's configuration section overridden by
  command-line values, with the configuration's types.

A plug-in module is also a command-line program (``python mkref_x.py
--outputreffilename out.fits files...``) so that batch systems can call it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from astropy.table import Table

__all__ = ["Plugin", "images_table"]


def images_table(files, labels=None, imtypes=None, mjds=None, inputs=None) -> Table:
    """The ``inputimages`` table of a list of calibrated files."""
    files = [str(f) for f in files]
    n = len(files)
    return Table({"label": labels or [f"D{k + 1}" for k in range(n)],
                  "imtype": imtypes or ["dark"] * n,
                  "MJD": mjds or [0.0] * n,
                  "input_name": inputs or files,
                  "output_name": files})


class Plugin:
    """Base class of reference-file creation modules."""

    #: The module's name, as used in the configuration and on the command line.
    reflabel: str = ""
    #: The reference type it makes (e.g. "readnoise", "bpm", "gain").
    reftype: str = ""

    def __init__(self, inputimages=None, outputreffilename=None, parameters=None):
        if not self.reflabel or not self.reftype:
            raise TypeError(f"{type(self).__name__} must set reflabel and reftype")
        if inputimages is not None and not isinstance(inputimages, Table):
            inputimages = images_table(inputimages)
        self.inputimages = inputimages
        self.parameters = dict(parameters or {})
        self.args = argparse.Namespace(outputreffilename=outputreffilename, **self.parameters)

    # -- what a plug-in defines ------------------------------------------------
    def extra_optional_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the module's own parameters to ``parser`` (defaults: None)."""

    def callalgorithm(self):
        """Run the algorithm on ``self.inputimages`` and save ``self.args.outputreffilename``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement callalgorithm()")

    # -- running -----------------------------------------------------------------
    def run(self):
        """Check the inputs and call the algorithm; returns the output path."""
        if self.inputimages is None or len(self.inputimages) == 0:
            raise ValueError(f"{self.reflabel}: no input images")
        if not self.args.outputreffilename:
            raise ValueError(f"{self.reflabel}: no output reference file name")
        Path(self.args.outputreffilename).parent.mkdir(parents=True, exist_ok=True)
        self.callalgorithm()
        out = Path(self.args.outputreffilename)
        if not out.is_file():
            raise RuntimeError(f"{self.reflabel}: callalgorithm() did not write {out}")
        return out

    @classmethod
    def parameter_names(cls) -> list[str]:
        """Names of the parameters the module adds in extra_optional_arguments."""
        parser = argparse.ArgumentParser(add_help=False)
        cls.__new__(cls).extra_optional_arguments(parser)
        return [a.dest for a in parser._actions]

    @classmethod
    def main(cls, argv=None) -> int:
        """Command-line entry point: run the module on its own."""
        parser = argparse.ArgumentParser(prog=f"mkref_{cls.reflabel}",
                                         description=f"{cls.reflabel}: make a {cls.reftype} "
                                                     f"reference file")
        parser.add_argument("--outputreffilename", required=True, help="output reference file")
        parser.add_argument("--cfgfile", help="mkrefs configuration (the module's section "
                                              "gives the parameters)")
        parser.add_argument("files", nargs="+", help="calibrated input files")
        cls.__new__(cls).extra_optional_arguments(parser)
        args = parser.parse_args(argv)
        params = {}
        if args.cfgfile:
            from ..config import load_config
            params = load_config(args.cfgfile, expand_paths=False).module_parameters(cls.reflabel)
        for name in cls.parameter_names():
            value = getattr(args, name, None)
            if value is not None:
                params[name] = value
        try:
            out = cls(args.files, args.outputreffilename, params).run()
        except (ValueError, OSError, RuntimeError) as exc:
            print(f"mkref_{cls.reflabel}: error: {exc}", file=sys.stderr)
            return 2
        print(out)
        return 0

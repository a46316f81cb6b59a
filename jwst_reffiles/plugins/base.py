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

__all__ = ["Plugin", "Combiner", "images_table", "add_config_parameters", "call_with_parameters"]


def images_table(files, labels=None, imtypes=None, mjds=None, inputs=None,
                 extra: dict | None = None) -> Table:
    """The ``inputimages`` table of a list of calibrated files.

    ``extra`` adds columns (name -> list), e.g. the ramp-fit companions
    ``rateints``/``fitopt`` and intermediate products such as ``jump``.
    """
    files = [str(f) for f in files]
    n = len(files)
    table = Table({"label": labels or [f"D{k + 1}" for k in range(n)],
                   "imtype": imtypes or ["dark"] * n,
                   "MJD": mjds or [0.0] * n,
                   "input_name": inputs or files,
                   "output_name": files})
    for name, values in (extra or {}).items():
        table[name] = [str(v) for v in values]
    return table


def _cli_type(default, name):
    from ..config import _convert_like

    def convert(text):
        try:
            return _convert_like(default, text, f"--{name}")
        except TypeError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = type(default).__name__ if default is not None else "value"
    return convert


def add_config_parameters(parser: argparse.ArgumentParser, reflabel: str) -> None:
    """Add every parameter of the shipped configuration section of ``reflabel``
    as ``--name`` (default None: the configuration's value applies), typed
    like its default value."""
    from ..config import load_config
    cfg = load_config(expand_paths=False)
    for name, default in cfg.module_parameters(reflabel).items():
        parser.add_argument(f"--{name}", type=_cli_type(default, name), default=None,
                            help=f"(default {default!r})")


def call_with_parameters(func, parameters: dict, owner: str, rename: dict | None = None,
                         **fixed):
    """Call ``func(**fixed, **parameters)``; a parameter ``func`` does not take is
    an error naming it (a misspelt configuration key must not pass silently).

    ``rename`` maps parameter names to ``func``'s argument names.
    """
    import inspect
    rename = rename or {}
    accepted = set(inspect.signature(func).parameters)
    kwargs, unknown = {}, []
    for name, value in parameters.items():
        arg = rename.get(name, name)
        if arg in accepted and arg not in fixed:
            kwargs[arg] = value
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"{owner}: parameter(s) {', '.join(unknown)} not understood by "
                         f"{func.__module__}.{func.__qualname__}")
    return func(**fixed, **kwargs)


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
    def add_parameters(cls, parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        """Add the module's parameters to ``parser`` (without an instance); return it."""
        cls.__new__(cls).extra_optional_arguments(parser)
        return parser

    @classmethod
    def parameter_names(cls) -> list[str]:
        """Names of the parameters the module adds in extra_optional_arguments."""
        return [a.dest for a in cls.add_parameters(argparse.ArgumentParser(add_help=False))._actions]

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
        args = cls.add_parameters(parser).parse_args(argv)
        from ..config import ConfigError, load_config
        try:
            cfg = load_config(args.cfgfile, expand_paths=False)
            params = (cfg.module_parameters(cls.reflabel) if cls.reflabel in cfg.module_sections
                      else {})
        except (ConfigError, FileNotFoundError) as exc:
            print(f"mkref_{cls.reflabel}: error: {exc}", file=sys.stderr)
            return 2
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


class Combiner:
    """Base class of combiner plug-ins (stage 3): individual files -> final file.

    A combiner sets ``name`` (what the configuration's ``combine.combiner``
    names) and implements ``callalgorithm()``, where it sees
    ``self.inputreffiles`` (the individual reference files), ``self.reftype``,
    ``self.args.outputreffilename`` and ``self.parameters`` (the ``combine``
    settings, with ``parameters`` for the combiner's own).  It saves the final
    reference file itself (``jwst_reffiles.reffile.atomic_save`` recommended).
    """

    name: str = ""

    def __init__(self, inputreffiles, outputreffilename, reftype: str, parameters=None):
        if not self.name:
            raise TypeError(f"{type(self).__name__} must set name")
        self.inputreffiles = [str(f) for f in inputreffiles]
        self.reftype = reftype
        self.parameters = dict(parameters or {})
        self.args = argparse.Namespace(outputreffilename=outputreffilename)

    def callalgorithm(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement callalgorithm()")

    def run(self):
        if not self.inputreffiles:
            raise ValueError(f"combiner {self.name}: no individual reference files")
        Path(self.args.outputreffilename).parent.mkdir(parents=True, exist_ok=True)
        self.callalgorithm()
        out = Path(self.args.outputreffilename)
        if not out.is_file():
            raise RuntimeError(f"combiner {self.name}: callalgorithm() did not write {out}")
        return out

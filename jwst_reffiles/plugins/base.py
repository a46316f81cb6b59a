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

__all__ = ["Plugin", "Combiner", "images_table"]


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


def _nearest(name: str, known) -> str:
    """' (did you mean X?)' for the closest known name, or nothing."""
    import difflib
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _action_convert(action: argparse.Action, value, where: str):
    """A configuration value converted by a plug-in's own argparse option."""
    if value is None or isinstance(value, (bool, list, tuple, dict)) or action.type is None:
        converted = value
    else:
        try:
            converted = action.type(str(value))
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise TypeError(f"{where}: {exc}") from None
    if action.choices is not None and converted is not None and converted not in action.choices:
        raise TypeError(f"{where}: expected one of {', '.join(map(str, action.choices))}, "
                        f"got {value!r}")
    return converted


class Plugin:
    """Base class of reference-file creation modules.

    A module is declared once, by class attributes: ``reflabel``, ``reftype``
    and, for the default configuration section it brings, ``imtypes``,
    ``ssbsteps``, ``reffile4ssb``, ``ssbsave``, a one-line ``summary`` and its
    ``params`` (:class:`jwst_reffiles.params.Param`: name, type, default, doc).
    Declared parameters become the section's keys in ``mkrefs --print-config``,
    command-line options, and are type-checked wherever they are given.  A
    plug-in may instead add options in ``extra_optional_arguments`` (the
    spec's API): their argparse types check the configuration's values.
    """

    #: The module's name, as used in the configuration and on the command line.
    reflabel: str = ""
    #: The reference type it makes (e.g. "readnoise", "bpm", "gain").
    reftype: str = ""
    #: The documented function it calls ("module:function"), for the reader and the
    #: test that checks the declaration against its signature.
    algorithm: str = ""
    #: What its default configuration section sets (modules of the package).
    imtypes: str = ""
    ssbsteps: str = ""
    reffile4ssb: dict = {}
    ssbsave: tuple = ()
    summary: str = ""
    #: The module's parameters, declared once.
    params: tuple = ()

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
        """Add the module's own parameters to ``parser`` (defaults: None).

        By default, one ``--name`` option for each declared parameter, parsed by
        its type."""
        for p in self.params:
            def parse(text, p=p):
                try:
                    return p.convert(text, self.reflabel)
                except TypeError as exc:
                    raise argparse.ArgumentTypeError(str(exc)) from None
            parse.__name__ = p.type.name
            parser.add_argument(f"--{p.name}", type=parse, default=None,
                                help=f"{p.doc} (default {p.default!r})")

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
    def _actions(cls) -> dict[str, argparse.Action]:
        parser = cls.add_parameters(argparse.ArgumentParser(add_help=False))
        return {a.dest: a for a in parser._actions}

    @classmethod
    def parameter_names(cls) -> list[str]:
        """Names of the parameters the module adds in extra_optional_arguments."""
        return list(cls._actions())

    @classmethod
    def check_parameters(cls, values: dict, source="") -> tuple[dict, list, list]:
        """Check a configuration section's parameters against the declaration.

        Returns (values typed, unknown keys with a hint, problems): a declared
        parameter is converted to its type (text from the command line
        parsed); a plug-in without declarations has its values converted by
        its argparse options; a key neither knows is returned as unknown (it is
        still handed to the plug-in, the spec's ``self.parameters``).  ``source``
        (a text, or one per key) says where the values came from.
        """
        def where_of(key):
            src = source.get(key, "") if isinstance(source, dict) else source
            return f"{src + ': ' if src else ''}module '{cls.reflabel}'"
        declared = {p.name: p for p in cls.params}
        actions = {} if declared else cls._actions()
        typed, unknown, problems = {}, [], []
        for key, value in values.items():
            try:
                if key in declared:
                    typed[key] = declared[key].convert(value)
                elif key in actions:
                    typed[key] = _action_convert(actions[key], value, f"parameter '{key}'")
                else:
                    typed[key] = value
                    unknown.append(f"{where_of(key)}: key '{key}' is not a parameter of the module"
                                   f"{_nearest(key, declared or actions)}; it is handed to "
                                   f"the module as it is")
            except TypeError as exc:
                problems.append(f"{where_of(key)}: {exc}")
        return typed, unknown, problems

    @classmethod
    def section_defaults(cls) -> dict:
        """The default configuration section of a declared module."""
        section = {"reftype": cls.reftype, "imtypes": cls.imtypes, "ssbsteps": cls.ssbsteps}
        if cls.reffile4ssb:
            section["reffile4ssb"] = dict(cls.reffile4ssb)
        if cls.ssbsave:
            section["ssbsave"] = list(cls.ssbsave)
        section.update({p.name: p.default for p in cls.params})
        return section

    def algorithm_arguments(self) -> dict:
        """The declared parameters' values as the algorithm's keyword arguments."""
        return {p.argument: self.parameters[p.name] for p in self.params
                if p.name in self.parameters}

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

"""The main configuration: load, merge over the defaults, validate, override.

The format is the spec's YAML (see ``jwst_reffiles/data/mkrefs_default.yaml``,
printed by ``mkrefs --print-config``).  A user's file is merged over the
defaults section by section.  Everything is checked at load time and every
problem found is reported at once, each line naming the key and the file (or
command-line option) it came from.

Command-line overrides:

* ``-p key value``: a top-level key or a dotted path (``output.runID``,
  ``DD.max_Delta_MJD``, ``rdnoise_nircam.boxsize``);
* ``--pp section key value``: a key of one section;
* plug-in parameters (``--boxsize 64``) are turned into ``--pp`` overrides by
  the command line for every requested module that has the parameter.

Values given as text are converted to the type the configuration has for the
key (bool, int, float, list, ...).
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .params import (AnyMap, Bool, Float, Int, RunID, Str, StrList, StrMap, check_plain_name,
                     yaml_value)
from .pipeline.steps import SsbStepsError, parse_ssbsteps

__all__ = ["ConfigError", "Config", "load_config", "default_config_text", "IMTYPES",
           "normalize_imtypes", "expand_env"]

DEFAULTS_NAME = "default configuration"

#: Image types and the aliases the predecessor accepted.
IMTYPES = ("D", "F", "DD", "FF", "DDFF", "D+", "F+", "D+F+")
_IMTYPE_ALIASES = {"FFDD": "DDFF", "F+D+": "D+F+", "DF+": "D+F+", "FD+": "D+F+"}

#: Keys of a module section that every module has.
MODULE_KEYS = ("reftype", "imtypes", "ssbsteps")

#: Optional keys of a module section that are not parameters of the module:
#: reffile4ssb (its own pipeline reference files), ssbsave (steps after which
#: the intermediate products are kept as well), combine (its own stage-3
#: settings, over the top-level combine section) and timeout (seconds one of its
#: calls may take, over execution.task_timeout).
MODULE_OPTIONAL_KEYS = ("reffile4ssb", "ssbsave", "combine", "timeout")

#: Instruments (INSTRUME values) the configuration accepts.
INSTRUMENTS = ("NIRCAM", "NIRSPEC", "NIRISS", "MIRI", "FGS")


class ConfigError(ValueError):
    """One or more problems in the configuration; ``problems`` lists them."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        head = "invalid configuration" if len(problems) != 1 else "invalid configuration:"
        if len(problems) == 1:
            super().__init__(f"{head} {problems[0]}")
        else:
            super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in problems))


#: The sections and keys of the configuration (module sections excepted).
SCHEMA: dict[str, Any] = {
    "instrument": Str(choices=INSTRUMENTS),
    "reflabels": StrList(plain=True),
    "reftypes": StrList(),
    "default_reflabels": StrMap(),
    "inputfiles": {
        "dark_pattern": Str(nullable=True, regex=True),
        "flat_pattern": Str(nullable=True, regex=True),
        "exptype_dark": StrList(),
        "exptype_flat": StrList(),
        "basenamepattern": Str(nullable=True, regex=True),
        "dateobs_fitskey": Str(nullable=True),
        "timeobs_fitskey": Str(nullable=True),
        "mjdobs_fitskey": Str(nullable=True),
        "requiredfitskeys": StrList(),
        "optionalfitskeys": StrList(),
    },
    "DD": {"max_Delta_MJD": Float(nullable=True, minimum=0)},
    "FF": {"max_Delta_MJD": Float(nullable=True, minimum=0), "match_keys": StrList(),
           "max_level_ratio": Float(nullable=True, minimum=1.0)},
    "DDFF": {"max_Delta_MJD": Float(nullable=True, minimum=0)},
    "grouping": {"group_by": StrList()},
    "output": {
        "outrootdir": Str(),
        "outsubdir": Str(nullable=True, plain=True),
        "runID": RunID(),
        "runIDNdigits": Int(minimum=1),
        "addsuffix": Str(nullable=True, plain=True),
        "ssbdir": Str(nullable=True),
        "skip_runID_ssbdir": Bool(),
        "ssblogFlag": Bool(),
        "ssberrorlogFlag": Bool(),
        "pipeline_prod_search_dir": StrList(),
    },
    "batch": {
        "batch_enabled": Bool(),
        "batchmode": Str(choices=("Condor", "HTCondor", "SLURM", "PBS", "LSF", "SGE")),
        "jobs": Int(minimum=1),
        "queue_options": AnyMap(),
        "worker_timeout": Float(minimum=1.0),
    },
    "execution": {
        "executor": Str(choices=("inline", "processes", "dask")),
        "jobs": Int(nullable=True, minimum=1),
        "memory_per_task_gib": Float(minimum=0.1),
        "dask_scheduler": Str(nullable=True),
        "force_redo": StrList(choices=("pipeline", "individual", "final", "all")),
        "task_timeout": Float(nullable=True, minimum=1.0),
    },
    "reffile4ssb": StrMap(),
    "validation": StrMap(),
    "verification": {
        "enabled": Bool(),
        "holdout": Int(minimum=0),
        "min_kept": Int(minimum=1),
        "max_exposures": Int(minimum=1),
        "superbias_offset_dn": Float(minimum=0.0),
        "noise_tolerance": Float(minimum=0.0),
        "readnoise_tolerance": Float(minimum=0.0),
        "dark_tolerance": Float(minimum=0.0),
        "linearity_tolerance": Float(minimum=0.0),
        "linearity_fit_fraction": Float(minimum=0.05, maximum=1.0),
        "linearity_max_uncorrected": Float(minimum=0.0, maximum=1.0),
        "saturation_max_rate": Float(minimum=0.0, maximum=1.0),
        "mask_outlier_sigma": Float(minimum=0.0),
        "mask_max_rate": Float(minimum=0.0, maximum=1.0),
    },
    "plugin_dirs": StrList(),
    "combine": {
        "combiner": Str(),
        "sigma": Float(minimum=0.1),
        "stdfunc": Str(choices=("std", "mad_std")),
        "maxiters": Int(minimum=1),
        "min_good_fraction": Float(minimum=0.0, maximum=1.0),
        "mask_flag_fraction": Float(minimum=0.0, maximum=1.0),
        "parameters": AnyMap(),
    },
}

#: Keys whose values are paths ((section, key) or (key,)): $VARIABLES and ~ are expanded.
PATH_KEYS = [("output", "outrootdir"), ("output", "ssbdir"),
             ("output", "pipeline_prod_search_dir"), ("plugin_dirs",)]


def normalize_imtypes(value) -> str:
    """Canonical image type (``FFDD`` -> ``DDFF``...); ValueError if unknown."""
    key = str(value).strip().upper().replace(" ", "")
    key = _IMTYPE_ALIASES.get(key, key)
    if key not in IMTYPES:
        raise ValueError(f"unknown imtypes {value!r}; known: {', '.join(IMTYPES)} "
                         f"(aliases: {', '.join(_IMTYPE_ALIASES)})")
    return key


_ENV = re.compile(r"\$(\w+)|\$\{([^}]+)\}")


def expand_env(text: str, environ=None) -> str:
    """Expand $VAR / ${VAR} and a leading ~; KeyError(VAR) for an unset variable."""
    environ = os.environ if environ is None else environ

    def sub(m):
        name = m.group(1) or m.group(2)
        if name not in environ:
            raise KeyError(name)
        return environ[name]

    return os.path.expanduser(_ENV.sub(sub, text))


def _builtin_modules() -> dict:
    from .plugins.registry import builtin_plugins
    return builtin_plugins()


def module_section_text(cls) -> str:
    """A declared module's default section, as YAML with each parameter's doc."""
    lines = [f"# {cls.summary}"] if cls.summary else []
    lines.append(f"{cls.reflabel}:")
    items = [(k, v, "") for k, v in cls.section_defaults().items() if k not in
             {p.name for p in cls.params}]
    items += [(p.name, p.default, p.doc) for p in cls.params]
    for key, value, doc in items:
        text = f"  {key}: {yaml_value(value)}".rstrip()
        lines.append(f"{text:<31} # {doc}" if doc else text)
    return "\n".join(lines) + "\n"


def default_config_text() -> str:
    """The default configuration file (with its comments): the shipped file, and
    the section of every module of the package from its declaration."""
    text = resources.files("jwst_reffiles").joinpath("data/mkrefs_default.yaml").read_text()
    modules = _builtin_modules()
    text = text.replace("@BUILTIN_REFLABELS@", "[" + ", ".join(modules) + "]")
    return text + "".join("\n" + module_section_text(cls) for cls in modules.values())


# --------------------------------------------------------------------------
# the configuration object
# --------------------------------------------------------------------------

@dataclass
class Config:
    """A validated configuration.

    ``data`` is the merged nested dict; ``origin`` maps (section, key) or
    (key,) to where the value came from (a file name, the defaults, or a
    command-line option).
    """

    data: dict
    cfgfile: Path | None = None
    origin: dict = field(default_factory=dict)
    #: Keys nobody declares (each line names the key, its source and the nearest
    #: known key); errors instead with ``strict``.
    warnings: list = field(default_factory=list)
    strict: bool = False
    _checked: set = field(default_factory=set, repr=False)

    def __getitem__(self, key):
        return self.data[key]

    def get(self, key, default=None):
        return self.data.get(key, default)

    @property
    def module_sections(self) -> list[str]:
        return [k for k in self.data if k not in SCHEMA]

    def module(self, reflabel: str) -> dict:
        """The section of one reflabel (reftype, imtypes, ssbsteps, parameters)."""
        if reflabel not in self.data or reflabel in SCHEMA:
            raise ConfigError([f"no section for reflabel {reflabel!r} in "
                               f"{self.cfgfile or DEFAULTS_NAME}"])
        return self.data[reflabel]

    def module_parameters(self, reflabel: str) -> dict:
        """A module's own parameters: its section without the keys jwst_reffiles reads."""
        return {k: v for k, v in self.module(reflabel).items()
                if k not in MODULE_KEYS and k not in MODULE_OPTIONAL_KEYS}

    def check_module(self, reflabel: str, cls) -> None:
        """Check a module section's parameters against its plug-in's declaration
        (once per reflabel): values converted to the declared types, in place;
        keys the plug-in does not know added to ``warnings`` (ConfigError with
        ``strict``).  Raises ConfigError naming each wrong value."""
        if reflabel in self._checked:
            return
        params = self.module_parameters(reflabel)
        source = {k: self.origin.get((reflabel, k), str(self.cfgfile or DEFAULTS_NAME))
                  for k in params}
        typed, unknown, problems = cls.check_parameters(params, source)
        if self.strict:
            problems += [u.replace("; it is handed to the module as it is", "") for u in unknown]
        elif unknown:
            self.warnings.extend(u for u in unknown if u not in self.warnings)
        if problems:
            raise ConfigError(problems)
        self.data[reflabel].update(typed)
        self._checked.add(reflabel)

    def combine_settings(self, reflabel: str) -> dict:
        """Stage-3 settings of a reflabel: the combine section, overridden by the module's."""
        return {**self.data["combine"], **self.module(reflabel).get("combine", {})}

    def max_delta_mjd(self, imtypes: str) -> float | None:
        section = self.data.get(normalize_imtypes(imtypes))
        return None if not section else section.get("max_Delta_MJD")

    def resolve_reflabels(self, text) -> list[str]:
        """Reflabels from a comma list of reflabels or reference types.

        A reference type is resolved through default_reflabels.  Unknown names
        raise ConfigError naming the known reflabels and reftypes.
        """
        names = text if isinstance(text, (list, tuple)) else str(text).split(",")
        out, bad = [], []
        for name in (n.strip() for n in names if n.strip()):
            if name in self.data["reflabels"]:
                label = name
            elif name in self.data["default_reflabels"]:
                label = self.data["default_reflabels"][name]
                if label not in self.data["reflabels"]:
                    src = self.origin.get(("default_reflabels",), DEFAULTS_NAME)
                    raise ConfigError([f"{src}: default_reflabels.{name} is '{label}', which "
                                       f"is not in reflabels ({', '.join(self.data['reflabels'])})"])
            else:
                bad.append(name)
                continue
            if label not in out:
                out.append(label)
        if bad:
            raise ConfigError([
                f"unknown reflabel or reftype {', '.join(map(repr, bad))}: reflabels are "
                f"{', '.join(self.data['reflabels'])}; reftypes with a default reflabel are "
                f"{', '.join(self.data['default_reflabels']) or 'none'} "
                f"(configuration: {self.cfgfile or DEFAULTS_NAME})"])
        if not out:
            raise ConfigError(["no reflabel given"])
        return out

    def dump(self) -> str:
        return yaml.safe_dump(self.data, sort_keys=False)


def _check_section(name, schema, values, source, problems, origin):
    """Validate one loaded section against its schema; return the normalised dict."""
    if not isinstance(values, dict):
        problems.append(f"{source}: section '{name}' must be a mapping, got {values!r}")
        return {}
    out = {}
    for key, value in values.items():
        if key not in schema:
            problems.append(f"{source}: unknown key '{name}.{key}' (known keys of '{name}': "
                            f"{', '.join(schema)})")
            continue
        try:
            out[key] = schema[key].check(value)
            origin[(name, key)] = source
        except TypeError as exc:
            problems.append(f"{source}: key '{name}.{key}': {exc}")
    return out


def _check_module(name, values, source, problems, origin, complete):
    """Validate a module section; ``complete`` requires reftype/imtypes/ssbsteps."""
    out = dict(values)
    if complete:
        missing = [k for k in MODULE_KEYS if k not in values]
        if missing:
            problems.append(f"{source}: module section '{name}' lacks {', '.join(missing)}")
    if "reftype" in values:
        try:
            out["reftype"] = Str().check(values["reftype"])
        except TypeError as exc:
            problems.append(f"{source}: key '{name}.reftype': {exc}")
    if "imtypes" in values:
        try:
            out["imtypes"] = normalize_imtypes(values["imtypes"])
        except ValueError as exc:
            problems.append(f"{source}: key '{name}.imtypes': {exc}")
    if "ssbsteps" in values:
        try:
            parse_ssbsteps(values["ssbsteps"])
        except SsbStepsError as exc:
            problems.append(f"{source}: key '{name}.ssbsteps': {exc}")
    if "reffile4ssb" in values:
        try:
            out["reffile4ssb"] = StrMap().check(values["reffile4ssb"])
        except TypeError as exc:
            problems.append(f"{source}: key '{name}.reffile4ssb': {exc}")
    if "timeout" in values:
        try:
            out["timeout"] = Float(nullable=True, minimum=1.0).check(values["timeout"])
        except TypeError as exc:
            problems.append(f"{source}: key '{name}.timeout': {exc}")
    if "ssbsave" in values:
        try:
            out["ssbsave"] = StrList().check(values["ssbsave"])
            if "ssbsteps" in values:
                parse_ssbsteps(",".join(out["ssbsave"]) or "dq_init")
        except (TypeError, SsbStepsError) as exc:
            problems.append(f"{source}: key '{name}.ssbsave': {exc}")
    if "combine" in values:
        out["combine"] = _check_section(f"{name}.combine", SCHEMA["combine"],
                                        values["combine"] or {}, source, problems, origin)
    for key in out:
        origin[(name, key)] = source
    return out


def _nearest(name: str, known) -> str:
    from .plugins.base import _nearest as nearest
    return nearest(name, known)


def _validate_document(doc, source, problems, origin, complete_modules=True,
                       warnings=None) -> dict:
    """Validate a whole loaded YAML document (defaults or a user's file)."""
    warnings = problems if warnings is None else warnings
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        problems.append(f"{source}: the configuration must be a mapping of sections, "
                        f"got {type(doc).__name__}")
        return {}
    out = {}
    for key, value in doc.items():
        key = str(key)
        spec = SCHEMA.get(key)
        if isinstance(spec, dict):
            out[key] = _check_section(key, spec, value or {}, source, problems, origin)
        elif spec is not None:
            try:
                out[key] = spec.check(value)
                origin[(key,)] = source
            except TypeError as exc:
                problems.append(f"{source}: key '{key}': {exc}")
        elif isinstance(value, dict):
            try:
                check_plain_name(key, "module section")
            except TypeError as exc:
                problems.append(f"{source}: {exc}")
                continue
            out[key] = _check_module(key, value, source, problems, origin,
                                     complete=complete_modules and "reftype" in value)
        else:
            warnings.append(
                f"{source}: unknown top-level key '{key}'{_nearest(key, SCHEMA)} (not a "
                f"configuration section, and not a module section, which would be a mapping "
                f"with reftype, imtypes and ssbsteps); not used")
    return out


def _merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in (
                "reffile4ssb", "validation", "default_reflabels"):
            out[key] = {**out[key], **value}
        else:
            out[key] = copy.deepcopy(value)
    return out


def _convert_like(current, text: str, where: str):
    """Convert command-line text to the type of a module parameter's current value."""
    if not isinstance(text, str):
        return text
    try:
        if isinstance(current, bool):
            return Bool().parse(text)
        if isinstance(current, int):
            try:
                return Int().parse(text)
            except TypeError:
                return Float().parse(text)
        if isinstance(current, float):
            return Float().parse(text)
        if isinstance(current, list):
            items = [t.strip() for t in text.split(",") if t.strip()]
            if current and not isinstance(current[0], str):
                return [_convert_like(current[0], t, where) for t in items]
            return items
        if isinstance(current, str):
            return text
        return yaml.safe_load(text)
    except TypeError as exc:
        raise TypeError(f"{where}: {exc}") from None


def _apply_override(data, origin, section, key, text, source, problems):
    """Set data[section][key] (or data[key] when section is None) from text."""
    where = f"{source} '{section + '.' if section else ''}{key}'"
    if section is None:
        spec = SCHEMA.get(key)
        if spec is None or isinstance(spec, dict):
            problems.append(f"{where}: not a top-level key (known: "
                            f"{', '.join(k for k, v in SCHEMA.items() if not isinstance(v, dict))}"
                            f"; use section.key for keys inside sections)")
            return
        try:
            data[key] = spec.parse(text) if isinstance(text, str) else spec.check(text)
            origin[(key,)] = source
        except TypeError as exc:
            problems.append(f"{where}: {exc}")
        return
    if "." in section:                         # a module's own reffile4ssb or combine
        module_name, _, sub = section.partition(".")
        if module_name in data and module_name not in SCHEMA and sub in ("reffile4ssb",
                                                                       "combine"):
            holder = {"combine": dict(data[module_name].get("combine", {})),
                      "reffile4ssb": dict(data[module_name].get("reffile4ssb", {}))}
            if sub == "combine":
                _apply_override(holder, origin, "combine", key, text, source, problems)
            else:
                holder["reffile4ssb"][key] = str(text)
            data[module_name][sub] = holder[sub]
            origin[(module_name, sub)] = source
            return
    if section not in data:
        problems.append(f"{where}: no section '{section}' in the configuration")
        return
    spec = SCHEMA.get(section)
    if isinstance(spec, (StrMap, AnyMap)):     # reffile4ssb, validation: free keys
        try:
            value = spec.check({key: text if isinstance(spec, StrMap) else
                                AnyMap().parse(f"{{v: {text}}}")["v"]})[key]
        except TypeError as exc:
            problems.append(f"{where}: {exc}")
            return
        data[section] = {**data[section], key: value}
        origin[(section,)] = source
        return
    if isinstance(spec, dict):
        if key not in spec:
            problems.append(f"{where}: unknown key (known keys of '{section}': "
                            f"{', '.join(spec)})")
            return
        try:
            data[section][key] = (spec[key].parse(text) if isinstance(text, str)
                                  else spec[key].check(text))
            origin[(section, key)] = source
        except TypeError as exc:
            problems.append(f"{where}: {exc}")
        return
    if spec is not None:
        problems.append(f"{where}: '{section}' is not a section")
        return
    module = data[section]
    if key in ("reftype", "imtypes", "ssbsteps", "ssbsave"):
        checked = _check_module(section, {**module, key: text}, source, problems, origin, True)
        module[key] = checked[key]
        return
    if key not in module:
        problems.append(f"{where}: module '{section}' has no parameter '{key}' (its "
                        f"parameters: {', '.join(k for k in module if k not in MODULE_KEYS) or 'none'})")
        return
    declared = _builtin_modules().get(section)
    if declared is not None and key in {p.name for p in declared.params}:
        module[key] = text                 # typed by the declaration, with the others
        origin[(section, key)] = source
        return
    try:
        module[key] = _convert_like(module[key], text, where)
        origin[(section, key)] = source
    except TypeError as exc:
        problems.append(str(exc))


def load_config(cfgfile=None, params=(), section_params=(), environ=None,
                expand_paths: bool = True, strict: bool = False) -> Config:
    """Load and validate the configuration.

    Parameters
    ----------
    cfgfile : path, optional
        The user's YAML file, merged over the shipped defaults.
    params : iterable of (key, value)
        ``-p`` overrides: ``key`` is a top-level key or ``section.key``.
    section_params : iterable of (section, key, value)
        ``--pp`` overrides (and plug-in parameters from the command line).
    environ : mapping, optional
        Environment for ``$VARIABLE`` expansion (``os.environ`` by default).
    expand_paths : bool
        Expand ``$VARIABLES`` in path keys; an unset variable is an error.
    strict : bool
        Keys nobody declares (a top-level key that is no section, a module key
        its plug-in does not declare) are errors; otherwise they are listed in
        the result's ``warnings``.

    Raises
    ------
    ConfigError
        listing every problem found, each naming the key and its source.
    FileNotFoundError
        if ``cfgfile`` does not exist.
    """
    problems: list[str] = []
    warnings: list[str] = []
    origin: dict = {}
    defaults = _validate_document(yaml.safe_load(default_config_text()), DEFAULTS_NAME,
                                  problems, origin)
    if problems:                                   # pragma: no cover - shipped file is tested
        raise ConfigError(problems)
    data = defaults
    source = DEFAULTS_NAME
    if cfgfile is not None:
        cfgfile = Path(cfgfile)
        if not cfgfile.is_file():
            raise FileNotFoundError(f"configuration file {cfgfile} does not exist")
        source = str(cfgfile)
        try:
            user = yaml.safe_load(cfgfile.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError([f"{cfgfile}: not valid YAML: {exc}"]) from None
        user = _validate_document(user, source, problems, origin, complete_modules=False,
                                  warnings=problems if strict else warnings)
        # a module section new in the user's file must be complete
        for name, section in user.items():
            if name not in SCHEMA and name not in defaults:
                missing = [k for k in MODULE_KEYS if k not in section]
                if missing:
                    problems.append(f"{source}: module section '{name}' lacks "
                                    f"{', '.join(missing)}")
        data = _merge(defaults, user)

    for key, value in params:
        section, _, leaf = key.rpartition(".")
        _apply_override(data, origin, section or None, leaf, value, "command line -p",
                        problems)
    for section, key, value in section_params:
        _apply_override(data, origin, section, key, value, "command line --pp", problems)

    def src(*k):
        return origin.get(k, source)

    # cross-checks
    reftypes = data.get("reftypes", [])
    for label in data.get("reflabels", []):
        if label not in data or label in SCHEMA:
            problems.append(f"{src('reflabels')}: reflabel '{label}' has no section of its own")
        elif data[label].get("reftype") not in reftypes:
            problems.append(f"{src(label, 'reftype')}: reftype '{data[label].get('reftype')}' "
                            f"of reflabel '{label}' is not in reftypes ({', '.join(reftypes)})")
    # default_reflabels naming a module outside reflabels is reported when that
    # reference type is asked for (the spec's own example config has such entries)
    if expand_paths:
        env = os.environ if environ is None else environ
        for path_key in PATH_KEYS:
            *parents, key = path_key
            holder = data[parents[0]] if parents else data
            value = holder.get(key)
            if not isinstance(value, (str, list)):
                continue
            try:
                if isinstance(value, list):
                    holder[key] = [expand_env(v, env) for v in value]
                elif value:
                    holder[key] = expand_env(value, env)
            except KeyError as exc:
                name = ".".join(path_key)
                problems.append(f"{src(*path_key)}: key '{name}': environment "
                                f"variable ${exc.args[0]} is not set (value {value!r})")
                continue
        for key in ("outrootdir", "ssbdir"):
            value = data["output"].get(key)
            if value and not (value.isascii() and value.isprintable()):
                problems.append(f"{src('output', key)}: key 'output.{key}': {value!r} has "
                                f"characters the calibration pipeline cannot take in the "
                                f"files it writes (non-ASCII or control characters)")
    config = Config(data=data, cfgfile=cfgfile, origin=origin, warnings=warnings,
                    strict=strict)
    for label, cls in _builtin_modules().items():       # the package's declared modules
        if label in data and label not in SCHEMA:
            try:
                config.check_module(label, cls)
            except ConfigError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    data["instrument"] = data["instrument"].upper()
    return config

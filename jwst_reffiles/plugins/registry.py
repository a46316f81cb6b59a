"""Finding plug-ins: in this package, in installed packages, in directories.

* this package: the modules in ``BUILTIN_MODULES``;
* other installed packages: the ``jwst_reffiles.plugins`` entry-point group
  (an entry point names a Plugin subclass, or a module holding some);
* directories listed in the configuration (``plugin_dirs``): every
  ``mkref_*.py`` file (the spec's workflow: copy the template, rename, edit).

Two plug-ins with the same reflabel are an error naming both sources.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from .base import Combiner, Plugin

__all__ = ["PluginError", "PluginInfo", "discover_plugins", "discover_combiners", "discover",
           "load_plugin_class", "builtin_plugins", "BUILTIN_MODULES", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "jwst_reffiles.plugins"
BUILTIN_MODULES = ("jwst_reffiles.plugins.mkref_readnoise",
                   "jwst_reffiles.plugins.mkref_superbias",
                   "jwst_reffiles.plugins.mkref_dark",
                   "jwst_reffiles.plugins.mkref_badpix_from_flats",
                   "jwst_reffiles.plugins.mkref_badpix_from_darks",
                   "jwst_reffiles.plugins.mkref_bad_pixel_mask",
                   "jwst_reffiles.plugins.mkref_gain_armin",
                   "jwst_reffiles.plugins.mkref_gain_bryan",
                   "jwst_reffiles.plugins.mkref_linearity",
                   "jwst_reffiles.plugins.mkref_saturation",
                   "jwst_reffiles.plugins.mkref_ipc",
                   "jwst_reffiles.example.mkref_example_readnoise_module")


class PluginError(ValueError):
    """A plug-in cannot be loaded, or two claim the same reflabel."""


@dataclass(frozen=True)
class PluginInfo:
    cls: type
    source: str          # "package", "entry point <name> (<dist>)", or the file path
    path: str = ""       # the file it was loaded from, for a plug-in from a directory

    @property
    def reflabel(self) -> str:
        return self.cls.reflabel if issubclass(self.cls, Plugin) else self.cls.name

    @property
    def reftype(self) -> str:
        return self.cls.reftype if issubclass(self.cls, Plugin) else "(combiner)"

    @property
    def ref(self) -> str:
        """How another process finds the class again: ``module:Class`` or ``file.py:Class``."""
        where = self.path or self.cls.__module__
        return f"{where}:{self.cls.__name__}"


def load_plugin_class(ref: str) -> type:
    """The class a :attr:`PluginInfo.ref` names (in this or another process)."""
    where, _, name = ref.rpartition(":")
    if where.endswith(".py"):
        module = _load_file(Path(where))
    else:
        module = importlib.import_module(where)
    try:
        return getattr(module, name)
    except AttributeError:
        raise PluginError(f"{where} has no class {name}") from None


def _plugin_classes(obj, base=Plugin) -> list[type]:
    if inspect.isclass(obj):
        return [obj] if issubclass(obj, base) and obj is not base else []
    return [c for c in vars(obj).values()             # in the order they are defined
            if inspect.isclass(c) and issubclass(c, base) and c is not base
            and c.__module__ == obj.__name__]


def _load_file(path: Path):
    """Import a plug-in file (once per file version and process)."""
    path = Path(path).resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = f"jwst_reffiles_user_plugin_{path.stem}_{digest}"
    loaded = sys.modules.get(name)
    stamp = path.stat().st_mtime_ns if path.exists() else None
    if loaded is not None and getattr(loaded, "__file__", None) == str(path) \
            and getattr(loaded, "_jwst_reffiles_mtime", None) == stamp:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    module._jwst_reffiles_mtime = stamp
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]         # a later discovery must fail the same way, not find nothing
        raise PluginError(f"{path}: cannot load the plug-in ({type(exc).__name__}: {exc})") from None
    return module


_BUILTIN: dict = {}


def builtin_plugins() -> dict[str, type]:
    """The modules this package ships, by reflabel, in the order of BUILTIN_MODULES."""
    if not _BUILTIN:
        for name in BUILTIN_MODULES:
            for cls in _plugin_classes(importlib.import_module(name)):
                _BUILTIN[cls.reflabel] = cls
    return dict(_BUILTIN)


def discover(dirs=()) -> tuple[dict[str, PluginInfo], dict[str, PluginInfo]]:
    """All plug-ins (by reflabel) and combiner plug-ins (by name) found."""
    found: dict[str, PluginInfo] = {}
    combiners: dict[str, PluginInfo] = {}

    def add(obj, source, path=""):
        for cls in _plugin_classes(obj):
            if not cls.reflabel or not cls.reftype:
                raise PluginError(f"{source}: {cls.__name__} must set reflabel and reftype")
            if cls.reflabel in found and found[cls.reflabel].cls is not cls:
                raise PluginError(f"two plug-ins are called {cls.reflabel!r}: "
                                  f"{found[cls.reflabel].source} and {source}")
            found[cls.reflabel] = PluginInfo(cls, source, path)
        for cls in _plugin_classes(obj, Combiner):
            if not cls.name:
                raise PluginError(f"{source}: {cls.__name__} must set name")
            from ..combine import BUILTIN_COMBINERS
            if cls.name in BUILTIN_COMBINERS:
                raise PluginError(f"{source}: combiner {cls.__name__} is called {cls.name!r}, "
                                  f"the name of a built-in combiner")
            if cls.name in combiners and combiners[cls.name].cls is not cls:
                raise PluginError(f"two combiners are called {cls.name!r}: "
                                  f"{combiners[cls.name].source} and {source}")
            combiners[cls.name] = PluginInfo(cls, source, path)

    for name in BUILTIN_MODULES:
        add(importlib.import_module(name), "package")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(f"entry point {ep.name} ({ep.value}): cannot load "
                              f"({type(exc).__name__}: {exc})") from None
        dist = getattr(getattr(ep, "dist", None), "name", "?")
        add(obj, f"entry point {ep.name} ({dist})")
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise PluginError(f"plug-in directory {d} does not exist")
        for path in sorted(d.glob("mkref_*.py")):
            add(_load_file(path), str(path), str(path.resolve()))
    return found, combiners


def discover_plugins(dirs=()) -> dict[str, PluginInfo]:
    """All plug-ins found, by reflabel."""
    return discover(dirs)[0]


def discover_combiners(dirs=()) -> dict[str, PluginInfo]:
    """All combiner plug-ins found, by name."""
    return discover(dirs)[1]

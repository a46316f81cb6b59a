"""Finding plug-ins: in this package, in installed packages, in directories.

* this package: the modules in ``BUILTIN_MODULES``;
* other installed packages: the ``jwst_reffiles.plugins`` entry-point group
  (an entry point names a Plugin subclass, or a module holding some);
* directories listed in the configuration (``plugin_dirs``): every
  ``mkref_*.py`` file (the spec's workflow: copy the template, rename, edit).

Two plug-ins with the same reflabel are an error naming both sources.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from .base import Plugin

__all__ = ["PluginError", "PluginInfo", "discover_plugins", "BUILTIN_MODULES", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "jwst_reffiles.plugins"
BUILTIN_MODULES = ("jwst_reffiles.example.mkref_example_readnoise_module",)


class PluginError(ValueError):
    """A plug-in cannot be loaded, or two claim the same reflabel."""


@dataclass(frozen=True)
class PluginInfo:
    cls: type
    source: str          # "package", "entry point <name> (<dist>)", or the file path

    @property
    def reflabel(self) -> str:
        return self.cls.reflabel

    @property
    def reftype(self) -> str:
        return self.cls.reftype


def _plugin_classes(obj) -> list[type]:
    if inspect.isclass(obj):
        return [obj] if issubclass(obj, Plugin) and obj is not Plugin else []
    return [c for _, c in inspect.getmembers(obj, inspect.isclass)
            if issubclass(c, Plugin) and c is not Plugin and c.__module__ == obj.__name__]


def _load_file(path: Path):
    name = f"jwst_reffiles_user_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise PluginError(f"{path}: cannot load the plug-in ({type(exc).__name__}: {exc})") from None
    return module


def discover_plugins(dirs=()) -> dict[str, PluginInfo]:
    """All plug-ins found, by reflabel."""
    found: dict[str, PluginInfo] = {}

    def add(classes, source):
        for cls in classes:
            if not cls.reflabel or not cls.reftype:
                raise PluginError(f"{source}: {cls.__name__} must set reflabel and reftype")
            if cls.reflabel in found and found[cls.reflabel].cls is not cls:
                raise PluginError(f"two plug-ins are called {cls.reflabel!r}: "
                                  f"{found[cls.reflabel].source} and {source}")
            found[cls.reflabel] = PluginInfo(cls, source)

    for name in BUILTIN_MODULES:
        add(_plugin_classes(importlib.import_module(name)), "package")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(f"entry point {ep.name} ({ep.value}): cannot load "
                              f"({type(exc).__name__}: {exc})") from None
        dist = getattr(getattr(ep, "dist", None), "name", "?")
        add(_plugin_classes(obj), f"entry point {ep.name} ({dist})")
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise PluginError(f"plug-in directory {d} does not exist")
        for path in sorted(d.glob("mkref_*.py")):
            add(_plugin_classes(_load_file(path)), str(path))
    return found

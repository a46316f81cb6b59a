"""Reference-file creation modules plugged into mkrefs."""

from .base import Plugin
from .registry import PluginError, PluginInfo, discover_plugins

__all__ = ["Plugin", "PluginError", "PluginInfo", "discover_plugins"]

"""Typed parameters: the value types of the configuration and of the modules.

A module (plug-in) declares each of its parameters once, as a :class:`Param`
(name, type, default, one line of documentation).  From the declarations come
the module's section in the default configuration (``mkrefs --print-config``),
its command-line options, and the check of every value given in a
configuration file or on the command line: a value of the wrong type is an
error that names the parameter and the module.

The same value types check the configuration's own sections
(:mod:`jwst_reffiles.config`).  A type has ``check(value)`` for a loaded YAML
value and ``parse(text)`` for command-line text; both raise TypeError with a
message that says what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["check_plain_name", "PLAIN_NAME", "Str", "Int", "Float", "Bool", "StrList", "AnyMap", "RunID", "StrMap", "Param",
           "convert_value", "yaml_value"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"", "none", "null", "~"}


class _Type:
    """A value type: ``check`` validates/normalises a loaded value, ``parse`` text."""

    name = "value"
    nullable = False

    def check(self, value):
        if value is None:
            if self.nullable:
                return None
            raise TypeError(f"expected {self.name}, got nothing")
        return self._check(value)

    def _check(self, value):
        return value

    def parse(self, text: str):
        if self.nullable and text.strip().lower() in _NONE:
            return None
        return self.check(self._parse(text))

    def _parse(self, text):
        return text


#: A plain name: what may become part of a file or directory name the run writes.
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


def check_plain_name(value: str, what: str = "name") -> str:
    """``value`` if it is a plain name (letters, digits, ``_ . + -``; no ``/``, no
    ``..``, no leading dot): it cannot take a path outside the output tree."""
    if not PLAIN_NAME.match(value) or ".." in value:
        raise TypeError(f"{what} {value!r} is not a plain name (letters, digits and _ . + - "
                        f"only, no '/' or '..'): it becomes part of the names of the files "
                        f"the run writes")
    return value


class Str(_Type):
    def __init__(self, nullable=False, choices=None, regex=False, plain=False):
        self.nullable, self.choices, self.regex, self.plain = nullable, choices, regex, plain
        self.name = "a string" + (f" (one of {', '.join(choices)})" if choices else "")

    def _check(self, value):
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            raise TypeError(f"expected {self.name}, got {value!r}")
        value = str(value)
        if self.choices:
            spelled = {c.upper(): c for c in self.choices}
            if value.upper() not in spelled:
                raise TypeError(f"expected one of {', '.join(self.choices)}, got {value!r}")
            value = spelled[value.upper()]
        if self.regex:
            try:
                re.compile(value)
            except re.error as exc:
                raise TypeError(f"not a valid regular expression ({exc}): {value!r}")
        if self.plain:
            check_plain_name(value, "the value")
        return value


class Int(_Type):
    name = "an integer"

    def __init__(self, nullable=False, minimum=None):
        self.nullable, self.minimum = nullable, minimum

    def _check(self, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise TypeError(f"must be >= {self.minimum}, got {value}")
        return value

    def _parse(self, text):
        try:
            return int(text)
        except ValueError:
            raise TypeError(f"expected an integer, got {text!r}") from None


class Float(_Type):
    name = "a number"

    def __init__(self, nullable=False, minimum=None, maximum=None):
        self.nullable, self.minimum, self.maximum = nullable, minimum, maximum

    def _check(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        value = float(value)
        if self.minimum is not None and value < self.minimum:
            raise TypeError(f"must be >= {self.minimum}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise TypeError(f"must be <= {self.maximum}, got {value}")
        return value

    def _parse(self, text):
        try:
            return float(text)
        except ValueError:
            raise TypeError(f"expected a number, got {text!r}") from None


class Bool(_Type):
    name = "True or False"

    def _check(self, value):
        if not isinstance(value, bool):
            raise TypeError(f"expected True or False, got {value!r}")
        return value

    def _parse(self, text):
        t = text.strip().lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
        raise TypeError(f"expected True or False, got {text!r}")


class StrList(_Type):
    """A list of strings; a comma-separated string is accepted, nothing means []."""

    name = "a list of strings"

    def __init__(self, choices=None, plain=False):
        self.choices, self.plain = choices, plain

    def check(self, value):
        if value is None:
            return []
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list of strings, got {value!r}")
        bad = [v for v in value if isinstance(v, (dict, list, bool)) or v is None]
        if bad:
            raise TypeError(f"expected a list of strings, got items {bad!r}")
        if self.choices:
            unknown = [v for v in value if str(v) not in self.choices]
            if unknown:
                raise TypeError(f"unknown value(s) {', '.join(map(repr, unknown))}; choose "
                                 f"from {', '.join(self.choices)}")
        if self.plain:
            for v in value:
                check_plain_name(str(v), "the item")
        return [str(v) for v in value]

    def parse(self, text):
        return self.check(text)


class AnyMap(_Type):
    """A mapping of free keys to any YAML values (a combiner's own parameters)."""

    name = "a mapping"

    def check(self, value):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise TypeError(f"expected {self.name}, got {value!r}")
        return {str(k): v for k, v in value.items()}

    def parse(self, text):
        try:
            return self.check(yaml.safe_load(text))
        except yaml.YAMLError as exc:
            raise TypeError(f"expected a YAML mapping ({exc})") from None


class RunID(_Type):
    """A run number, AUTO, or nothing (no run directory)."""

    name = "an integer >= 0, AUTO or nothing"
    nullable = True

    def _check(self, value):
        if isinstance(value, str) and value.strip().upper() == "AUTO":
            return "AUTO"
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TypeError(f"expected {self.name}, got {value!r}")
        return value


class StrMap(_Type):
    """A mapping of free keys to strings (reffile4ssb, validation, default_reflabels)."""

    name = "a mapping of names to strings"

    def check(self, value):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise TypeError(f"expected {self.name}, got {value!r}")
        out = {}
        for k, v in value.items():
            if isinstance(v, (dict, list)) or v is None:
                raise TypeError(f"entry {k!r}: expected a string, got {v!r}")
            out[str(k)] = str(v)
        return out




def convert_value(vtype: _Type, value):
    """A value from YAML (checked) or from the command line (text, parsed)."""
    if isinstance(value, str) and not isinstance(vtype, Str):
        return vtype.parse(value)
    return vtype.check(value)


def yaml_value(value) -> str:
    """One value as it is written in the YAML configuration (nothing for None)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False)
    return text.strip().removesuffix("...").strip()


@dataclass(frozen=True)
class Param:
    """One parameter of a module.

    ``arg`` is the algorithm's keyword argument when it is named otherwise
    (the dark's ``descrip``); ``None`` means the same name.
    """

    name: str
    type: _Type
    default: Any
    doc: str
    arg: str | None = None

    def __post_init__(self):
        if self.default is not None or not getattr(self.type, "nullable", True):
            self.type.check(self.default)          # a declaration must hold its own default

    @property
    def argument(self) -> str:
        return self.arg or self.name

    def convert(self, value, owner: str = ""):
        """The value checked (or parsed from text); TypeError naming the parameter."""
        try:
            return convert_value(self.type, value)
        except TypeError as exc:
            where = f"parameter '{self.name}'" + (f" of module '{owner}'" if owner else "")
            raise TypeError(f"{where}: {exc}") from None

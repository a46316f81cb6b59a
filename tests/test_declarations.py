"""Each shipped module is declared once: its section in the default
configuration, its command-line options and the keyword arguments of the
documented function it calls all come from that declaration."""

import argparse
import importlib
import inspect

import pytest
import yaml

from jwst_reffiles.config import default_config_text, load_config
from jwst_reffiles.plugins.registry import builtin_plugins

ENV = {"JWST_MKREFS_OUTDIR": "/data/out"}
MODULES = builtin_plugins()
#: what the darks search hands to its function as metadata={...}
METADATA = {"author", "description", "pedigree", "useafter"}


def _function(cls):
    module, _, name = cls.algorithm.partition(":")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("label", list(MODULES))
def test_every_declared_parameter_is_an_argument_of_the_documented_function(label):
    cls = MODULES[label]
    func = _function(cls)
    accepted = set(inspect.signature(func).parameters)
    missing = [p.name for p in cls.params if p.argument not in accepted
               and not (p.name in METADATA and "metadata" in accepted)]
    assert not missing, f"{label}: {missing} are not arguments of {cls.algorithm}"
    assert len({p.name for p in cls.params}) == len(cls.params)


@pytest.mark.parametrize("label", list(MODULES))
def test_the_default_section_is_the_declaration(label):
    cls = MODULES[label]
    printed = yaml.safe_load(default_config_text())
    assert printed[label] == cls.section_defaults()
    assert label in printed["reflabels"]
    cfg = load_config(environ=ENV)
    assert cfg.warnings == []
    assert cfg.module_parameters(label) == {p.name: p.default for p in cls.params}
    # every parameter is an option of the module's program, typed by the declaration
    parser = cls.add_parameters(argparse.ArgumentParser())
    assert {a.dest for a in parser._actions} - {"help"} == {p.name for p in cls.params}


def test_print_config_is_commented_and_loads_as_it_is(tmp_path):
    text = default_config_text()
    assert "  clipping_sigma: 3.0" in text and "# sigma-clipping threshold" in text
    path = tmp_path / "printed.cfg"
    path.write_text(text)
    assert load_config(path, environ=ENV, strict=True).data == load_config(environ=ENV).data

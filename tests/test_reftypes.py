"""One registry of reference-type facts (jwst_reffiles.reftypes): each entry names
what the installed jwst and stdatamodels have, and every shipped module's reftype
is in it."""

import importlib

import pytest
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles import reftypes
from jwst_reffiles.plugins.registry import builtin_plugins


@pytest.mark.parametrize("name", sorted(reftypes.REGISTRY))
def test_each_entry_names_a_model_and_a_step_that_exist(name):
    r = reftypes.REGISTRY[name]
    model = getattr(dm, r.model)
    with model() as m:
        hdus = {v.get("fits_hdu") for v in m.schema["properties"].values()
                if isinstance(v, dict)}
    assert r.main_ext in hdus, (r.model, hdus)
    if r.qc_step:
        module, step, argument = r.qc_step
        cls = getattr(importlib.import_module(module), step)
        assert argument.removeprefix("override_") in cls.reference_file_types
        for need in r.qc_needs:
            assert need in cls.reference_file_types


def test_aliases_and_suffixes_normalize_to_jwst_names():
    assert [reftypes.normalize(k) for k in ("BPM", "badpix", "rdnoise", "gainreffile",
                                            " Sat ", "bias", "lin", "superbias")] == [
        "mask", "mask", "readnoise", "gain", "saturation", "superbias", "linearity",
        "superbias"]
    assert reftypes.get("bpm").name == "mask" and reftypes.get("nonsense") is None
    assert reftypes.is_mask("bpm") and not reftypes.is_mask("gain")
    assert reftypes.get("rdnoise").header_reftype == "READNOISE"


def test_every_shipped_module_makes_a_registered_reftype():
    for label, cls in builtin_plugins().items():
        assert reftypes.get(cls.reftype) is not None, (label, cls.reftype)

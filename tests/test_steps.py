"""Step names, orders and tables, checked against the installed jwst pipeline."""

import inspect
import re

import pytest

from jwst_reffiles.pipeline.steps import (MIRI_ORDER, NIR_ORDER, STEP_INFO, SsbStepsError,
                                          parse_ssbsteps, resolve_steps)


def test_x_shorthand_follows_the_installed_near_ir_order():
    assert resolve_steps("refpix-", "NIRCAM") == (
        "group_scale", "dq_init", "saturation", "ipc", "superbias", "refpix")
    assert resolve_steps("dark-", "NIRCAM") == (
        "group_scale", "dq_init", "saturation", "ipc", "superbias", "refpix", "linearity",
        "dark_current")
    rate = resolve_steps("rate-", "NIRCAM")
    assert rate[-2:] == ("jump", "ramp_fit")
    # persistence is not in the shorthand (jwst 3.0 fails it without a persistence time)
    assert "persistence" not in rate
    assert "persistence" in resolve_steps("dq_init, persistence", "NIRCAM")


def test_miri_order_differs():
    # MIRI: firstframe/lastframe, linearity before rscd and dark, refpix after dark
    assert resolve_steps("dark-", "MIRI") == (
        "group_scale", "dq_init", "saturation", "ipc", "firstframe", "lastframe", "linearity",
        "rscd", "dark_current")
    assert resolve_steps("refpix-", "MIRI")[-2:] == ("dark_current", "refpix")
    # explicit lists are put in the instrument's order; steps foreign to it are dropped
    assert resolve_steps("refpix, dark, superbias, dq_init", "MIRI") == (
        "dq_init", "dark_current", "refpix")
    assert resolve_steps("refpix, dark, superbias, dq_init", "NIRCAM") == (
        "dq_init", "superbias", "refpix", "dark_current")
    with pytest.raises(SsbStepsError, match="superbias is not a step of the MIRI pipeline"):
        resolve_steps("superbias-", "MIRI")


def test_explicit_lists_aliases_and_extras():
    assert resolve_steps(["dq_init", "saturation"], "NIRCAM") == ("dq_init", "saturation")
    assert resolve_steps("rate", "NIRCAM") == ("ramp_fit",)
    assert resolve_steps("", "NIRCAM") == ()
    assert resolve_steps(None, "NIRCAM") == ()
    # installed steps the spec does not name run only when asked for by name
    assert "charge_migration" not in resolve_steps("rate-", "NIRCAM")
    assert "charge_migration" in resolve_steps("dq_init, charge_migration", "NIRCAM")
    with pytest.raises(SsbStepsError, match="gain_scale-"):
        parse_ssbsteps("gain_scale-")
    with pytest.raises(SsbStepsError, match="warp"):
        parse_ssbsteps("dq_init, warp")


def _run_order(source: str) -> list[str]:
    """Steps in the order their .run( first appears (some appear in two branches)."""
    return list(dict.fromkeys(re.findall(r"self\.(\w+)\.run\(", source)))


def test_orders_match_the_installed_detector1_pipeline():
    from jwst.pipeline import Detector1Pipeline
    src = inspect.getsource(Detector1Pipeline.process)
    miri_part, rest = src.split("else:", 1)
    miri_branch = _run_order(miri_part)
    nir_branch = _run_order(rest.split("charge_migration.run", 1)[0] + "charge_migration.run(")
    tail = _run_order("self.charge_migration.run(" + rest.split("charge_migration.run", 1)[1])
    assert tuple(miri_branch + tail) == MIRI_ORDER
    assert tuple(nir_branch[:-1] + tail) == NIR_ORDER
    assert set(STEP_INFO) == set(Detector1Pipeline.step_defs)


def test_reference_types_and_keywords_match_the_installed_pipeline():
    from jwst.pipeline import Detector1Pipeline
    from stdatamodels.jwst import datamodels as dm
    for step, cls in Detector1Pipeline.step_defs.items():
        assert tuple(cls.reference_file_types) == STEP_INFO[step][2], step
    schema = dm.RampModel().schema
    keywords = {}

    def walk(s, path):
        if isinstance(s, dict):
            for k, v in s.get("properties", {}).items():
                if path and path[-1] == "cal_step":
                    keywords[k] = v.get("fits_keyword")
                walk(v, path + [k])
            for key in ("allOf", "anyOf"):
                for sub in s.get(key, []):
                    walk(sub, path)
    walk(schema, [])
    for step, (attr, key, _) in STEP_INFO.items():
        assert keywords[attr] == key, step

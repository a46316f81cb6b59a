import textwrap
from pathlib import Path

import pytest
import yaml

from jwst_reffiles.config import (ConfigError, default_config_text, expand_env, load_config,
                                  normalize_imtypes)

ENV = {"JWST_MKREFS_OUTDIR": "/data/out"}

#: The example main configuration of the spec, as printed there (comments,
#: the top-level ``test1: 4`` and ``rdnoise_nircam``'s ``test1: 6`` included).
SPEC_EXAMPLE = (Path(__file__).parent / "data" / "spec_example.cfg").read_text()


def write(tmp_path, text, name="main.cfg"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults_load_and_print_config_is_the_same_file():
    cfg = load_config(environ=ENV)
    assert cfg["output"]["outrootdir"] == "/data/out"
    assert cfg["instrument"] == "NIRCAM"
    assert yaml.safe_load(default_config_text())["reflabels"] == cfg["reflabels"]
    for label in cfg["reflabels"]:
        assert cfg.module(label)["reftype"] in cfg["reftypes"]


def test_the_spec_example_configuration_loads(tmp_path):
    cfg = load_config(write(tmp_path, SPEC_EXAMPLE), environ=ENV)
    assert cfg["reflabels"] == ["example_readnoise_module"]
    assert cfg["output"]["outsubdir"] == "test1"
    assert cfg["output"]["pipeline_prod_search_dir"] == []
    assert cfg.module("gain_armin")["reffile4ssb"] == {"bpmreffile": "/bla/bpm.fits"}
    assert cfg.module_parameters("example_readnoise_module") == {
        "verbose": 3, "boxsize": 128, "sigma_threshold": 4}
    assert cfg.resolve_reflabels("rdnoise") == ["example_readnoise_module"]
    # its default for gain names a module outside its reflabels: said when asked for
    with pytest.raises(ConfigError, match="main.cfg: default_reflabels.gain is .gain_armin."):
        cfg.resolve_reflabels("gain")


def test_spec_example_keys_nobody_declares_are_warnings_or_strict_errors(tmp_path):
    path = write(tmp_path, SPEC_EXAMPLE)
    cfg = load_config(path, environ=ENV)
    top = [w for w in cfg.warnings if "top-level key 'test1'" in w]
    module = [w for w in cfg.warnings if "module 'rdnoise_nircam': key 'test1'" in w]
    assert len(top) == 1 and str(path) in top[0]
    assert len(module) == 1 and str(path) in module[0]
    assert cfg.module("rdnoise_nircam")["test1"] == 6         # handed to the module
    assert "test1" not in cfg.data                             # not a section
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=ENV, strict=True)
    assert len(err.value.problems) == 2
    assert all("test1" in p and str(path) in p for p in err.value.problems)


def test_a_misspelt_module_key_names_the_nearest_declared_one(tmp_path):
    cfg = load_config(write(tmp_path, "readnoise:\n  clipping_sigmaa: 4\n"), environ=ENV)
    assert any("clipping_sigmaa" in w and "did you mean 'clipping_sigma'" in w
               for w in cfg.warnings), cfg.warnings


@pytest.mark.parametrize("section, key, text, words", [
    ("superbias", "max_clipping_iters", "3.5", ["max_clipping_iters", "superbias", "integer"]),
    ("readnoise", "method", "median", ["method", "readnoise", "stack, ramp"]),
    ("gain_armin", "box", "big", ["box", "gain_armin", "integer"]),
    ("badpix_from_darks", "do_not_use", "hot,sparkly", ["do_not_use", "sparkly"]),
])
def test_module_values_take_the_declared_type(tmp_path, section, key, text, words):
    with pytest.raises(ConfigError) as err:
        load_config(environ=ENV, section_params=[(section, key, text)])
    for w in words:
        assert w in str(err.value), (w, str(err.value))
    # the same in a configuration file, reported with the file's name
    path = write(tmp_path, f"{section}:\n  {key}: {text}\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path, environ=ENV)


def test_a_float_parameter_accepts_an_integer():
    cfg = load_config(environ=ENV, section_params=[("readnoise", "clipping_sigma", "4")])
    assert cfg.module("readnoise")["clipping_sigma"] == 4.0
    assert isinstance(cfg.module("readnoise")["clipping_sigma"], float)
    cfg = load_config(environ=ENV, section_params=[("gain_armin", "max_signal", "20000")])
    assert cfg.module("gain_armin")["max_signal"] == 20000.0


def test_reffile4ssb_and_validation_are_set_from_the_command_line():
    cfg = load_config(environ=ENV, params=[("reffile4ssb.gain", "/refs/gain.fits"),
                                           ("gain_armin.reffile4ssb.mask", "/refs/m.fits")],
                      section_params=[("validation", "gainreffile", "CRDS"),
                                      ("reffile4ssb", "default", "/refs/*.fits")])
    assert cfg["reffile4ssb"] == {"gain": "/refs/gain.fits", "default": "/refs/*.fits"}
    assert cfg["validation"] == {"gainreffile": "CRDS"}
    assert cfg.module("gain_armin")["reffile4ssb"] == {"mask": "/refs/m.fits"}


def test_unset_environment_variable_names_the_key_and_file(tmp_path):
    path = write(tmp_path, "output:\n  outrootdir: $NOPE_NOT_SET/x\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    msg = str(err.value)
    assert "$NOPE_NOT_SET" in msg and "output.outrootdir" in msg and str(path) in msg
    assert load_config(path, environ={"NOPE_NOT_SET": "/a"})["output"]["outrootdir"] == "/a/x"
    assert expand_env("${A}/b", {"A": "z"}) == "z/b"


@pytest.mark.parametrize("text, words", [
    ("output:\n  runIDNdigits: three\n", ["output.runIDNdigits", "integer"]),
    ("output:\n  outroot: /x\n", ["output.outroot", "unknown key", "outrootdir"]),
    ("DD:\n  max_Delta_MJD: soon\n", ["DD.max_Delta_MJD", "number"]),
    ("output:\n  ssblogFlag: maybe\n", ["output.ssblogFlag", "True or False"]),
    ("reflabels: [nosuch]\n", ["reflabel 'nosuch' has no section"]),
    ("bpm:\n  ssbsteps: refpix, wobble\n", ["bpm.ssbsteps", "wobble"]),
    ("bpm:\n  imtypes: DDD\n", ["bpm.imtypes", "DDD"]),
    ("newmod:\n  reftype: gain\n", ["newmod", "lacks imtypes, ssbsteps"]),
    ("instrument: HUBBLE\n", ["instrument", "HUBBLE"]),
    ("inputfiles:\n  dark_pattern: 'DARK('\n", ["inputfiles.dark_pattern", "regular expression"]),
    ("batch:\n  batchmode: Torque\n", ["batch.batchmode", "Torque"]),
    ("- just\n- a list\n", ["mapping of sections"]),
])
def test_validation_messages_name_the_key_and_file(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=ENV)
    msg = str(err.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, (w, msg)


def test_all_problems_are_reported_together(tmp_path):
    path = write(tmp_path, "output:\n  runIDNdigits: x\n  nokey: 1\nDD:\n  max_Delta_MJD: y\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=ENV)
    assert len(err.value.problems) == 3


def test_reftype_of_a_reflabel_must_be_in_reftypes(tmp_path):
    path = write(tmp_path, "reftypes: [gain]\nreflabels: [bpm]\n"
                           "bpm: {reftype: bpm, imtypes: D, ssbsteps: refpix-}\n")
    with pytest.raises(ConfigError, match="reftype 'bpm' of reflabel 'bpm' is not in reftypes"):
        load_config(path, environ=ENV)


def test_user_sections_merge_over_the_defaults(tmp_path):
    path = write(tmp_path, """
        output:
          outsubdir: night1
        example_readnoise_module:
          boxsize: 64
        mymodule:
          reftype: gain
          imtypes: ffdd
          ssbsteps: dark-
          num_boxes: 16
        reflabels: [mymodule, example_readnoise_module]
        """)
    cfg = load_config(path, environ=ENV)
    assert cfg["output"]["outsubdir"] == "night1"
    assert cfg["output"]["runIDNdigits"] == 3                      # from the defaults
    assert cfg.module("example_readnoise_module")["boxsize"] == 64
    assert cfg.module("example_readnoise_module")["sigma_threshold"] == 4
    assert cfg.module("mymodule")["imtypes"] == "DDFF"
    assert cfg.module_parameters("mymodule") == {"num_boxes": 16}


def test_command_line_overrides_take_the_configuration_types():
    cfg = load_config(environ=ENV, params=[
        ("output.runID", "7"), ("DD.max_Delta_MJD", "3"), ("output.ssblogFlag", "yes"),
        ("output.pipeline_prod_search_dir", "/a,/b"), ("instrument", "miri"),
        ("example_readnoise_module.sigma_threshold", "4.5")],
        section_params=[("example_readnoise_module", "boxsize", "64"),
                        ("output", "addsuffix", "none"), ("readnoise", "imtypes", "d+")])
    assert cfg["output"]["runID"] == 7
    assert cfg["DD"]["max_Delta_MJD"] == 3.0
    assert cfg["output"]["ssblogFlag"] is True
    assert cfg["output"]["pipeline_prod_search_dir"] == ["/a", "/b"]
    assert cfg["instrument"] == "MIRI"
    assert cfg.module("example_readnoise_module")["boxsize"] == 64
    assert isinstance(cfg.module("example_readnoise_module")["boxsize"], int)
    assert cfg.module("example_readnoise_module")["sigma_threshold"] == 4.5
    assert cfg["output"]["addsuffix"] is None
    assert cfg.module("readnoise")["imtypes"] == "D+"
    assert load_config(environ=ENV, params=[("output.runID", "auto")])["output"]["runID"] == "AUTO"


@pytest.mark.parametrize("params, pp, words", [
    ([("output.runIDNdigits", "x")], [], ["command line -p", "output.runIDNdigits", "integer"]),
    ([("nosuch", "1")], [], ["'nosuch'", "not a top-level key"]),
    ([], [("example_readnoise_module", "boxsiz", "1")], ["no parameter 'boxsiz'", "boxsize"]),
    ([], [("example_readnoise_module", "boxsize", "big")], ["boxsize", "integer"]),
    ([], [("nosection", "a", "1")], ["no section 'nosection'"]),
    ([], [("readnoise", "ssbsteps", "warp-")], ["readnoise.ssbsteps", "warp"]),
])
def test_bad_overrides_are_named(params, pp, words):
    with pytest.raises(ConfigError) as err:
        load_config(environ=ENV, params=params, section_params=pp)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_resolve_reflabels_by_label_or_reftype():
    cfg = load_config(environ=ENV)
    assert cfg.resolve_reflabels("gain,bpm,gain_armin") == ["gain_armin", "bad_pixel_mask"]
    with pytest.raises(ConfigError, match="'flux'"):
        cfg.resolve_reflabels("bpm,flux")


def test_imtype_aliases():
    assert [normalize_imtypes(x) for x in ("FFDD", "f+d+", "DF+", "FD+", "dd")] == \
        ["DDFF", "D+F+", "D+F+", "D+F+", "DD"]
    with pytest.raises(ValueError, match="XX"):
        normalize_imtypes("XX")


def test_missing_config_file():
    with pytest.raises(FileNotFoundError, match="nothere.cfg"):
        load_config("nothere.cfg", environ=ENV)

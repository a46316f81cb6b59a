"""Paths: no configured name takes a file outside the output tree, and names the
calibration pipeline cannot take are refused in stage 1, in one line."""

import shutil

import pytest

from jwst_reffiles import cli
from jwst_reffiles.config import ConfigError, load_config
from jwst_reffiles.simulate import simulate_dataset

ENV = {"JWST_MKREFS_OUTDIR": "/data/out"}


@pytest.mark.parametrize("text, words", [
    ("output: {outsubdir: ../../escape}\n", ["output.outsubdir", "not a plain name"]),
    ("output: {addsuffix: ../x}\n", ["output.addsuffix", "not a plain name"]),
    ("output: {addsuffix: a/b}\n", ["output.addsuffix", "not a plain name"]),
    ("reflabels: ['../evil']\n'../evil': {reftype: gain, imtypes: D, ssbsteps: ''}\n",
     ["not a plain name", "../evil"]),
    ("output: {outrootdir: /data/r\u00e9sultats}\n", ["output.outrootdir", "non-ASCII"]),
])
def test_names_that_would_leave_the_output_tree_are_refused(tmp_path, text, words):
    path = tmp_path / "main.cfg"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=ENV)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_a_plain_suffix_and_subdirectory_are_used():
    cfg = load_config(environ=ENV, params=[("output.addsuffix", "v2.1"),
                                           ("output.outsubdir", "night_3")])
    assert cfg["output"]["addsuffix"] == "v2.1" and cfg["output"]["outsubdir"] == "night_3"


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate_dataset(tmp_path_factory.mktemp("paths") / "sim", subarray="SUB64P",
                            ngroups=2, nints=1, ndarks=1, nflats=0, seed=2,
                            write_reffiles=False)


@pytest.mark.parametrize("name", ["d\u00e9j\u00e0_DARK_uncal.fits", "cost$5_DARK_uncal.fits"])
def test_input_names_the_pipeline_cannot_take_are_refused_in_one_line(sim, tmp_path, capsys,
                                                                       name, monkeypatch):
    monkeypatch.setenv("JWST_MKREFS_OUTDIR", str(tmp_path / "out"))
    bad = tmp_path / name
    shutil.copy(sim.files()[0], bad)
    assert cli.main(["--dry-run", "superbias", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("mkrefs: error:") == 1 and "cannot take" in err and name in err

"""The plug-in API: discovery from the package, entry points and directories."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles import cli
from jwst_reffiles.plugins import Plugin, PluginError, discover_plugins
from jwst_reffiles.plugins.base import images_table

from conftest import USER_PLUGIN, drift_free_darks

TEMPLATE = __import__("jwst_reffiles.templates.plugin_template", fromlist=["x"]).__file__




def test_package_plugins_are_found():
    found = discover_plugins()
    info = found["example_readnoise_module"]
    assert info.reftype == "rdnoise" and info.source == "package"
    assert set(info.cls.parameter_names()) == {"verbose", "boxsize", "sigma_threshold"}


def test_plugins_from_a_directory_and_from_an_entry_point(tmp_path, monkeypatch):
    d = tmp_path / "myplugins"
    d.mkdir()
    (d / "mkref_fancy.py").write_text(USER_PLUGIN.format(label="fancy_gain", fail_on=""))
    # an installed package announcing a plug-in through the entry-point group
    site = tmp_path / "site"
    pkg = site / "otherpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(USER_PLUGIN.format(label="other_gain", fail_on=""))
    dist = site / "otherpkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: otherpkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[jwst_reffiles.plugins]\nother = otherpkg:Fancy\n")
    monkeypatch.syspath_prepend(str(site))
    found = discover_plugins([d])
    assert found["fancy_gain"].source == str(d / "mkref_fancy.py")
    assert found["other_gain"].source.startswith("entry point other")
    # the same reflabel twice is refused, naming both
    (d / "mkref_again.py").write_text(USER_PLUGIN.format(label="other_gain", fail_on=""))
    with pytest.raises(PluginError, match="two plug-ins are called 'other_gain'"):
        discover_plugins([d])


def test_list_plugins_shows_the_configured_directories(tmp_path, capsys):
    d = tmp_path / "myplugins"
    d.mkdir()
    (d / "mkref_fancy.py").write_text(USER_PLUGIN.format(label="fancy_gain", fail_on=""))
    cfg = tmp_path / "c.cfg"
    cfg.write_text(f"plugin_dirs: [{d}]\noutput: {{outrootdir: {tmp_path}}}\n")
    assert cli.main(["--list-plugins", "--cfgfile", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "fancy_gain" in out and "example_readnoise_module" in out and str(d) in out


def test_a_broken_plugin_file_is_named(tmp_path):
    (tmp_path / "mkref_broken.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(PluginError, match="mkref_broken.py"):
        discover_plugins([tmp_path])


def test_plugin_runs_with_parameters_and_as_a_program(tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    (d / "mkref_fancy.py").write_text(USER_PLUGIN.format(label="fancy_gain", fail_on=""))
    cls = discover_plugins([d])["fancy_gain"].cls
    out = cls(["a.fits"], tmp_path / "o" / "gain.fits", {"level": 2.5}).run()
    assert dm.GainModel(str(out)).data[0, 0] == 2.5
    # the spec wants plug-ins executable from the command line
    script = d / "mkref_fancy.py"
    script.write_text(script.read_text() + "\nimport sys\nif __name__ == '__main__':\n"
                                           "    sys.exit(Fancy.main())\n")
    res = subprocess.run([sys.executable, str(script), "--outputreffilename",
                          str(tmp_path / "cli.fits"), "--level", "4", "x.fits"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert dm.GainModel(str(tmp_path / "cli.fits")).data[0, 0] == 4.0


def test_example_readnoise_module_on_simulated_darks(tmp_path):
    ds = drift_free_darks(tmp_path / "sim", ngroups=7, nints=2, ndarks=4, seed=3,
                          write_reffiles=False)
    cls = discover_plugins()["example_readnoise_module"].cls
    out = cls(images_table(ds.files()), tmp_path / "rn.fits",
              {"boxsize": 32, "sigma_threshold": 4}).run()
    with dm.ReadnoiseModel(str(out)) as m:
        m.validate()
        data = m.data
    truth = np.sqrt(2) * np.median(ds.truth.read_noise[4:160, 4:160])
    assert np.median(data[32:, 32:]) == pytest.approx(truth, rel=0.03)
    assert len(np.unique(data[32:64, 32:64])) == 1           # one value per box


def test_template_is_a_valid_plugin_to_fill_in(tmp_path):
    copy = tmp_path / "mkref_my_module.py"
    shutil.copy(TEMPLATE, copy)
    info = discover_plugins([tmp_path])["my_module"]
    assert info.reftype == "gain" and info.cls.parameter_names() == ["num_boxes"]
    with pytest.raises(NotImplementedError, match="call your module here"):
        info.cls(["a.fits"], tmp_path / "x.fits").run()


def test_incomplete_plugins_are_refused():
    class NoLabel(Plugin):
        reftype = "gain"
    with pytest.raises(TypeError, match="reflabel"):
        NoLabel(["a.fits"], "x.fits")

"""Every shipped module on its shipped defaults (like cp_pipe's tests/test_pipelines.py).

One small simulated NIRCam campaign -- darks, and flats at two illuminations
interleaved in time that saturate -- through one mkrefs call of every reflabel
``mkrefs --print-config`` ships, offline through the real pipeline.  The user's
configuration sets only where outputs go and where the pipeline's reference
files are: every module section is the shipped one.  Every final file must be
made and valid.
"""

import json

import pytest
import yaml
from astropy.io import fits
from astropy.table import Table
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles import cli
from jwst_reffiles.config import default_config_text
from jwst_reffiles.simulate import simulate_dataset

SHIPPED = yaml.safe_load(default_config_text())["reflabels"]
MODELS = {"readnoise": "ReadnoiseModel", "rdnoise": "ReadnoiseModel",
          "superbias": "SuperBiasModel", "dark": "DarkModel", "mask": "MaskModel",
          "gain": "GainModel", "linearity": "LinearityModel", "saturation": "SaturationModel"}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shipped")
    sim = simulate_dataset(tmp / "sim", subarray="SUB64P", ngroups=10, nints=2, ndarks=4,
                           nflats=4, flat_flux=[200000.0, 600000.0], seed=3)
    cfg = tmp / "user.cfg"
    cfg.write_text(f"output: {{outrootdir: {tmp / 'out'}, runID: AUTO}}\n"
                   f"reffile4ssb: {{default: '{sim.outdir / 'reffiles'}/*.fits'}}\n")
    rc = cli.main(["--strict-config", "--no-quality-check", "--cfgfile", str(cfg),
                   ",".join(SHIPPED), str(sim.outdir)])
    return rc, sim, tmp / "out" / "001"


def test_every_shipped_module_makes_a_valid_final_file(campaign, capsys):
    rc, sim, rundir = campaign
    assert rc == 0
    finals = Table.read(rundir / "final_reffiles.ecsv")
    assert sorted(finals["reflabel"]) == sorted(SHIPPED)
    assert set(finals["status"]) == {"made"}
    for row in finals:
        with dm.open(row["output"]) as model:
            assert type(model).__name__ == MODELS[row["reftype"]], row["reflabel"]
            model.validate()
            assert model.meta.subarray.name == "SUB64P"
    entries = json.loads((rundir / "validation" / "validation.json").read_text())["files"]
    assert sorted(e["reflabel"] for e in entries) == sorted(SHIPPED)
    assert all(e["format"]["valid"] for e in entries), [e["format"] for e in entries]
    individual = Table.read(rundir / "reffiles.ecsv")
    assert set(individual["status"]) == {"made"}


def test_photon_transfer_pairs_are_of_one_illumination(campaign):
    rc, sim, rundir = campaign
    groups = Table.read(rundir / "groups.ecsv")
    for label in ("gain_bryan", "gain_armin"):
        mine = groups[(groups["reflabel"] == label) & [str(x).startswith("F")
                                                       for x in groups["label"]]]
        assert len(set(mine["cmdID"])) == 2, label      # both illuminations paired
        for cmd in set(mine["cmdID"]):
            names = mine[mine["cmdID"] == cmd]["basename"]
            levels = {fits.getheader(sim.outdir / n)["SIMFLUX"] for n in names}
            assert len(levels) == 1, (label, list(names), levels)


def test_mask_finals_say_they_are_a_flag_vote_of_their_individual_files(campaign):
    rc, sim, rundir = campaign
    for label in ("bad_pixel_mask", "badpix_from_flats", "badpix_from_darks"):
        path = rundir / "final" / f"{label}_001.mask.fits"
        text = "".join(str(h) for h in fits.getheader(path)["HISTORY"]).replace(" ", "")
        assert text.startswith("Finalreferencefilemadebyjwst_reffiles:aflagvote"), text[:200]
        assert f"{label}_001." in text and "sigma_clipped_mean" not in text
        assert "flag vote" in fits.getheader(path)["DESCRIP"]

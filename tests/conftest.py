import textwrap

import numpy as np
import pytest
from astropy.table import Table
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles.config import load_config
from jwst_reffiles.dq import dq_def_records, flag_value
from jwst_reffiles.reffile import _Sub, save_reference
from jwst_reffiles.simulate import make_truth, simulate_dataset
from jwst_reffiles.stage1 import calibrate_inputs, organise_inputs


@pytest.fixture(scope="session")
def nrca1_truth():
    """Default-parameter NIRCam NRCA1 truth (full frame), shared by tests."""
    return make_truth("NRCA1", seed=11)


def no_drift_parameters(**more):
    """NIRCam population parameters without reference-pixel drift (and any overrides)."""
    from jwst_reffiles.simulate import default_parameters
    return default_parameters("NIRCAM").with_overrides(
        refpix_drift_sigma=0.0, refpix_even_odd_sigma=0.0, **more)


def drift_free_darks(outdir, **kw):
    """Simulated SUB160 darks without amplifier drift (what refpix would remove)."""
    from jwst_reffiles.simulate import simulate_dataset
    return simulate_dataset(outdir, subarray="SUB160", nflats=0,
                            truth_parameters=no_drift_parameters(), **kw)


@pytest.fixture(scope="session")
def clean_truth():
    """NRCA1 truth with no defects and no reference-pixel drift: for noise tests."""
    par = no_drift_parameters(fractions={k: 0.0 for k in (
        "DEAD", "LOW_QE", "OPEN", "HOT", "WARM", "RC", "TELEGRAPH", "LOW_PED")})
    return make_truth("NRCA1", seed=5, parameters=par)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def robust_std(x):
    x = np.asarray(x, dtype=float)
    return 1.4826 * np.median(np.abs(x - np.median(x)))


# ---- pipeline-calibrated inputs for the bad pixel searches (made once) -------

BPM_STEPS = "dq_init, saturation, superbias, refpix, linearity, jump"   # no dark subtraction


def neutral_mask(truth, path):
    """A mask flagging only reference pixels: inputs for a bad pixel search are
    calibrated with it (a mask with DO_NOT_USE would hide those pixels)."""
    dq = np.where(truth.refpix, np.uint32(flag_value("REFERENCE_PIXEL")), np.uint32(0))
    info = {"instrument": "NIRCAM", "detector": truth.geometry.detector,
            "subarray": _Sub("FULL", 1, 1, 2048, 2048), "readpatt": "ANY",
            "fastaxis": -1, "slowaxis": 2}
    save_reference(dm.MaskModel(dq=dq, dq_def=dq_def_records(dq)), path, reftype="MASK",
                   info=info)
    return path


@pytest.fixture(scope="session")
def flats(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bpf")
    sim = simulate_dataset(tmp / "sim", subarray="SUB320", ngroups=5, nints=1, ndarks=0,
                           nflats=4, flat_flux=[3000.0], seed=21)
    mask = neutral_mask(sim.truth, tmp / "neutral_mask.fits")
    cfg = tmp / "main.cfg"
    cfg.write_text(textwrap.dedent(f"""
        reflabels: [bp]
        reftypes: [bpm]
        output: {{outrootdir: {tmp / 'out'}, runID: 1}}
        reffile4ssb: {{default: '{sim.outdir / 'reffiles'}/*.fits', mask: '{mask}'}}
        bp: {{reftype: bpm, imtypes: F+, ssbsteps: 'rate-'}}
        """))
    s1 = organise_inputs(load_config(cfg), "bp", [str(p) for p in sim.files()])
    plan, outcomes = calibrate_inputs(s1, jobs=2)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    rates = [str(p) for p in Table.read(s1.layout.rundir / "ssb_products.ecsv")["product"]]
    return sim, rates, tmp


@pytest.fixture(scope="session")
def darks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bpd")
    sim = simulate_dataset(tmp / "sim", subarray="SUB320", ngroups=30, nints=2, ndarks=5,
                           nflats=0, seed=31)
    mask = neutral_mask(sim.truth, tmp / "neutral_mask.fits")
    cfg = tmp / "main.cfg"
    cfg.write_text(textwrap.dedent(f"""
        reflabels: [bj, br]
        reftypes: [bpm]
        output: {{outrootdir: {tmp / 'out'}, runID: 1}}
        reffile4ssb: {{default: '{sim.outdir / 'reffiles'}/*.fits', mask: '{mask}'}}
        bj: {{reftype: bpm, imtypes: D+, ssbsteps: '{BPM_STEPS}'}}
        br: {{reftype: bpm, imtypes: D+, ssbsteps: '{BPM_STEPS}, rate'}}
        """))
    s1 = organise_inputs(load_config(cfg), "bj,br", [str(p) for p in sim.files()])
    plan, outcomes = calibrate_inputs(s1, jobs=2)
    assert len(plan.runs) == 5 and all(o.ok for o in outcomes), [o.error for o in outcomes]
    prods = Table.read(s1.layout.rundir / "ssb_products.ecsv")
    rates = [str(p) for p, l in zip(prods["product"], prods["reflabel"]) if l == "br"]
    jumps = [str(p) for p, l in zip(prods["product"], prods["reflabel"]) if l == "bj"]
    fitopt = [str(p) for p, l in zip(prods["fitopt"], prods["reflabel"]) if l == "br"]
    return sim, rates, jumps, fitopt, tmp




#: A user plug-in (gain, --level), as a user would write one; {fail_on}: a file name whose
#: group raises.
USER_PLUGIN = '''
import numpy as np
from stdatamodels.jwst import datamodels as dm
from jwst_reffiles.plugins import Plugin


class Fancy(Plugin):
    reflabel = "{label}"
    reftype = "gain"

    def extra_optional_arguments(self, parser):
        parser.add_argument("--level", type=float, default=None)

    def callalgorithm(self):
        names = " ".join(self.inputimages["input_name"])
        if "{fail_on}" and "{fail_on}" in names:
            raise RuntimeError("this group is cursed")
        level = self.parameters.get("level", 1.0) + len(self.inputimages) * 0
        m = dm.GainModel(data=np.full((4, 4), level, np.float32))
        m.meta.description = "user gain"
        m.save(self.args.outputreffilename)
'''

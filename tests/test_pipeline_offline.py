"""The simulated data and truth reference files run through the real calwebb_detector1,
offline, and the pipeline recovers the injected truth."""

import numpy as np
import pytest

from jwst_reffiles.pipeline.offline import OFFLINE_CONTEXT, offline_crds
from jwst_reffiles.simulate import get_subarray, simulate_dataset


def detector1_steps(ref):
    """Every step of jwst 3.0 Detector1 either given its reference files or skipped."""
    return {
        "group_scale": {},
        "dq_init": {"override_mask": ref["mask"]},
        "emicorr": {"skip": True},
        "saturation": {"override_saturation": ref["saturation"],
                       "override_superbias": ref["superbias"]},
        "ipc": {"override_ipc": ref["ipc"]},
        "superbias": {"override_superbias": ref["superbias"]},
        "refpix": {"override_refpix": "N/A", "override_sirskernel": "N/A"},
        "rscd": {"skip": True},
        "linearity": {"override_linearity": ref["linearity"]},
        "dark_current": {"override_dark": ref["dark_sub160"]},
        "reset": {"skip": True},
        "persistence": {"skip": True},
        "charge_migration": {"skip": True},
        "jump": {"override_gain": ref["gain"], "override_readnoise": ref["readnoise"]},
        "picture_frame": {"skip": True},
        "clean_flicker_noise": {"skip": True},
        "ramp_fit": {"override_gain": ref["gain"], "override_readnoise": ref["readnoise"]},
        "gain_scale": {"override_gain": ref["gain"]},
    }


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipe")
    ds = simulate_dataset(out / "sim", subarray="SUB160", ngroups=10, nints=2, ndarks=1,
                          nflats=1, flat_flux=[1500.0], seed=21)
    ref = {k: str(v) for k, v in ds.reffiles.items()}
    with offline_crds(out / "crds"):
        from jwst.pipeline import Detector1Pipeline
        result = Detector1Pipeline.call(str(ds.files("flat")[0]), steps=detector1_steps(ref),
                                        output_dir=str(out / "ssb"), save_results=True)
    return ds, result, out


def test_every_step_ran_offline(processed):
    ds, result, out = processed
    cal = result.meta.cal_step
    for step in ("dq_init", "saturation", "ipc", "superbias", "refpix", "linearity",
                 "dark_sub", "jump", "ramp_fit"):
        assert getattr(cal, step) == "COMPLETE", step
    assert result.meta.ref_file.crds.context_used == OFFLINE_CONTEXT
    assert list((out / "ssb").glob("*_rate.fits"))


def test_pipeline_recovers_the_injected_flat_response(processed):
    ds, result, _ = processed
    t = ds.truth
    sl = get_subarray("NIRCAM", "SUB160").slices()
    expected = ((1500.0 * t.photo_response + t.dark_current) / t.gain)[sl]
    good = result.dq == 0
    assert good.mean() > 0.9
    ratio = result.data[good] / expected[good]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.005)
    # the mask's defects reached the output
    d = t.defects
    inside = (d["y"] < 160) & (d["x"] < 160) & (d["defect"] == "DEAD")
    assert inside.any()
    assert (result.dq[d["y"][inside], d["x"][inside]] != 0).all()

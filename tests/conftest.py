import numpy as np
import pytest

from jwst_reffiles.simulate import make_truth


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


def robust_std(x):
    x = np.asarray(x, dtype=float)
    return 1.4826 * np.median(np.abs(x - np.median(x)))

import numpy as np
import pytest

from jwst_reffiles.simulate import make_truth


@pytest.fixture(scope="session")
def nrca1_truth():
    """Default-parameter NIRCam NRCA1 truth (full frame), shared by tests."""
    return make_truth("NRCA1", seed=11)


@pytest.fixture(scope="session")
def clean_truth():
    """NRCA1 truth with no defects and no reference-pixel drift: for noise tests."""
    from jwst_reffiles.simulate import default_parameters
    par = default_parameters("NIRCAM").with_overrides(
        refpix_drift_sigma=0.0, refpix_even_odd_sigma=0.0,
        fractions={k: 0.0 for k in ("DEAD", "LOW_QE", "OPEN", "HOT", "WARM", "RC",
                                    "TELEGRAPH", "LOW_PED")})
    return make_truth("NRCA1", seed=5, parameters=par)


def robust_std(x):
    x = np.asarray(x, dtype=float)
    return 1.4826 * np.median(np.abs(x - np.median(x)))

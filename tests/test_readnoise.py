"""Readnoise reference files recover the injected read noise."""

import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles.readnoise import readnoise as rn
from jwst_reffiles.simulate import simulate_dataset

from conftest import drift_free_darks

SL = (slice(0, 160), slice(0, 160))


@pytest.fixture(scope="module")
def darks(tmp_path_factory):
    return drift_free_darks(tmp_path_factory.mktemp("rn"), ngroups=7, nints=2, ndarks=4,
                            seed=3, write_reffiles=False)


def ratio(darks, image):
    truth = np.sqrt(2) * darks.truth.read_noise[SL]          # CDS noise
    sci = ~darks.truth.refpix[SL]
    return image[sci] / truth[sci]


@pytest.mark.parametrize("method", ["stack", "ramp"])
@pytest.mark.parametrize("diff", ["independent", "consecutive"])
def test_recovers_injected_readnoise_within_2_percent(darks, tmp_path, method, diff):
    out = tmp_path / "rn.fits"
    image = rn.make_readnoise(darks.files(), method=method, group_diff_type=diff, outfile=out)
    r = ratio(darks, image)
    assert np.median(r) == pytest.approx(1.0, abs=0.02)
    # it follows the injected map, not just its average: the noisiest and the
    # quietest tenth of the pixels come out in the injected proportion (one
    # pixel's estimate from ~24 differences is too noisy, +-14 %, to compare alone)
    sci = ~darks.truth.refpix[SL]
    truth = darks.truth.read_noise[SL][sci]
    got = image[sci]
    lo, hi = np.quantile(truth, [0.1, 0.9])
    expected = truth[truth >= hi].mean() / truth[truth <= lo].mean()
    assert got[truth >= hi].mean() / got[truth <= lo].mean() == pytest.approx(expected, rel=0.03)
    with dm.ReadnoiseModel(str(out)) as m:
        m.validate()
        np.testing.assert_array_equal(m.data, image)


def test_reference_file_metadata(darks, tmp_path):
    out = tmp_path / "sub" / "rn.fits"
    rn.make_readnoise(darks.files(), outfile=out, author="me", pedigree="GROUND",
                      useafter="2026-01-01T00:00:00", history="test history")
    h = fits.getheader(out)
    assert (h["REFTYPE"], h["INSTRUME"], h["DETECTOR"]) == ("READNOISE", "NIRCAM", "NRCA1")
    # the subarray is recorded as it is, never as FULL
    assert (h["SUBARRAY"], h["SUBSTRT1"], h["SUBSIZE1"], h["SUBSIZE2"]) == ("SUB160", 1, 160, 160)
    # READPATT: ANY unless given (as documented: the readnoise holds for any readout)
    assert h["READPATT"] == "ANY" and h["AUTHOR"] == "me"
    history = " ".join(str(x) for x in h["HISTORY"])
    assert "test history" in history and darks.files()[0].name[:20] in history
    info = rn.get_crds_info(darks.files()[0], "none", None)
    assert info[:4] == ("NIRCAM", "NRCA1", "SUB160", "ANY")


def test_odd_ngroups_independent_does_not_crash(tmp_path):
    """Predecessor defect: 'independent' crashed for odd NGROUPS."""
    ds = simulate_dataset(tmp_path / "odd", subarray="SUB64P", ngroups=5, nints=1, ndarks=2,
                          nflats=0, seed=1, write_reffiles=False)
    stack = rn.make_cds_stack(fits.getdata(ds.files()[0], "SCI"), "independent")
    assert stack.shape[0] == 2                  # (1-0), (3-2); group 4 unused
    image = rn.make_readnoise(ds.files(), group_diff_type="independent",
                              outfile=tmp_path / "rn.fits")
    assert np.isfinite(image).all()


def test_cds_stack_types():
    data = np.arange(2 * 6 * 1 * 1, dtype=float).reshape(2, 6, 1, 1) ** 2
    ind = rn.make_cds_stack(data, "independent")
    con = rn.make_cds_stack(data, "consecutive")
    assert ind.shape == (6, 1, 1) and con.shape == (10, 1, 1)
    assert ind[0, 0, 0] == data[0, 1, 0, 0] - data[0, 0, 0, 0]
    assert ind[1, 0, 0] == data[0, 3, 0, 0] - data[0, 2, 0, 0]
    with pytest.raises(ValueError, match="group_diff_type"):
        rn.make_cds_stack(data, "sideways")


def test_outputs_go_where_asked_and_nowhere_else(darks, tmp_path, monkeypatch):
    """Predecessor defect: temporary outputs and plots were written into the cwd."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "elsewhere" / "rn.fits"
    rn.make_readnoise(darks.files(), outfile=out, save_tmp=True)
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in out.parent.iterdir()) == ["rn.fits", "rn_tmp.fits"]


def test_outfile_none_is_an_error_not_a_crash(darks):
    """Predecessor defect: output_file=None crashed deep inside."""
    with pytest.raises(ValueError, match="outfile"):
        rn.make_readnoise(darks.files(), outfile=None)
    with pytest.raises(ValueError, match="no input files"):
        rn.make_readnoise([], outfile="x.fits")


def test_parallel_slices_and_single_value_agree(darks, tmp_path):
    one = rn.make_readnoise(darks.files(), outfile=tmp_path / "a.fits")
    two = rn.make_readnoise(darks.files(), outfile=tmp_path / "b.fits", nproc=2, slice_width=37)
    np.testing.assert_allclose(one, two, rtol=1e-6)
    cols = rn.readnoise_by_slice(darks.files(), column=40, slice_width=30)
    np.testing.assert_allclose(cols, one[:, 40:70], rtol=1e-6)
    single = rn.make_readnoise(darks.files(), outfile=tmp_path / "c.fits", single_value=True)
    assert np.ptp(single) == 0
    assert single[0, 0] == pytest.approx(np.median(one[4:, 4:]), rel=0.03)


def test_readnoise_file_works_in_the_pipeline_ramp_fit(darks, tmp_path):
    out = tmp_path / "rn.fits"
    rn.make_readnoise(darks.files(), outfile=out)
    from jwst.ramp_fitting import RampFitStep
    from jwst_reffiles.pipeline.offline import offline_crds
    sim = simulate_dataset(tmp_path / "g", subarray="SUB160", ngroups=4, nints=1, ndarks=0,
                           nflats=1, seed=2, flat_flux=[300.0])
    with offline_crds(tmp_path / "crds"):
        result = RampFitStep.call(str(sim.files()[0]), override_readnoise=str(out),
                                  override_gain=str(sim.reffiles["gain"]))
    image = result[0] if isinstance(result, tuple) else result
    assert image.meta.ref_file.readnoise.name.endswith("rn.fits")
    assert np.isfinite(image.data[10:, 10:]).all()

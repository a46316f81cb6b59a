"""Files written by the simulator: valid Level-1b, complete headers, truth next to them."""

import hashlib
import re

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles.simulate import get_subarray, simulate_dataset

KEYWORDS = ["INSTRUME", "DETECTOR", "EXP_TYPE", "READPATT", "NGROUPS", "NINTS", "NFRAMES",
            "GROUPGAP", "TFRAME", "TGROUP", "SUBARRAY", "SUBSTRT1", "SUBSTRT2", "SUBSIZE1",
            "SUBSIZE2", "FASTAXIS", "SLOWAXIS", "DATE-OBS", "TIME-OBS", "DATE-BEG", "DATE-END",
            "TIME-END", "EXPSTART", "EXPMID", "EXPEND", "EFFINTTM", "EFFEXPTM", "DURATION",
            "NRSTSTRT", "NRESETS", "FRMDIVSR", "NOUTPUTS", "TELESCOP", "FILENAME", "DATAMODL",
            "FILTER", "PUPIL", "CHANNEL", "MODULE", "ZEROFRAM", "PROGRAM", "OBSERVTN", "VISIT"]


@pytest.fixture(scope="module")
def ground(tmp_path_factory):
    out = tmp_path_factory.mktemp("ground")
    return simulate_dataset(out, detector="NRCA1", subarray="SUB160", ngroups=5, nints=2,
                            ndarks=2, nflats=2, flat_flux=[800.0, 1600.0], seed=4,
                            start="2026-03-01T10:00:00", cadence_days=1.0)


def test_exposures_open_and_validate_as_level1b_and_ramp_models(ground):
    assert len(ground.files()) == 4
    for path in ground.files():
        with dm.Level1bModel(str(path)) as m:
            m.validate()
            assert m.data.dtype == np.uint16
            assert m.data.shape == (2, 5, 160, 160)
        with dm.RampModel(str(path)) as r:
            assert r.data.shape == (2, 5, 160, 160)


def test_headers_hold_every_keyword_the_spec_and_pipeline_read(ground):
    for path in ground.files():
        hdr = fits.getheader(path)
        missing = [k for k in KEYWORDS if k not in hdr]
        assert not missing, (path.name, missing)
        assert hdr["FILENAME"] == path.name
        # times are consistent with each other
        t_end = Time(f"{hdr['DATE-END'].split('T')[0]}T{hdr['TIME-END']}", scale="utc")
        assert abs(t_end.mjd - hdr["EXPEND"]) * 86400 < 0.01
        t_obs = Time(f"{hdr['DATE-OBS']}T{hdr['TIME-OBS']}", scale="utc")
        assert abs(t_obs.mjd - hdr["EXPSTART"]) * 86400 < 0.01
        assert hdr["TGROUP"] == pytest.approx(hdr["TFRAME"] * (hdr["NFRAMES"] + hdr["GROUPGAP"]))
        kind = "dark" if "DARK" in path.name else "flat"
        assert hdr["EXP_TYPE"] == {"dark": "NRC_DARK", "flat": "NRC_FLAT"}[kind]


def test_manifest_and_observation_times(ground):
    m = Table.read(ground.outdir / "manifest.ecsv")
    assert list(m["filename"]) == [p.name for p in ground.files()]
    darks = m[m["kind"] == "dark"]
    assert np.diff(Time(list(darks["date_beg"])).mjd) == pytest.approx([1.0])
    flats = m[m["kind"] == "flat"]
    assert list(flats["flux"]) == [800.0, 1600.0]
    assert Time(flats["date_beg"][0]).mjd - Time(darks["date_beg"][0]).mjd == pytest.approx(0.5)


def test_ground_names_carry_the_kind(ground):
    names = [p.name for p in ground.files()]
    assert sum("-DARK-" in n for n in names) == 2
    assert sum("-LIN-" in n for n in names) == 2
    assert all(n.endswith("_uncal.fits") for n in names)


def test_flight_names_do_not(tmp_path):
    ds = simulate_dataset(tmp_path, subarray="SUB64P", ngroups=2, nints=1, ndarks=2, nflats=2,
                          style="flight", write_reffiles=False, detector="NRCB3")
    pat = re.compile(r"^jw\d{5}\d{3}\d{3}_\d{5}_\d{5}_nrcb3_uncal\.fits$")
    names = [p.name for p in ds.files()]
    assert all(pat.match(n) for n in names), names
    assert len(set(names)) == 4
    assert not any(w in n.upper() for n in names for w in ("DARK", "LIN", "GAIN", "FLAT"))
    types = sorted(fits.getval(p, "EXP_TYPE") for p in ds.files())
    assert types == ["NRC_DARK", "NRC_DARK", "NRC_FLAT", "NRC_FLAT"]


def test_flats_may_have_fewer_integrations_than_darks(tmp_path):
    from jwst_reffiles.simulate import summarize
    ds = simulate_dataset(tmp_path, subarray="SUB64P", ngroups=2, nints=3, flat_nints=1,
                          ndarks=1, nflats=1, write_reffiles=False)
    by_kind = {r["kind"]: r for r in ds.manifest}
    assert (by_kind["dark"]["nints"], by_kind["flat"]["nints"]) == (3, 1)
    for r in ds.manifest:
        assert fits.getval(ds.outdir / r["filename"], "NINTS") == r["nints"]
        assert fits.getdata(ds.outdir / r["filename"], "SCI").shape[0] == r["nints"]
    assert "3 int (dark) / 1 int (flat) x 2 groups" in summarize(ds)


def test_truth_files_next_to_the_data(ground):
    with fits.open(ground.truth_maps) as hdul:
        names = {h.name for h in hdul}
        for m in ("BIAS", "READ_NOISE", "DARK_CURRENT", "GAIN", "QE", "SATURATION",
                  "NONLIN_ALPHA", "LIN_COEFFS", "REFPIX", "DEFECTS"):
            assert m in names
        np.testing.assert_array_equal(hdul["GAIN"].data, ground.truth.gain)
        assert len(hdul["DEFECTS"].data) == len(ground.truth.defects)
    defects = Table.read(ground.defects)
    assert set(defects["defect"]) >= {"DEAD", "HOT", "OPEN", "ADJ_OPEN", "TELEGRAPH"}
    row = ground.manifest[0]
    with fits.open(ground.outdir / row["truth_file"]) as hdul:
        assert hdul["DRIFT"].data.shape == (2, 5, 1, 2)
        assert len(hdul["CRS"].data) == row["n_cr_pixels"]


def test_truth_reference_files_validate_as_their_models(ground):
    t = ground.truth
    sub = get_subarray("NIRCAM", "SUB160")
    models = {"mask": dm.MaskModel, "saturation": dm.SaturationModel,
              "superbias": dm.SuperBiasModel, "linearity": dm.LinearityModel,
              "gain": dm.GainModel, "readnoise": dm.ReadnoiseModel, "ipc": dm.IPCModel,
              "dark_sub160": dm.DarkModel}
    assert set(ground.reffiles) == set(models)
    for key, cls in models.items():
        with cls(str(ground.reffiles[key])) as m:
            m.validate()
            assert m.meta.instrument.detector == "NRCA1"
            assert m.meta.reftype.lower() == key.split("_")[0]
            assert m.meta.useafter and m.meta.author and m.meta.pedigree
    with dm.ReadnoiseModel(str(ground.reffiles["readnoise"])) as m:
        np.testing.assert_allclose(m.data, np.sqrt(2) * t.read_noise, rtol=1e-6)
    with dm.MaskModel(str(ground.reffiles["mask"])) as m:
        from jwst_reffiles.dq import flag_value
        d = t.defects
        for cls, flag in (("DEAD", "DEAD"), ("HOT", "HOT"), ("OPEN", "OPEN"),
                          ("ADJ_OPEN", "ADJ_OPEN"), ("RC", "RC"), ("TELEGRAPH", "TELEGRAPH")):
            sel = d["defect"] == cls
            assert (m.dq[d["y"][sel], d["x"][sel]] & flag_value(flag)).all(), cls
        assert (m.dq[t.refpix] & flag_value("REFERENCE_PIXEL")).all()
        names = {n.decode() if isinstance(n, bytes) else n for n in m.dq_def["NAME"]}
        assert {"DEAD", "HOT", "REFERENCE_PIXEL", "DO_NOT_USE"} <= names
    with dm.DarkModel(str(ground.reffiles["dark_sub160"])) as m:
        assert m.data.shape == (5, 160, 160)
        assert (m.meta.subarray.name, m.meta.exposure.nframes) == ("SUB160", 1)
        rate = (t.dark_current / t.gain)[sub.slices()]
        tf = fits.getval(ground.reffiles["dark_sub160"], "TFRAME")
        assert tf == pytest.approx(ground.manifest["tframe"][0])
        np.testing.assert_allclose(m.data[-1][rate > 1], 5 * tf * rate[rate > 1], rtol=0.2)
    with dm.SaturationModel(str(ground.reffiles["saturation"])) as m:
        assert (m.data < t.saturation).all()


def test_nothing_half_written_is_left(ground):
    leftovers = [p for p in ground.outdir.rglob("*") if ".tmp" in p.name]
    assert leftovers == []


def test_same_seed_same_files(tmp_path):
    def digest(ds):
        return [hashlib.sha256(fits.getdata(p, "SCI").tobytes()).hexdigest() for p in ds.files()]

    kw = dict(subarray="SUB64P", ngroups=3, nints=1, ndarks=1, nflats=1, write_reffiles=False,
              seed=77)
    a = simulate_dataset(tmp_path / "a", **kw)
    b = simulate_dataset(tmp_path / "b", **kw)
    c = simulate_dataset(tmp_path / "c", **{**kw, "seed": 78})
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)


def test_miri_imager_dark_and_flat(tmp_path):
    ds = simulate_dataset(tmp_path, detector="MIRIMAGE", subarray="FULL", readpatt="FAST",
                          ngroups=3, nints=1, ndarks=1, nflats=1, flat_flux=[200.0], seed=1)
    for path in ds.files():
        with dm.Level1bModel(str(path)) as m:
            m.validate()
            assert m.data.shape == (1, 3, 1024, 1032)
            assert m.meta.instrument.name == "MIRI"
    types = sorted(fits.getval(p, "EXP_TYPE") for p in ds.files())
    assert types == ["MIR_DARKIMG", "MIR_FLATIMAGE"]
    assert {"dark_full", "mask", "linearity", "saturation", "gain", "readnoise", "reset"} <= set(ds.reffiles)
    assert "superbias" not in ds.reffiles          # MIRI has no superbias step
    with dm.DarkMIRIModel(str(ds.reffiles["dark_full"])) as m:
        m.validate()
        assert m.data.ndim == 4
    # reference columns carry no flat signal
    flat = ds.files("flat")[0]
    data = fits.getdata(flat, "SCI").astype(float)
    signal = data[0, -1] - data[0, 0]
    assert np.median(signal[:, :4]) < 5 and np.median(signal[:, 4:-4]) > 100


@pytest.mark.parametrize("bad, word", [
    (dict(detector="NRCX1"), "NRCX1"),
    (dict(subarray="SUB999"), "SUB999"),
    (dict(flat_flux=[-5.0]), "flat_flux"),
    (dict(ndarks=2, dark_starts=["2026-01-01T00:00:00"]), "start times"),
    (dict(style="space"), "style"),
    (dict(truth_parameters={"bogus": 1}), "bogus"),
])
def test_bad_arguments_are_named(tmp_path, bad, word):
    kw = dict(subarray="SUB64P", ngroups=2, nints=1, ndarks=1, nflats=1, write_reffiles=False)
    with pytest.raises(ValueError, match=word):
        simulate_dataset(tmp_path, **{**kw, **bad})


def test_full_frame_nircam_exposure(tmp_path):
    """Full frame: 2048x2048, four outputs each with its own drift."""
    from jwst_reffiles.simulate import ExposureSpec, make_truth, simulate_exposure
    truth = make_truth("NRCA1", seed=2)
    spec = ExposureSpec("NRCA1", "FULL", "RAPID", ngroups=2, nints=1, kind="dark", flux=0.0,
                        start="2026-05-05T05:05:05")
    row = simulate_exposure(truth, spec, tmp_path, seed=2)
    path = tmp_path / row["filename"]
    with dm.Level1bModel(str(path)) as m:
        m.validate()
        assert m.data.shape == (1, 2, 2048, 2048)
        assert (m.meta.exposure.noutputs, m.meta.exposure.frame_time) == (4, pytest.approx(10.73676))
        resid = m.data[0].astype(float) - truth.bias
    with fits.open(tmp_path / row["truth_file"]) as hdul:
        drift = hdul["DRIFT"].data                   # (1, 2, 4, 2)
    assert drift.shape == (1, 2, 4, 2)
    # each output's bottom reference rows follow that output's drift
    for amp in range(4):
        cols = np.arange(amp * 512, (amp + 1) * 512)
        for p in (0, 1):
            c = cols[cols % 2 == p]
            measured = resid[:, :4, c].mean(axis=(1, 2))
            np.testing.assert_allclose(measured, drift[0, :, amp, p], atol=1.0)

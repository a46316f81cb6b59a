"""Stage 1 inputs: catalog from simulator files, grouping rules, output layout."""

import multiprocessing as mp
import os
import random

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from jwst_reffiles.config import load_config
from jwst_reffiles.inputs import InputError, build_catalog, collect_files, make_groups
from jwst_reffiles.inputs.grouping import same_illumination
from jwst_reffiles.layout import make_layout
from jwst_reffiles.simulate import simulate_dataset

ENV = {"JWST_MKREFS_OUTDIR": "/unused"}
SMALL = dict(subarray="SUB64P", ngroups=2, nints=1, write_reffiles=False, cosmic_rays=False)


@pytest.fixture(scope="module")
def cfg():
    return load_config(environ=ENV)


@pytest.fixture(scope="module")
def ground(tmp_path_factory):
    out = tmp_path_factory.mktemp("ground")
    return simulate_dataset(out, ndarks=6, nflats=4, cadence_days=0.6, seed=1, **SMALL)


@pytest.fixture(scope="module")
def flight(tmp_path_factory):
    out = tmp_path_factory.mktemp("flight")
    return simulate_dataset(out, ndarks=2, nflats=2, style="flight", seed=2, **SMALL)


# ---- collecting files -------------------------------------------------------

def test_files_from_globs_directories_lists_and_duplicates(ground, tmp_path):
    d = ground.outdir
    darks = [str(p) for p in ground.files("dark")]
    listing = tmp_path / "files.txt"
    listing.write_text("# darks\n" + "\n".join(darks[:2]) + "\n")
    link = tmp_path / "linked_uncal.fits"
    os.symlink(darks[0], link)
    files, notes = collect_files([str(d / "*DARK*"), str(d), f"@{listing}", str(link)],
                                 r"(.*)_uncal.fits$")
    assert len(files) == 10
    assert sum("same file" in n for n in notes) >= 3          # list, dir, link duplicates
    # the pattern keeps only uncal files: manifest, truth files are not inputs
    assert all(f.name.endswith("_uncal.fits") for f in files)


def test_two_different_files_with_one_name_are_refused(ground, tmp_path):
    copy = tmp_path / ground.files()[0].name
    copy.write_bytes(ground.files()[0].read_bytes())
    with pytest.raises(InputError, match="2 different input files are called"):
        collect_files([str(ground.files()[0]), str(copy)])


def test_paths_that_give_no_file_are_all_named(tmp_path):
    with pytest.raises(InputError) as err:
        collect_files([str(tmp_path / "nothing*.fits"), str(tmp_path / "missing.fits"),
                       f"@{tmp_path / 'nolist.txt'}"])
    msg = str(err.value)
    assert "nothing*.fits" in msg and "missing.fits" in msg and "nolist.txt" in msg


# ---- catalog ----------------------------------------------------------------

def test_catalog_of_ground_style_files(ground, cfg):
    cat = build_catalog(ground.files(), cfg["inputfiles"], extra_keys=cfg["grouping"]["group_by"])
    t = cat.table
    assert len(t) == 10 and not cat.unclassified
    assert sorted(t["imtype"]) == ["dark"] * 6 + ["flat"] * 4
    assert set(t["classified_by"]) == {"file name"}
    # MJD is the end of the exposure (DATE-END + TIME-END), as in the header's EXPEND
    for r in t:
        assert r["MJD"] == pytest.approx(fits.getval(r["filename"], "EXPEND"), abs=1e-6)
    assert list(t["MJD"]) == sorted(t["MJD"])
    for k in ("INSTRUME", "DETECTOR", "NGROUPS", "NINTS", "TGROUP", "SUBARRAY", "FILTER",
              "READPATT"):
        assert k in t.colnames


def test_flight_names_are_classified_from_the_header(flight, cfg):
    cat = build_catalog(flight.files(), cfg["inputfiles"])
    assert set(cat.table["classified_by"]) == {"EXP_TYPE"}
    for r in cat.table:
        assert r["imtype"] == {"NRC_DARK": "dark", "NRC_FLAT": "flat"}[r["EXP_TYPE"]]


def test_exptype_table_is_configurable_and_unknown_types_are_reported(flight, cfg):
    inp = {**cfg["inputfiles"], "exptype_flat": ["NRC_LED"]}
    cat = build_catalog(flight.files(), inp)
    assert len(cat.table) == 2 and len(cat.unclassified) == 2
    assert all("NRC_FLAT" in why for _, why in cat.unclassified)
    assert "unclassified" in cat.summary()


def test_mjd_from_other_keywords(ground, cfg):
    f = ground.files()[:2]
    by_mjd = build_catalog(f, {**cfg["inputfiles"], "mjdobs_fitskey": "EXPSTART"}).table
    by_date = build_catalog(f, {**cfg["inputfiles"], "dateobs_fitskey": "DATE-OBS",
                                "timeobs_fitskey": "TIME-OBS"}).table
    np.testing.assert_allclose(by_mjd["MJD"], by_date["MJD"], atol=1e-6)
    for r in by_mjd:
        assert r["MJD"] == pytest.approx(fits.getval(r["filename"], "EXPSTART"))


def test_missing_required_keywords_are_all_reported(ground, cfg, tmp_path):
    broken = []
    for p, key in zip(ground.files()[:3], ("NGROUPS", "SUBARRAY", "DATE-END")):
        q = tmp_path / p.name
        with fits.open(p) as hdul:
            del hdul[0].header[key]
            hdul.writeto(q)
        broken.append((q, key))
    with pytest.raises(InputError) as err:
        build_catalog([q for q, _ in broken] + ground.files()[3:], cfg["inputfiles"])
    assert len(err.value.problems) == 3
    for q, key in broken:
        assert any(str(q) in p and key in p for p in err.value.problems)


def test_unreadable_dates_and_non_fits_files(ground, cfg, tmp_path):
    q = tmp_path / ground.files()[0].name
    with fits.open(ground.files()[0]) as hdul:
        hdul[0].header["DATE-END"] = "last tuesday"
        hdul.writeto(q)
    fake = tmp_path / "NRC-DARK-fake_uncal.fits"
    fake.write_text("not a FITS file")
    with pytest.raises(InputError) as err:
        build_catalog([q, fake], cfg["inputfiles"])
    msg = str(err.value)
    assert "last tuesday" in msg and "DATE-END" in msg and str(fake) in msg


# ---- grouping ---------------------------------------------------------------

def table(darks=(), flats=(), **extra):
    """A synthetic master table with the given dark and flat MJDs."""
    rows = [("dark", m) for m in darks] + [("flat", m) for m in flats]
    n = len(rows)
    t = Table({"fileID": np.arange(n), "imtype": [r[0] for r in rows],
               "MJD": [float(r[1]) for r in rows],
               "basename": [f"{r[0]}{i:02d}_uncal.fits" for i, r in enumerate(rows)],
               "filename": [f"/d/{r[0]}{i:02d}_uncal.fits" for i, r in enumerate(rows)],
               "INSTRUME": ["NIRCAM"] * n, "DETECTOR": ["NRCA1"] * n,
               "READPATT": extra.get("readpatt", ["RAPID"] * n), "SUBARRAY": ["FULL"] * n,
               "NGROUPS": [10] * n, "NINTS": [1] * n})
    return t


def test_flat_pairs_are_of_one_illumination_when_illuminations_interleave():
    # a photon-transfer campaign: 3000, 9000, 3000, 9000, 3000, 9000 in time order
    t = table(darks=[0.0, 0.1], flats=[1.0, 1.1, 1.2, 1.3, 1.4, 1.5])
    levels = [np.nan, np.nan, 3000.0, 9000.0, 3010.0, 8950.0, 2990.0, 9100.0]
    t["LEVEL"] = levels
    same = same_illumination(max_level_ratio=1.2)
    g = make_groups(t, "gb", "FF", {"FF": 2.0}, flat_pairs=same)
    pairs = [[t["LEVEL"][m.fileID] for m in grp.members] for grp in g.groups]
    assert pairs == [[3000.0, 3010.0], [9000.0, 8950.0]]
    assert len(g.unused) == 2
    assert any("same illumination (level 2990 DN/s)" in why for _, why in g.unused)
    # DDFF pairs its flats the same way
    g = make_groups(t, "ga", "DDFF", {"FF": 2.0, "DDFF": 10.0}, flat_pairs=same)
    assert [[t["LEVEL"][m.fileID] for m in grp.files("flat")] for grp in g.groups] == \
        [[3000.0, 3010.0], [9000.0, 8950.0]]
    # without the rule: the next file in time, whatever its illumination
    g = make_groups(t, "gb", "FF", {"FF": 2.0})
    assert [[t["LEVEL"][m.fileID] for m in grp.members] for grp in g.groups][0] == \
        [3000.0, 9000.0]
    # a keyword rule: flats of other filters never pair; a missing level does not decide
    t["FILTER"] = ["F1", "F1", "F1", "F2", "F1", "F2", "F1", "F2"]
    t["LEVEL"] = [np.nan] * 8
    g = make_groups(t, "gb", "FF", {}, flat_pairs=same_illumination(["FILTER"], 1.2))
    assert [[str(t["FILTER"][m.fileID]) for m in grp.members] for grp in g.groups] == \
        [["F1", "F1"], ["F2", "F2"]]


def mjds(grouping):
    return [sorted(m.MJD for m in g.members) for g in grouping.groups]


def test_dd_pairs_within_max_delta_and_drops_the_rest():
    g = make_groups(table(darks=[0, 0.5, 3, 3.1, 10, 14.5]), "rn", "DD", {"DD": 2.0})
    assert mjds(g) == [[0, 0.5], [3, 3.1]]
    dropped = {name for name, _ in g.unused}
    assert len(dropped) == 2 and all("max_Delta_MJD=2.0" in why for _, why in g.unused)
    # no limit: consecutive pairs
    g = make_groups(table(darks=[0, 0.5, 3, 3.1, 10, 14.5]), "rn", "DD", {})
    assert mjds(g) == [[0, 0.5], [3, 3.1], [10, 14.5]]


def test_pairs_never_reuse_a_file_and_odd_one_out_is_reported():
    g = make_groups(table(flats=[0, 0.1, 0.2]), "gb", "FF", {"FF": 1.0})
    assert mjds(g) == [[0, 0.1]]
    assert len(g.unused) == 1 and g.unused[0][0] == "flat02_uncal.fits"


def test_ddff_within_all_three_limits_least_used_dark_pair_first():
    t = table(darks=[0, 0.2, 5, 5.2], flats=[0.5, 0.6, 1.0, 1.1, 20, 20.1])
    g = make_groups(t, "ga", "DDFF", {"DD": 2.0, "FF": 2.0, "DDFF": 10.0})
    assert len(g.groups) == 2
    first, second = g.groups
    assert [m.label for m in first.members] == ["D1", "D2", "F1", "F2"]
    # the nearest dark pair serves the first flat pair; the second flat pair gets
    # the other dark pair because it is used less, although farther away
    assert mjds(g) == [[0, 0.2, 0.5, 0.6], [1.0, 1.1, 5, 5.2]]
    assert all(g_.mjd_span <= 10.0 for g_ in g.groups)
    assert {n for n, _ in g.unused} == {"flat08_uncal.fits", "flat09_uncal.fits"}
    # dark pairs are shared when there are fewer of them
    t = table(darks=[0, 0.2], flats=[0.5, 0.6, 1.0, 1.1])
    g = make_groups(t, "ga", "DDFF", {"DD": 2.0, "FF": 2.0, "DDFF": 10.0})
    assert len(g.groups) == 2 and all(m.MJD in (0, 0.2) for gr in g.groups
                                      for m in gr.files("dark"))


@pytest.mark.parametrize("imtypes, expect", [
    ("D", [[0], [1], [2]]), ("F", [[5], [6]]), ("D+", [[0, 1, 2]]), ("F+", [[5, 6]]),
    ("D+F+", [[0, 1, 2, 5, 6]]), ("F+D+", [[0, 1, 2, 5, 6]]), ("FD+", [[0, 1, 2, 5, 6]]),
    ("DF+", [[0, 1, 2, 5, 6]]),
])
def test_single_and_all_imtypes(imtypes, expect):
    g = make_groups(table(darks=[0, 1, 2], flats=[5, 6]), "x", imtypes, {})
    assert mjds(g) == expect


def test_ffdd_is_ddff():
    t = table(darks=[0, 0.1], flats=[0.2, 0.3])
    a = make_groups(t, "x", "FFDD", {})
    b = make_groups(t, "x", "DDFF", {})
    assert a.imtypes == "DDFF" and mjds(a) == mjds(b)


def test_mixed_readout_patterns_never_share_a_group():
    t = table(darks=[0, 0.1, 0.2, 0.3],
              readpatt=["RAPID", "BRIGHT2", "RAPID", "BRIGHT2"])
    g = make_groups(t, "x", "DD", {"DD": 2.0})
    assert len(g.groups) == 2
    for grp in g.groups:
        assert len({t["READPATT"][m.fileID] for m in grp.members}) == 1
    g = make_groups(t, "x", "D+", {})
    assert sorted(len(grp.members) for grp in g.groups) == [2, 2]
    # unless the user drops READPATT from group_by
    g = make_groups(t, "x", "D+", {}, group_by=["DETECTOR"])
    assert len(g.groups) == 1


def test_grouping_is_independent_of_input_order_and_cmdids_are_stable():
    t = table(darks=[0, 0.5, 3, 3.1, 4], flats=[0.2, 0.3, 3.2, 3.3])
    ref = make_groups(t, "ga", "DDFF", {"DD": 2.0, "FF": 2.0, "DDFF": 10.0})
    for seed in range(5):
        idx = list(range(len(t)))
        random.Random(seed).shuffle(idx)
        g = make_groups(t[idx], "ga", "DDFF", {"DD": 2.0, "FF": 2.0, "DDFF": 10.0})
        assert [x.cmdID for x in g.groups] == [x.cmdID for x in ref.groups]
        assert mjds(g) == mjds(ref)
    ids = [x.cmdID for x in ref.groups]
    assert len(set(ids)) == len(ids) and all(len(i) == 8 for i in ids)
    other = make_groups(t, "gb", "DDFF", {"DD": 2.0, "FF": 2.0, "DDFF": 10.0})
    assert not set(ids) & {x.cmdID for x in other.groups}        # reflabel is part of the id


def test_groups_table_lists_every_member():
    g = make_groups(table(darks=[0, 0.5]), "rn", "DD", {})
    t = g.table()
    assert list(t["label"]) == ["D1", "D2"] and set(t["cmdID"]) == {g.groups[0].cmdID}


# ---- layout -----------------------------------------------------------------

def out_cfg(root, **kw):
    base = {"outrootdir": str(root), "outsubdir": None, "runID": "AUTO", "runIDNdigits": 3,
            "addsuffix": None, "ssbdir": None, "skip_runID_ssbdir": False}
    return {**base, **kw}


def test_output_names_follow_the_spec(tmp_path):
    lay = make_layout(out_cfg(tmp_path, outsubdir="test1", runID=4, addsuffix="bla"))
    assert lay.rundir == tmp_path / "test1" / "004"
    assert lay.reffile_path("bpm", "1a2b3c4d", "bpm") == \
        tmp_path / "test1" / "004" / "bpm" / "bpm_test1_004.bla.1a2b3c4d.bpm.fits"
    assert lay.ssbdir == tmp_path / "test1" / "004" / "ssb"
    lay = make_layout(out_cfg(tmp_path, runID=None))
    assert lay.rundir == tmp_path and lay.reffile_name("rn", "x", "rdnoise") == "rn.x.rdnoise.fits"
    lay = make_layout(out_cfg(tmp_path, outsubdir="s", skip_runID_ssbdir=True, runID=2))
    assert lay.ssbdir == tmp_path / "s" / "ssb"
    lay = make_layout(out_cfg(tmp_path, ssbdir=str(tmp_path / "elsewhere")))
    assert lay.ssbdir == tmp_path / "elsewhere"


def test_auto_run_id_is_the_latest_run_and_a_new_run_the_highest_plus_one(tmp_path):
    # no run yet: the first is 1, and nothing is made without create
    assert make_layout(out_cfg(tmp_path), create=False).run_id == "001"
    assert not (tmp_path / "001").exists()
    (tmp_path / "007").mkdir()
    (tmp_path / "003").mkdir()
    (tmp_path / "notarun").mkdir()
    assert make_layout(out_cfg(tmp_path), create=False).run_id == "007"
    assert make_layout(out_cfg(tmp_path)).run_id == "007"          # resumed
    assert make_layout(out_cfg(tmp_path), create=False, new_run=True).run_id == "008"
    assert not (tmp_path / "008").exists()
    assert make_layout(out_cfg(tmp_path), new_run=True).run_id == "008"
    assert make_layout(out_cfg(tmp_path, runIDNdigits=5), new_run=True).run_id == "00009"
    assert make_layout(out_cfg(tmp_path)).run_id == "009"


def _claim(args):
    root, barrier = args
    barrier.wait()
    return make_layout(out_cfg(root), new_run=True).run_id


def test_concurrent_auto_run_ids_never_collide(tmp_path):
    n = 8
    with mp.Manager() as manager:
        barrier = manager.Barrier(n)
        with mp.Pool(n) as pool:
            ids = pool.map(_claim, [(tmp_path, barrier)] * n)
    assert sorted(ids) == [f"{i:03d}" for i in range(1, n + 1)]


def test_illumination_level_is_the_measured_signal_rate(tmp_path):
    from jwst_reffiles.inputs.catalog import illumination_level
    ds = simulate_dataset(tmp_path / "sim", subarray="SUB64P", ngroups=6, nints=1, ndarks=1,
                          nflats=2, flat_flux=[3000.0, 9000.0], seed=4, cosmic_rays=False,
                          write_reffiles=False)
    dark, bright = (illumination_level(f) for f in ds.files("flat"))
    assert 2.7 < bright / dark < 3.3          # gain and QE are the same pixels' for both
    gain = float(np.median(ds.truth.gain))
    assert abs(dark / (3000.0 / gain) - 1) < 0.15        # e-/s over the gain, QE ~ 1

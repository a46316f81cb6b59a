"""Bad pixels from flats: every injected class found, nothing else."""

import numpy as np
import pytest
from astropy.io import fits
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles.bad_pixel_mask import badpix_from_flats as bf
from jwst_reffiles.dq import flag_value

N = 320


def scores(sim, dq, cls):
    d = sim.truth.defects
    sel = (d["y"] < N) & (d["x"] < N) & (d["defect"] == cls)
    truth = np.zeros((N, N), bool)
    truth[d["y"][sel], d["x"][sel]] = True
    found = (dq & flag_value(cls)) > 0
    tp = (truth & found).sum()
    return tp / max(1, truth.sum()), tp / max(1, found.sum()), truth.sum()


@pytest.mark.parametrize("normalization", ["smoothed", "fit2d"])
def test_every_injected_class_with_high_precision_and_recall(flats, normalization):
    sim, rates, tmp = flats
    dq = bf.find_bad_pix(rates, normalization_method=normalization, manual_flag_file=None,
                         do_not_use=["DEAD", "OPEN"], quality_check=False)
    for cls in ("DEAD", "LOW_QE", "OPEN", "ADJ_OPEN"):
        recall, precision, n = scores(sim, dq, cls)
        assert n >= 20, cls
        assert recall >= 0.99 and precision >= 0.99, (cls, recall, precision)
    dead = (dq & flag_value("DEAD")) > 0
    assert (dq[dead] & flag_value("DO_NOT_USE")).all()
    low = (dq & flag_value("LOW_QE")) > 0
    assert not (dq[low] & flag_value("DO_NOT_USE")).any()
    assert ((dq & flag_value("REFERENCE_PIXEL")) > 0).sum() == sim.truth.refpix[:N, :N].sum()


def test_absolute_rate_search_and_reference_file(flats):
    sim, rates, tmp = flats
    out = tmp / "mask" / "bpm.fits"
    dq = bf.find_bad_pix(rates, dead_search_type="absolute_rate", manual_flag_file=None,
                         output_file=out, quality_check=True, history="from simulated flats")
    recall, precision, _ = scores(sim, dq, "DEAD")
    assert recall >= 0.99 and precision >= 0.99
    with dm.MaskModel(str(out)) as m:
        m.validate()
        np.testing.assert_array_equal(m.dq, dq)
        assert m.meta.subarray.name == "SUB320" and m.meta.reftype == "MASK"
    from astropy.io import fits
    h = fits.getheader(out)
    assert h["LOWQEMAX"] == 0.5 and h["OPENMAX"] == 1.05


def test_manual_flags(tmp_path):
    path = tmp_path / "manual.txt"
    path.write_text("# x y flag\nx y flag\n10 12 HOT\n20:22 5 RC\n3 :2 DEAD\n")
    mask = bf.manual_flags(path, (30, 30), ["DEAD"])
    assert mask[12, 10] == flag_value("HOT")
    assert (mask[5, 20:23] == flag_value("RC")).all() and mask[5, 23] == 0
    assert (mask[0:3, 3] == flag_value(["DEAD", "DO_NOT_USE"])).all()
    assert bf.range_format("34:36", 100) == [34, 37]        # [start, stop)
    assert bf.range_format("98:", 100) == [98, 100]
    assert bf.determine_manual_file("NIRCAM", "NRCZZ") is None


def test_open_pixels_judged_by_the_median_of_their_neighbours():
    """Found in a demo with another seed: one neighbour of high gain (1.048 in DN/s)
    hid an OPEN pixel; one on the subarray's edge has 3 neighbours; a hot neighbour
    must not make a LOW_QE pixel OPEN."""
    rate = np.ones((30, 30))
    rate[10, 10] = 0.3                                          # OPEN, one weak neighbour
    rate[9, 10], rate[11, 10], rate[10, 9], rate[10, 11] = 1.16, 1.048, 1.15, 1.17
    rate[20, 29] = 0.3                                          # OPEN on the right edge
    rate[19, 29], rate[21, 29], rate[20, 28] = 1.18, 1.16, 1.17
    rate[5, 20] = 0.35                                          # LOW_QE next to a hot pixel
    rate[5, 21] = 3.0
    rate[0, 0] = 0.3                                            # a corner: not judged
    rate[0, 1] = rate[1, 0] = 1.2
    low, opn, adj = bf.find_open_and_low_qe_pixels(rate)
    assert opn[10, 10] and opn[20, 29] and adj[11, 10] and adj[20, 28]
    assert low[5, 20] and not opn[5, 20] and not adj[5, 21]
    assert low[0, 0] and not opn[0, 0]
    assert adj[9:12, 9:12].sum() == 8 and adj[19:22, 28:30].sum() == 5   # boxes, clipped
    assert opn.sum() == 2 and adj.sum() == 13


def test_helpers():
    rate = np.ones((20, 20))
    rate[5, 5] = 0.01
    rate[10, 10] = 0.3
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        rate[10 + dy, 10 + dx] = 1.2
    rate[15, 15] = 0.4
    low, opn, adj = bf.find_open_and_low_qe_pixels(rate)
    assert low[15, 15] and not low[10, 10] and opn[10, 10] and adj.sum() == 8
    assert not low[5, 5]                                       # that one is dead
    assert bf.dead_pixels_absolute_rate(rate)[5, 5] == 1
    assert bf.dead_pixels_flux_check(bf.dead_pixels_absolute_rate(rate), np.full((20, 20), 5e4),
                                     45000).sum() == 0
    combined = bf.combine_individual_maps({"DEAD": rate < 0.05, "LOW_QE": low}, ["dead"])
    assert combined[5, 5] == flag_value(["DEAD", "DO_NOT_USE"])
    assert combined[15, 15] == flag_value("LOW_QE")
    with pytest.raises(ValueError, match="SQUISHY"):
        bf.flag_type_check(["dead", "squishy"])
    image = np.ones((30, 30))
    image[:4] = np.nan                                         # reference rows left out
    assert np.allclose(bf.smooth(image, 5)[4:], 1.0)
    assert np.allclose(bf.smooth(np.ones((30, 30)), 5, "median"), 1.0)
    x, y = bf.get_adjacent_pixels(0, 0, 10, 10)
    assert sorted(zip(x, y)) == [(0, 1), (1, 0)]
    surface = bf.fit_surface(np.fromfunction(lambda y, x: 1 + 0.01 * x + 0.02 * y, (40, 50)), 1)
    assert np.allclose(surface, np.fromfunction(lambda y, x: 1 + 0.01 * x + 0.02 * y, (40, 50)))
    padded = bf.pad_with_refpix(np.ones((2040, 2040)), "NIRCAM")
    assert padded.shape == (2048, 2048) and bf.science_pixels(padded, "NIRCAM").shape == (2040, 2040)


@pytest.mark.parametrize("args, word", [
    (dict(pedigree="SOMETIMES"), "pedigree"), (dict(useafter="yesterday"), "useafter"),
    (dict(author=""), "author"), (dict(dead_search_type="vibes"), "dead_search_type"),
])
def test_bad_arguments(flats, args, word):
    sim, rates, tmp = flats
    with pytest.raises(ValueError, match=word):
        bf.find_bad_pix(rates, manual_flag_file=None, quality_check=False, **args)


def test_every_flat_is_stacked_once(flats):
    """Predecessor defect: the first flat file was stacked twice."""
    sim, rates, tmp = flats
    stack, instrument, detector = bf.read_files(rates, "sigma_rate")
    assert stack.shape[0] == len(rates) and (instrument, detector) == ("NIRCAM", "NRCA1")
    from astropy.io import fits
    for k, f in enumerate(rates):
        np.testing.assert_array_equal(stack[k], fits.getdata(f, "SCI"))


def test_miri_imager_shorted_columns_are_do_not_use(tmp_path):
    """MIRI imager masks flag its shorted columns (full-frame columns, placed in subarrays)."""
    assert bf.miri_bad_columns((4, 1032))[:, [383, 384, 385, 386]].tolist() == [[0, 1, 1, 0]] * 4
    sub = bf.miri_bad_columns((4, 100), xstart=351)          # holds full-frame 350..449
    assert np.flatnonzero(sub[0]).tolist() == [34, 35]
    assert not bf.miri_bad_columns((4, 100), xstart=1).any()
    rng = np.random.default_rng(1)
    files = []
    for k in range(3):
        hdr = fits.Header({"INSTRUME": "MIRI", "DETECTOR": "MIRIMAGE", "SUBARRAY": "BRIGHTSKY",
                           "SUBSTRT1": 321, "SUBSTRT2": 1, "READPATT": "FAST"})
        path = tmp_path / f"flat{k}_rate.fits"
        fits.HDUList([fits.PrimaryHDU(header=hdr),
                      fits.ImageHDU(rng.normal(100, 1, (64, 128)).astype(np.float32),
                                    name="SCI")]).writeto(path)
        files.append(str(path))
    dq = bf.find_bad_pix(files, manual_flag_file=None, quality_check=False)
    shorted = np.zeros(dq.shape, bool)
    shorted[:, [384 - 320, 385 - 320]] = True
    assert ((dq[shorted] & flag_value("DO_NOT_USE")) > 0).all()
    # a MIRI MRS detector has none listed
    for f in files:
        fits.setval(f, "DETECTOR", value="MIRIFULONG")
    dq = bf.find_bad_pix(files, manual_flag_file=None, quality_check=False)
    assert not ((dq[shorted] & flag_value("DO_NOT_USE")) > 0).any()

import pytest

from jwst_reffiles.simulate import frame_time, get_detector, get_readout_pattern, get_subarray


def test_nircam_full_frame_time_matches_the_instrument():
    geom = get_detector("NRCA1")
    assert frame_time(geom, get_subarray("NIRCAM", "FULL")) == pytest.approx(10.73676, abs=1e-5)
    # single-output subarrays are much faster
    assert frame_time(geom, get_subarray("NIRCAM", "SUB160")) == pytest.approx(0.27692, abs=1e-4)


def test_nircam_reference_border_is_four_pixels():
    ref = get_detector("NRCB2").reference_pixel_mask()
    assert ref.shape == (2048, 2048)
    assert ref.sum() == 2048 ** 2 - 2040 ** 2
    assert ref[:4].all() and ref[-4:].all() and ref[:, :4].all() and ref[:, -4:].all()
    assert not ref[4:-4, 4:-4].any()


def test_miri_reference_columns_and_interleaved_outputs():
    geom = get_detector("MIRIMAGE")
    ref = geom.reference_pixel_mask()
    assert ref.shape == (1024, 1032)
    assert ref[:, :4].all() and ref[:, -4:].all() and not ref[:, 4:-4].any()
    amp = geom.amplifier_map()
    assert list(amp[:8]) == [0, 1, 2, 3, 0, 1, 2, 3]


def test_nircam_amplifiers_are_column_blocks_and_subarrays_use_one_output():
    geom = get_detector("NRCA1")
    amp = geom.amplifier_map()
    assert [amp[0], amp[511], amp[512], amp[2047]] == [0, 0, 1, 3]
    sub = get_subarray("NIRCAM", "SUB640")
    assert set(geom.amplifier_map(sub.xstart, sub.xsize, sub.noutputs)) == {0}


def test_subarray_slices_select_the_right_corner():
    sub = get_subarray("nircam", "sub160")
    ys, xs = sub.slices()
    assert (ys.start, ys.stop, xs.start, xs.stop) == (0, 160, 0, 160)


@pytest.mark.parametrize("call, word", [
    (lambda: get_detector("NRCZ9"), "NRCZ9"),
    (lambda: get_subarray("NIRCAM", "SUB999"), "SUB999"),
    (lambda: get_readout_pattern("TURBO"), "TURBO"),
])
def test_unknown_names_are_reported_with_the_known_ones(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_readout_patterns():
    p = get_readout_pattern("DEEP8")
    assert (p.nframes, p.groupgap) == (8, 12)

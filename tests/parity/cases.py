"""Every documented function, called as its documentation says, with the same inputs
for ours and for the predecessor (``jwst-reffiles==1.0.1``).

A case names the function (below ``jwst_reffiles``), its arguments (numpy arrays,
builtins; :func:`D` is a file of :mod:`tests.parity.data`, :func:`H` that file opened
as an astropy HDUList) and how to compare: ``rtol``/``atol`` for floats, whether dtypes
must agree.  A case whose results differ on purpose names its deviation (a key of
:data:`DEVIATIONS`, each listed in ``docs/deviations.md``), with the check ours must pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tests.parity.data import N


def D(name):
    return ("__data__", name)


def H(name):
    return ("__hdulist__", name)


@dataclass(frozen=True)
class Case:
    id: str
    func: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    rtol: float = 1e-6
    atol: float = 0.0
    dtype: bool = True
    deviation: str | None = None
    raises: bool = False          # the documented behaviour is an exception

    @property
    def dotted(self):
        return "jwst_reffiles." + self.func


_rng = np.random.default_rng(11)
IMG = _rng.normal(10.0, 1.0, (N, N))
IMG[3, 4] = 60.0
IMG[7, 7] = np.nan
STACK = _rng.normal(100.0, 2.0, (9, 8, 8)).astype(np.float32)
STACK[2, 3, 3] = 500.0
RAMPS = np.cumsum(_rng.normal(0, 3, (2, 5, 8, 8)), axis=1).astype(np.float32)
JUMPS = np.zeros((12, 6, 6), bool)
JUMPS[:3, 1, 1] = True                        # early jumps only
JUMPS[:, 2, 2] = True                         # jumps everywhere
JUMPS[::2, 3, 3] = True
JUMPS[10:, 4, 4] = True                       # late jumps
SLOPES = _rng.normal(1.0, 0.1, (7, 5, 5))
NJUMPS = (_rng.random((7, 5, 5)) < 0.2).astype(int)
GOOD = (NJUMPS == 0).astype(int)
GOOD[:, 0, 0] = 0                             # no good slope
GOOD[:3, 1, 1] = 0
PED = _rng.normal(1000.0, 3.0, (16, 16))
PED[2, 2], PED[5, 9] = 1100.0, 900.0
FLAT = _rng.normal(1.0, 0.01, (16, 16))
FLAT[4, 4] = 0.3                              # open: all four neighbours bright
for _dy, _dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
    FLAT[4 + _dy, 4 + _dx] = 1.2
FLAT[10, 10] = 0.3                            # low QE
FLAT_ONE_LOW = FLAT.copy()
FLAT_ONE_LOW[5, 4] = 1.04                     # one of the open pixel's neighbours under 1.05
FLAT_EDGE = FLAT.copy()
FLAT_EDGE[0, 7] = 0.3                         # open on the edge
FLAT_EDGE[0, 6], FLAT_EDGE[0, 8], FLAT_EDGE[1, 7] = 1.2, 1.2, 1.2
FLAT[12, 3] = 0.01                            # dead
MAP = (_rng.random((6, 6)) < 0.3).astype(np.uint32)
MAP32 = (_rng.random((N, N)) < 0.05).astype(np.uint32)
HDR = {"EFFEXPTM": 10.0, "TFRAME": 1.0, "TGROUP": 1.0, "NFRAMES": 1, "NGROUPS": 5,
       "SUBARRAY": "FULL", "INSTRUME": "NIRCAM", "DETECTOR": "NRCA1", "READPATT": "RAPID",
       "FILENAME": "a.fits"}

SIX = (1, 2, 4, 5, 6, 7)             # the FULL darks of tests.parity.data
BPD = "dark_current.badpix_from_darks."
BPF = "bad_pixel_mask.badpix_from_flats."
BPM = "bad_pixel_mask.bad_pixel_mask."
RN = "readnoise.readnoise."
SB = "superbias.superbias."
DQF = "utils.dq_flags."

CASES = [
    # ---- dark_current.badpix_from_darks
    Case("darks.add_refpix", BPD + "add_refpix", (MAP, (4, 4, 2, 3))),
    Case("darks.apply_flags", BPD + "apply_flags", (MAP.astype(int), ["HOT", "DO_NOT_USE"])),
    Case("darks.apply_flags.unknown", BPD + "apply_flags", (MAP, ["NOT_A_FLAG"]), raises=True),
    Case("darks.check_metadata.same", BPD + "check_metadata", (HDR, dict(HDR, FILENAME="b"))),
    Case("darks.check_metadata.subarray", BPD + "check_metadata",
         (HDR, dict(HDR, SUBARRAY="SUB64P", FILENAME="b")), raises=True),
    Case("darks.check_metadata.nframes", BPD + "check_metadata",
         (HDR, dict(HDR, NFRAMES=2, FILENAME="b")), raises=True),
    Case("darks.check_metadata.tgroup", BPD + "check_metadata",
         (HDR, dict(HDR, TGROUP=1.5, FILENAME="b")), raises=True),
    Case("darks.combine_bad_pixel_types", BPD + "combine_bad_pixel_types",
         (MAP * 2048, MAP[::-1] * 16384, MAP[:, ::-1] * 1, MAP.T * 1048576)),
    Case("darks.combine_clean_slopes", BPD + "combine_clean_slopes", (np.where(GOOD > 0, SLOPES, np.nan), GOOD),
         rtol=1e-12),
    Case("darks.extract_group2", BPD + "extract_group2", (D("dark1_uncal.fits"), (4, 4, 4, 4))),
    Case("darks.find_pix_with_many_jumps", BPD + "find_pix_with_many_jumps", (JUMPS,),
         {"max_jump_limit": 3, "jump_ratio_threshold": 2}),
    Case("darks.find_pix_with_many_jumps.cutoff", BPD + "find_pix_with_many_jumps", (JUMPS,),
         {"early_cutoff_fraction": 0.6}, raises=True),
    Case("darks.pedestal_stats", BPD + "pedestal_stats", (PED,), {"threshold": 5}),
    Case("darks.plot_histogram_stats", BPD + "plot_histogram_stats",
         (np.abs(IMG), 12.0, 20, ".", "noise", "hist.png")),
    Case("darks.plot_image", BPD + "plot_image", (IMG, 20.0, ".", "image", "img.png")),
    Case("darks.read_pedestal_data", BPD + "read_pedestal_data", (D("dark1_fitopt.fits"),
                                                                   (4, 4, 4, 4))),
    Case("darks.read_slope_data.rate", BPD + "read_slope_data", (D("dark1_rate.fits"),
                                                                  (4, 4, 4, 4))),
    Case("darks.read_slope_data.rateints", BPD + "read_slope_data", (D("dark1_rateints.fits"),
                                                                      (4, 4, 4, 4))),
    Case("darks.read_slope_files", BPD + "read_slope_files",
         ([D("dark1_jump.fits"), D("dark2_jump.fits")],), deviation="rateints-box"),
    Case("darks.read_slope_integrations", BPD + "read_slope_integrations",
         ([D("dark1_rateints.fits"), D("dark2_rate.fits")],)),
    Case("darks.saturated_in_all_groups", BPD + "saturated_in_all_groups",
         (np.where(MAP > 0, 0.0, 100.0), np.where(MAP.T > 0, 2, 0))),
    Case("darks.saturated_in_all_groups.float", BPD + "saturated_in_all_groups",
         (np.where(MAP > 0, 0.0, 100.0), np.where(MAP.T > 0, 2.0, 0.0))),
    Case("darks.slopes_not_cr", BPD + "slopes_not_cr", (SLOPES[0], NJUMPS[0])),
    Case("darks.find_bad_pix", BPD + "find_bad_pix",
         ([D("dark1_rateints.fits"), D("dark2_rateints.fits")],),
         {"uncal_filenames": [D("dark1_uncal.fits"), D("dark2_uncal.fits")],
          "jump_filenames": [D("dark1_jump.fits"), D("dark2_jump.fits")],
          "fitopt_filenames": [D("dark1_fitopt.fits"), D("dark2_fitopt.fits")],
          "outfile": "darks_mask.fits"}, deviation="darks-few-files"),
    Case("darks.find_bad_pix.six", BPD + "find_bad_pix",
         ([D(f"dark{k}_rateints.fits") for k in SIX],),
         {"uncal_filenames": [D(f"dark{k}_uncal.fits") for k in SIX],
          "jump_filenames": [D(f"dark{k}_jump.fits") for k in SIX],
          "fitopt_filenames": [D(f"dark{k}_fitopt.fits") for k in SIX],
          "outfile": "darks_mask.fits"}, deviation="darks-search"),
    # ---- dark_current.dark_reffile
    Case("dark.Dark", "dark_current.dark_reffile.Dark",
         ([D(f"dark{k}_jump.fits") for k in SIX],),
         {"output_file": "dark.fits", "max_equivalent_groups": 200000, "pedigree": "GROUND",
          "descrip": "test dark", "author": "me", "use_after": "2019-04-01T00:00:00",
          "history": "a test"}, rtol=1e-5, deviation="dark-unreliable"),
    # ---- bad_pixel_mask.badpix_from_flats
    Case("flats.average_last4groups", BPF + "average_last4groups", (H("flat_ramp.fits"),), deviation="last-four-groups"),
    Case("flats.extract_10th_group", BPF + "extract_10th_group", (H("flat_ramp.fits"),)),
    Case("flats.combine_individual_maps", BPF + "combine_individual_maps",
         ({"DEAD": MAP, "LOW_QE": MAP.T, "OPEN": MAP[::-1]}, ["DEAD", "OPEN"])),
    Case("flats.crds_input_checks", BPF + "crds_input_checks",
         ("me", "A bad pix mask", "GROUND", "2019-04-01 00:00:00")),
    Case("flats.crds_input_checks.long", BPF + "crds_input_checks",
         ("me", "x" * 70, "GROUND", "2019-04-01 00:00:00"), raises=True),
    Case("flats.crds_input_checks.dummy", BPF + "crds_input_checks",
         ("me", "A bad pix mask", "DUMMY", "2019-04-01 00:00:00"), deviation="pedigree"),
    Case("flats.create_dqdef", BPF + "create_dqdef"),
    Case("flats.create_dummy_hdu_list", BPF + "create_dummy_hdu_list",
         (3, 15, 5.0, 0.05, 0.5, 1.05), deviation="dummy-hdu-list"),
    Case("flats.dead_pixels_absolute_rate", BPF + "dead_pixels_absolute_rate", (FLAT,),
         {"max_dead_signal": 0.05}),
    Case("flats.dead_pixels_flux_check", BPF + "dead_pixels_flux_check",
         ((FLAT < 0.5).astype(int), np.stack([FLAT * 40000, FLAT * 50000]), 45000)),
    Case("flats.dead_pixels_sigma_rate", BPF + "dead_pixels_sigma_rate", (FLAT, 1.0, 0.01),
         {"sigma": 5.0}),
    Case("flats.determine_manual_file", BPF + "determine_manual_file", ("NIRCAM", "NRCA1"), deviation="manual-lists"),
    Case("flats.find_open_and_low_qe_pixels", BPF + "find_open_and_low_qe_pixels", (FLAT,)),
    Case("flats.find_open_and_low_qe_pixels.one_low", BPF + "find_open_and_low_qe_pixels",
         (FLAT_ONE_LOW,), deviation="open-median"),
    Case("flats.find_open_and_low_qe_pixels.edge", BPF + "find_open_and_low_qe_pixels",
         (FLAT_EDGE,), deviation="adj-open-edge"),
    Case("flats.get_max_dead_norm_signal_default.long", BPF + "get_max_dead_norm_signal_default",
         ("NIRCAM", "NRCBLONG", "none"), deviation="dead-ceiling-table"),
    Case("flats.fit_surface", BPF + "fit_surface",
         (np.add.outer(np.arange(8.0), np.arange(8.0) ** 2) + 3.0, 2), rtol=1e-4, atol=1e-6),
    Case("flats.flag_type_check", BPF + "flag_type_check", (["dead", "Open"],)),
    Case("flats.flag_type_check.unknown", BPF + "flag_type_check", (["dead", "nope"],), raises=True),
    Case("flats.get_adjacent_pixels.inside", BPF + "get_adjacent_pixels", (3, 4, 10, 10)),
    Case("flats.get_adjacent_pixels.corner", BPF + "get_adjacent_pixels", (0, 9, 10, 10)),
    Case("flats.get_adjacent_pixels.edge", BPF + "get_adjacent_pixels", (9, 5, 10, 10)),
    Case("flats.get_fastaxis", BPF + "get_fastaxis", (D("flat1_rate.fits"),)),
    Case("flats.get_max_dead_norm_signal_default", BPF + "get_max_dead_norm_signal_default",
         ("NIRCAM", "NRCA1", "smoothed")),
    Case("flats.get_max_dead_norm_signal_default.none", BPF + "get_max_dead_norm_signal_default",
         ("NIRCAM", "NRCB4", "none")),
    Case("flats.image_stats", BPF + "image_stats", (IMG,), {"sigma": 3.0}, rtol=1e-9),
    Case("flats.manual_flags", BPF + "manual_flags", (D("manual_flags.txt"), (N, N), ["HOT"])),
    Case("flats.mean_stdev_images", BPF + "mean_stdev_images", (STACK,), rtol=1e-5),
    Case("flats.miri_bad_columns", BPF + "miri_bad_columns", ((8, 400),)),
    Case("flats.none_check", BPF + "none_check", ("None",)),
    Case("flats.none_check.value", BPF + "none_check", (3.5,)),
    Case("flats.pad_with_refpix", BPF + "pad_with_refpix", (IMG[:6, :5], "nircam")),
    Case("flats.pad_with_refpix.miri", BPF + "pad_with_refpix", (IMG[:6, :5], "miri")),
    Case("flats.range_format", BPF + "range_format", ("10:12", 32)),
    Case("flats.range_format.open", BPF + "range_format", (":", 32)),
    Case("flats.range_format.int", BPF + "range_format", ("7", 32)),
    Case("flats.read_files", BPF + "read_files",
         ([D("flat1_rate.fits"), D("flat2_rate.fits")], "sigma_rate"), deviation="first-file-once"),
    Case("flats.read_manual_flag_file", BPF + "read_manual_flag_file", (D("manual_flags.txt"),), deviation="manual-table"),
    Case("flats.reference_pixel_map", BPF + "reference_pixel_map", ((12, 14), "nircam")),
    Case("flats.reference_pixel_map.miri", BPF + "reference_pixel_map", ((12, 14), "miri")),
    Case("flats.science_pixels", BPF + "science_pixels", (IMG, "nircam")),
    Case("flats.science_pixels.miri", BPF + "science_pixels", (STACK, "miri")),
    Case("flats.smooth", BPF + "smooth", (IMG,), {"box_width": 5}, rtol=1e-9),
    Case("flats.smooth.median", BPF + "smooth", (np.nan_to_num(IMG),),
         {"box_width": 5, "type": "Median"}),
    Case("flats.split_row", BPF + "split_row", ({"x": "3:7"}, "x")),
    Case("flats.split_row.int", BPF + "split_row", ({"x": "3"}, "x")),
    Case("flats.find_bad_pix", BPF + "find_bad_pix",
         ([D("flat1_rate.fits"), D("flat2_rate.fits"), D("flat3_rate.fits")],),
         {"smoothing_box_width": 5, "output_file": "flats_mask.fits", "quality_check": False,
          "manual_flag_file": ""}, deviation="flats-mask"),
    Case("flats.save_final_map", BPF + "save_final_map",
         (np.where(MAP32 > 0, 1024 + 1, 0).astype(np.uint32), "NIRCAM", "NRCA1",
          [D("flat1_rate.fits")], "me", "A bad pix mask", "GROUND", "2019-04-01 00:00:00",
          "some history", 3, 15, 5.0, 0.05, 0.5, 1.05, ["DEAD"], "saved_flats_mask.fits"), deviation="returns-path"),
    Case("flats.pipeline_check", BPF + "pipeline_check",
         (D("a_mask.fits"), D("model_uncal.fits")),
         deviation="offline-check"),
    # ---- bad_pixel_mask.bad_pixel_mask
    Case("bpm.instrument_info", BPM + "instrument_info", (D("flat1_rate.fits"),)),
    Case("bpm.create_output_filename", BPM + "create_output_filename", ("nircam", "nrca1"),
         deviation="output-name"),
    Case("bpm.save_final_map", BPM + "save_final_map",
         (np.where(MAP32 > 0, 2048 + 1, 0).astype(np.uint32), "NIRCAM", "NRCA1", None,
          [D("dark1_rate.fits")], "me", "A bad pix mask", "GROUND", "2019-04-01 00:00:00",
          "some history", "saved_mask.fits"), deviation="returns-path"),
    Case("bpm.bad_pixels", BPM + "bad_pixels", (),
         {"flat_slope_files": [D(f"flat{k}_rate.fits") for k in (1, 2, 3)],
          "smoothing_box_width": 5, "manual_flag_file": "",
          "dark_slope_files": [D(f"dark{k}_rateints.fits") for k in SIX],
          "dark_uncal_files": [D(f"dark{k}_uncal.fits") for k in SIX],
          "dark_jump_files": [D(f"dark{k}_jump.fits") for k in SIX],
          "dark_fitopt_files": [D(f"dark{k}_fitopt.fits") for k in SIX],
          "output_file": "bpm.fits"}, deviation="returns-mask"),
    # ---- readnoise.readnoise
    Case("readnoise.calculate_mean", RN + "calculate_mean", (STACK,), rtol=1e-5),
    Case("readnoise.calculate_stddev", RN + "calculate_stddev", (STACK,), rtol=1e-5),
    Case("readnoise.get_crds_info", RN + "get_crds_info", (D("bias1_refpix.fits"), None, None)),
    Case("readnoise.make_cds_stack", RN + "make_cds_stack", (RAMPS,), deviation="odd-groups"),
    Case("readnoise.make_cds_stack.consecutive", RN + "make_cds_stack", (RAMPS, "consecutive")),
    Case("readnoise.none_check", RN + "none_check", ("none",)),
    Case("readnoise.readnoise_by_ramp", RN + "readnoise_by_ramp", (D("bias1_refpix.fits"),),
         rtol=1e-5, deviation="clipping-bias"),
    Case("readnoise.readnoise_by_slice", RN + "readnoise_by_slice",
         ([D("bias1_refpix.fits"), D("bias2_refpix.fits")],), {"column": 3, "slice_width": 10},
         rtol=1e-5, deviation="clipping-bias"),
    Case("readnoise.use_single_value", RN + "use_single_value",
         (np.abs(IMG[:, :32]), "NIRCAM", "NRCA1", "SUB64P"), rtol=1e-6, deviation="single-value"),
    Case("readnoise.wrapper_readnoise_by_ramp", RN + "wrapper_readnoise_by_ramp",
         ((D("bias1_refpix.fits"), "consecutive"),), rtol=1e-5, deviation="clipping-bias"),
    Case("readnoise.wrapper_readnoise_by_slice", RN + "wrapper_readnoise_by_slice",
         (([D("bias1_refpix.fits")], "independent", 3.0, 3, 0, 8),), rtol=1e-5, deviation="clipping-bias"),
    Case("readnoise.make_readnoise", RN + "make_readnoise",
         ([D("bias1_refpix.fits"), D("bias2_refpix.fits"), D("bias3_refpix.fits")],),
         {"outfile": "readnoise.fits"}, rtol=1e-5, deviation="clipping-bias-file"),
    Case("readnoise.save_readnoise", RN + "save_readnoise", (np.abs(IMG).astype(np.float32),),
         {"instrument": "NIRCAM", "detector": "NRCA1", "outfile": "rn.fits",
          "filenames": ["a.fits", "b.fits"]}, deviation="returns-path"),
    # ---- superbias.superbias
    Case("superbias.calculate_mean", SB + "calculate_mean", (STACK,), rtol=1e-5),
    Case("superbias.calculate_stddev", SB + "calculate_stddev", (STACK,), rtol=1e-5),
    Case("superbias.find_unreliable_bias_pixels", SB + "find_unreliable_bias_pixels",
         (np.abs(IMG),), deviation="unreliable-bias-flag"),
    Case("superbias.get_crds_info", SB + "get_crds_info", (D("bias1_refpix.fits"), "FULL", None)),
    Case("superbias.make_filled_superbias", SB + "make_filled_superbias",
         (IMG, (np.arange(N)[:, None] < 4) | (np.arange(N)[None] < 4)),
         {"outfile": "sb.fits"}, rtol=1e-9, deviation="returns-filled"),
    Case("superbias.make_refpix_map", SB + "make_refpix_map", (D("bias1_refpix.fits"),)),
    Case("superbias.none_check", SB + "none_check", ("NONE",)),
    Case("superbias.make_superbias", SB + "make_superbias",
         ([D("bias1_refpix.fits"), D("bias2_refpix.fits"), D("bias3_refpix.fits")],),
         {"outfile": "superbias.fits"}, rtol=1e-5, deviation="zero-frames"),
    Case("superbias.save_superbias", SB + "save_superbias",
         (IMG.astype(np.float32), np.abs(IMG).astype(np.float32),
          np.zeros((N, N), np.uint32)), {"instrument": "NIRCAM", "detector": "NRCA1",
                                         "outfile": "sb.fits"}, deviation="returns-path"),
    # ---- utils.dq_flags
    Case("dq_flags.flag_map", DQF + "flag_map", (np.array([[0, 4, 6], [2, 1, 4 + 2 ** 31]]),
                                                  "JUMP_DET")),
    Case("dq_flags.collapse_cr_map", DQF + "collapse_cr_map",
         (np.where(JUMPS, 4, 0)[None].repeat(2, 0),)),
    Case("dq_flags.get_groupdq", DQF + "get_groupdq", (D("dark1_jump.fits"), (4, 4, 4, 4))),
    Case("dq_flags.create_refpix_map", DQF + "create_refpix_map", (D("dark1_jump.fits"),), deviation="refpix-from-pixeldq"),
    Case("dq_flags.extract_cr_mask", DQF + "extract_cr_mask", (D("dark1_jump.fits"),), deviation="cr-mask-refpix"),
    Case("dq_flags.signals_per_group", DQF + "signals_per_group",
         (np.array([[[3, 0], [5, 2]], [[5, 5], [1, 4]]]), 5)),
]


# ---- expected deviations: what ours does instead, checked on our result --------------
# Each check gets (ours, predecessor) as the worker reduced them and raises
# AssertionError when ours does not do what docs/deviations.md says it does.

def _value(r):
    """The returned value of a worker result, as (kind, payload...)."""
    assert r[0] == "returned", f"ours raised {r[1]}: {r[2]}"
    return r[1]


def _array(r):
    v = _value(r)
    assert v[0] in ("array", "masked"), v[0]
    return np.ma.filled(np.ma.masked_array(v[1], v[2]), np.nan) if v[0] == "masked" else v[1]


def _check_darks_few_files(ours, theirs):
    assert theirs[0] == "raised" and ">5 input files" in theirs[2]
    mask = _array(ours)
    assert mask[10, 12] & HOT and mask[10, 12] & 1  # the hot pixel, DO_NOT_USE


def _check_last_four(ours, theirs):
    # ramp = 1000 DN per group (groups 1..12) + noise: the last 4 average 10500 DN
    assert abs(np.median(_array(ours)) - 10500.0) < 5
    assert abs(np.median(_array(theirs)) - 2500.0) < 5       # the first four


def _check_dummy(ours, theirs):
    assert theirs[0] == "raised"
    v = _value(ours)
    assert v[0] == "hdulist" and v[1][0][2]["SMTHWIDT"] == 15


def _check_manual_lists(ours, theirs):
    assert _value(ours) == ("builtin", "NoneType", None)


def _check_first_file_once(ours, theirs):
    assert _value(ours)[1][0][1].shape[0] == 2 and _value(theirs)[1][0][1].shape[0] == 3


def _check_manual_table(ours, theirs):
    assert _value(ours) == ("object", "Table") and _value(theirs)[2] is None


REF, DEAD, HOT, LOW_QE, TELEGRAPH, OPEN = 2 ** 31, 2 ** 10, 2 ** 11, 2 ** 13, 2 ** 15, 2 ** 26


def _flats_explained(a, b):
    """(a, b) as int64 without the differences of ``flats-mask``, having checked
    them: ours has reference pixels where a window at the corner has them (left,
    bottom); the predecessor also flags DEAD on its LOW_QE and OPEN pixels."""
    a, b = a.astype(np.int64), b.astype(np.int64)
    assert (a[:, :4] & REF).all() and (a[:4] & REF).all() and not (a[4:, 4:] & REF).any()
    both = (b & (LOW_QE | OPEN)) > 0
    assert (b[both] & DEAD).all()
    b[both] &= ~DEAD
    return a & ~REF, b & ~REF


def _darks_explained(a, b):
    """Where the masks ``a`` (ours) and ``b`` may differ by ``darks-search``, having
    checked how: False at those pixels."""
    # ours: HOT from the dark rate too (5 DN/s at (10, 12), 500x the detector's)
    assert a[10, 12] == HOT + 1 and b[10, 12] == 0
    # the predecessor: high-CR from JUMP_DET flags the ramps' data do not bear out
    # (noise-only ramps), HOT from SATURATED flags on a ramp at the bias level
    assert b[8, 8] == b[9, 14] == TELEGRAPH + 1 and a[8, 8] == a[9, 14] == 0
    assert b[15, 9] == HOT + 1 and a[15, 9] == 0
    same = np.ones(a.shape, bool)
    same[[10, 8, 9, 15], [12, 8, 14, 9]] = False
    return same


def _check_flats_mask(ours, theirs):
    a, b = _flats_explained(_array(ours), _array(theirs))
    np.testing.assert_array_equal(a, b)


def _check_rateints_box(ours, theirs):
    inst, slopes, box = _value(ours)[1]
    assert slopes[1].shape == (6, 24, 24) and [x[2] for x in box[1]] == [4, 4, 4, 4]


def _check_odd_groups(ours, theirs):
    assert theirs[0] == "raised" and _array(ours).shape == (4, 8, 8)   # 2 pairs x 2 ints


def _check_clipping_bias(ours, theirs):
    ratio = np.nanmedian(_array(ours) / _array(theirs))
    # n/(n-1) (4 differences a pixel in one file: 1.15 in the noise) and the 3-sigma
    # clipping's truncation (1.014)
    assert 1.0 < ratio < 1.2, ratio


def _check_clipping_bias_file(ours, theirs):
    a = _written_data(ours, "readnoise.fits")["SCI"]
    b = _written_data(theirs, "readnoise.fits")["SCI"]
    ratio = np.nanmedian(a / b)
    assert 1.0 < ratio < 1.2, ratio


def _check_single_value(ours, theirs):
    a, b = _array(ours), _array(theirs)
    assert np.ptp(a) == 0 and abs(a[0, 0] / b[0, 0] - 1) < 0.005


def _written_data(result, name):
    return {h[0]: h[1] for h in result[2][name] if h[1] is not None and not isinstance(h[1], dict)}


def _check_returns_path(ours, theirs):
    assert _value(theirs)[2] is None and _value(ours)[0] == "object"
    name = next(iter(ours[2]))
    a, b = _written_data(ours, name), _written_data(theirs, name)
    for ext in b:
        np.testing.assert_allclose(a[ext], b[ext], rtol=1e-6)


def _check_returns_filled(ours, theirs):
    assert _value(theirs)[2] is None
    filled = _array(ours)
    written = _written_data(ours, "sb_filled.fits")["PRIMARY"]
    np.testing.assert_allclose(filled, written, rtol=1e-6)
    theirs_written = _written_data(theirs, "sb_filled.fits")["PRIMARY"]
    np.testing.assert_allclose(written, theirs_written, rtol=1e-6)


def _check_unreliable(ours, theirs):
    a, b = _array(ours), _array(theirs)
    np.testing.assert_array_equal(a > 0, b > 0)
    assert set(np.unique(a[a > 0])) == {2 ** 22 + 1} and set(np.unique(b[b > 0])) == {3}


def _check_refpix_pixeldq(ours, theirs):
    a = _array(ours)
    assert a.dtype == bool and a.sum() == 32 * 32 - 24 * 24 and theirs[0] == "raised"


def _check_cr_mask(ours, theirs):
    a = _array(ours)
    assert a.shape == (3, 6, 32, 32) and a[:, :, 9, 14].all() and theirs[0] == "raised"


def _check_adj_open_edge(ours, theirs):
    low_qe, open_, adj = (v[1] for v in _value(ours)[1])
    assert open_[0, 7] and adj[0, 6] and adj[0, 8] and adj[1, 6:9].all()
    adj_theirs = _value(theirs)[1][2][1]
    assert not adj_theirs[0, 6]                # its box y-1:y+2 is empty at row 0


def _check_open_median(ours, theirs):
    low_qe, open_, adj = (v[1] for v in _value(ours)[1])
    assert open_[4, 4] and not low_qe[4, 4] and adj[3:6, 3:6].sum() == 8
    low_qe_t, open_t, _ = (v[1] for v in _value(theirs)[1])
    assert low_qe_t[4, 4] and not open_t[4, 4]


def _check_dead_ceiling(ours, theirs):
    assert _value(ours)[2] == 50.0 and _value(theirs)[2] == 25.0


def _check_zero_frames(ours, theirs):
    # ours: the zero frame of every integration (2 a file); the predecessor: the first's
    a, b = _array(ours), _array(theirs)
    assert a.dtype == b.dtype == np.float64 and a.shape == b.shape
    assert np.median(np.abs(a - b)) < 6.0          # within the single frames' noise


def _check_darks_search(ours, theirs):
    a, b = _array(ours), _array(theirs)
    same = _darks_explained(a, b)
    np.testing.assert_array_equal(a[same], b[same])   # everything else as the predecessor


def _check_dark(ours, theirs):
    assert _value(ours) == _value(theirs) == ("object", "Dark")
    a, b = _written_data(ours, "dark.fits"), _written_data(theirs, "dark.fits")
    unreliable = 2 ** 23                       # UNRELIABLE_DARK
    # saturated in every group: no dark signal (the predecessor averages the
    # saturated values, 12000 DN); no clean signal after the early jumps of every
    # integration or in any group: flagged
    assert (a["SCI"][:, 15, 9] == 0).all() and (b["SCI"][:, 15, 9] > 11000).all()
    for y, x in ((15, 9), (8, 8), (9, 14)):
        assert a["DQ"][y, x] == unreliable and b["DQ"][y, x] == 0
    same = np.ones((32, 32), bool)
    same[15, 9] = False
    for ext in ("SCI", "ERR"):
        np.testing.assert_allclose(a[ext][:, same], b[ext][:, same], rtol=1e-5)
    same[8, 8] = same[9, 14] = False
    np.testing.assert_array_equal(a["DQ"][same], b["DQ"][same])


def _check_pedigree(ours, theirs):
    assert ours[0] == "returned" and theirs[0] == "raised"


def _check_output_name(ours, theirs):
    import re
    assert re.search(r"/nircam_nrca1_\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+_badpix_mask\.fits$",
                     _value(theirs)[2])
    assert re.search(r"/nircam_nrca1_\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d+_badpix_mask\.fits$",
                     _value(ours)[2])


def _check_bad_pixels(ours, theirs):
    assert _value(theirs)[2] is None
    a = _written_data(ours, "bpm.fits")["DQ"]
    np.testing.assert_array_equal(_array(ours), a)
    # the same as the predecessor's but as flats-mask and darks-search say
    a, b = _flats_explained(a, _written_data(theirs, "bpm.fits")["DQ"])
    same = _darks_explained(a, b)
    np.testing.assert_array_equal(a[same], b[same])


def _check_offline(ours, theirs):
    assert theirs[0] == "raised" and theirs[1] == "SystemExit"      # CRDS: no server
    assert _value(ours) == ("object", "RampModel")


DEVIATIONS = {
    "darks-few-files": _check_darks_few_files,
    "last-four-groups": _check_last_four,
    "dummy-hdu-list": _check_dummy,
    "manual-lists": _check_manual_lists,
    "first-file-once": _check_first_file_once,
    "manual-table": _check_manual_table,
    "flats-mask": _check_flats_mask,
    "rateints-box": _check_rateints_box,
    "odd-groups": _check_odd_groups,
    "clipping-bias": _check_clipping_bias,
    "clipping-bias-file": _check_clipping_bias_file,
    "single-value": _check_single_value,
    "returns-path": _check_returns_path,
    "returns-filled": _check_returns_filled,
    "unreliable-bias-flag": _check_unreliable,
    "refpix-from-pixeldq": _check_refpix_pixeldq,
    "cr-mask-refpix": _check_cr_mask,
    "adj-open-edge": _check_adj_open_edge,
    "dead-ceiling-table": _check_dead_ceiling,
    "pedigree": _check_pedigree,
    "zero-frames": _check_zero_frames,
    "darks-search": _check_darks_search,
    "output-name": _check_output_name,
    "returns-mask": _check_bad_pixels,
    "offline-check": _check_offline,
    "open-median": _check_open_median,
    "dark-unreliable": _check_dark,
}

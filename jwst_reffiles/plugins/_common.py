"""What the shipped plug-ins share: selecting their inputs from the group table."""

from __future__ import annotations

from pathlib import Path

__all__ = ["files_of", "column_of", "side_file"]


def files_of(table, imtype: str | None = None, column: str = "output_name") -> list[str]:
    """The calibrated files of one image type (dark/flat) of a group table, in order."""
    rows = [r for r in table if imtype is None or str(r["imtype"]) == imtype]
    return [str(r[column]) for r in rows]


def column_of(table, name: str, imtype: str | None, owner: str) -> list[str]:
    """A product column (jump, fitopt, ...) for the rows of one image type; every
    row must have it."""
    if name not in table.colnames:
        raise ValueError(f"{owner}: the group table has no '{name}' products (add "
                         f"'ssbsave: [{name}]' or a ramp-fitting step to the module's "
                         f"configuration section)")
    rows = [r for r in table if imtype is None or str(r["imtype"]) == imtype]
    values = [str(r[name]) for r in rows]
    missing = [str(r["output_name"]) for r, v in zip(rows, values) if not v]
    if missing:
        raise ValueError(f"{owner}: no '{name}' product for {', '.join(missing)}")
    return values


def side_file(output, suffix: str) -> str:
    """A side product next to the reference file: <output stem>_<suffix>."""
    out = Path(output)
    return str(out.with_name(out.name[: -len(".fits")] + f"_{suffix}"
                             if out.name.endswith(".fits") else out.name + f"_{suffix}"))


# ---- parameters the shipped modules share -------------------------------------

from ..params import Bool, Float, Int, Param, Str, StrList  # noqa: E402

#: How the shipped modules calibrate their inputs: with a mask that flags only the
#: reference pixels, so that no pixel is hidden from the measurement.
REFPIX_ONLY = {"mask": "REFPIX"}

#: The steps of the bad pixel searches (no dark subtraction), up to ramp fitting.
BPM_STEPS = "dq_init, saturation, superbias, refpix, linearity, jump, rate"


def metadata(description: str, arg_names: dict | None = None) -> tuple:
    """The CRDS metadata every shipped module writes (author, description,
    pedigree, useafter); ``arg_names`` renames them for an algorithm."""
    names = arg_names or {}
    return (
        Param("author", Str(), "jwst_reffiles", "AUTHOR of the reference file",
              names.get("author")),
        Param("description", Str(), description, "DESCRIP of the reference file",
              names.get("description")),
        Param("pedigree", Str(), "GROUND", "PEDIGREE: GROUND, INFLIGHT <start> <end>, DUMMY",
              names.get("pedigree")),
        Param("useafter", Str(), "2022-01-01T00:00:00", "USEAFTER date-time",
              names.get("useafter")),
    )


def flats_search(sigma_name: str = "sigma_threshold",
                 norm_name: str = "normalization_method", dnu_name: str = "do_not_use") -> tuple:
    """The parameters of the search of flats (DEAD, LOW_QE, OPEN, ADJ_OPEN)."""
    return (
        Param("dead_search", Bool(), True, "search for DEAD pixels"),
        Param("low_qe_and_open_search", Bool(), True, "search for LOW_QE, OPEN and ADJ_OPEN"),
        Param("dead_search_type", Str(choices=("sigma_rate", "absolute_rate")), "sigma_rate",
              "sigma_rate (sigmas below the mean) or absolute_rate (max_dead_norm_signal)"),
        Param(sigma_name, Float(minimum=0), 3.0, "clipping of the mean flat image"),
        Param(norm_name, Str(choices=("smoothed", "mean", "fit2d", "none")), "smoothed",
              "how the mean image is normalised: smoothed, mean, fit2d or none"),
        Param("smoothing_box_width", Int(minimum=1), 15,
              "box width for the smoothed normalisation [pixels]"),
        Param("smoothing_type", Str(choices=("Box2D", "median")), "Box2D",
              "smoothing kernel: Box2D or median"),
        Param("dead_sigma_threshold", Float(minimum=0), 5.0,
              "DEAD below this many sigmas under the mean (sigma_rate)"),
        Param("max_dead_norm_signal", Float(nullable=True), None,
              "normalised signal below which a pixel is DEAD (empty: by detector)"),
        Param("max_low_qe_norm_signal", Float(), 0.5,
              "normalised signal below which a pixel is LOW_QE"),
        Param("max_open_adj_norm_signal", Float(), 1.05,
              "neighbours above this normalised signal make a LOW_QE pixel OPEN"),
        Param("manual_flag_file", Str(nullable=True), "default",
              "pixels flagged by hand: a file, 'default' (the package's list) or empty"),
        Param(dnu_name, StrList(), ["DEAD", "OPEN"], "flags that also get DO_NOT_USE"),
    )


def darks_search() -> tuple:
    """The thresholds of the search of darks (HOT, WARM, RC, TELEGRAPH, low pedestal)."""
    return (
        Param("max_saturated_fraction", Float(minimum=0, maximum=1), 0.5,
              "HOT where saturated in all groups in more than this fraction of integrations"),
        Param("max_jump_limit", Int(minimum=0), 10,
              "more jumps than this in an integration: a high-jump pixel"),
        Param("jump_ratio_threshold", Float(minimum=0), 5.0,
              "early-to-all jump rate ratio above which a pixel may be RC"),
        Param("early_cutoff_fraction", Float(minimum=0, maximum=0.5), 0.25,
              "fraction of the ramp counted as early (<= 0.5)"),
        Param("pedestal_sigma_threshold", Float(minimum=0), 5.0,
              "pedestal this many sigmas from the mean: RC or low pedestal"),
        Param("rc_fraction_threshold", Float(minimum=0, maximum=1), 0.8,
              "RC when found in at least this fraction of the files"),
        Param("low_pedestal_fraction", Float(minimum=0, maximum=1), 0.8,
              "low pedestal when found in at least this fraction of the files"),
        Param("high_cr_fraction", Float(minimum=0, maximum=1), 0.8,
              "TELEGRAPH (noisy) when found in at least this fraction of the files"),
        Param("hot_threshold", Float(nullable=True), None,
              "DN/s: above it HOT, below WARM (empty: all HOT)"),
    )


def gain_params(description: str) -> tuple:
    """The parameters of the photon transfer gain (both methods)."""
    return (
        Param("box", Int(minimum=2), 32, "region side [pixels]; statistics over its pixels"),
        Param("sigma", Float(minimum=0.1), 5.0, "clipping of each region's values"),
        Param("max_clipping_iters", Int(minimum=1), 5, "iterations of that clipping"),
        Param("ptc_degree", Int(minimum=1), 2,
              "variance vs signal polynomial: 2 takes the non-linearity"),
        Param("max_signal", Float(nullable=True), None,
              "DN: levels above are not fitted (empty: all unsaturated)"),
        Param("ipc_correction", Bool(), False,
              "correct the variances for inter-pixel capacitance"),
        Param("per_pixel_max_error", Float(nullable=True, minimum=0), None,
              "e.g. 0.05: a pixel's own gain where this precise (needs many integrations)"),
        Param("min_pixels", Int(minimum=1), 50, "pixels a level of a region needs"),
        Param("memory_mb", Float(minimum=1), 512.0, "memory for one band of rows [MB]"),
        *metadata(description),
    )


#: The searches of darks whose pixels may get DO_NOT_USE.
DARK_TYPES = ("hot", "rc", "low_pedestal", "high_cr", "warm", "noisy")

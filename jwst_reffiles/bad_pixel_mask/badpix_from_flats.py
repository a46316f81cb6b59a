"""DEAD, LOW_QE, OPEN and ADJ_OPEN pixels from flat-field exposures.

Inputs: flat-field rate images (``*_rate.fits`` or ``*_rateints.fits``) for
NIRCam, NIRISS, NIRSpec and FGS; for MIRI, ramps, of which the 10th group is
used.  Algorithm:

1. the sigma-clipped mean image of the inputs (the shared kernel);
2. normalised: by its smoothed self ('smoothed', Box2D mean or median in a
   ``smoothing_box_width`` box, ignoring NaN and reference pixels), by its
   clipped mean ('mean'), by a fitted 2-D polynomial surface ('fit2d'), or
   not ('none');
3. DEAD: below ``max_dead_norm_signal`` ('absolute_rate'), or more than
   ``dead_sigma_threshold`` standard deviations below the mean ('sigma_rate');
   with 'sigma_rate', a low pixel whose signal is above the dead ceiling
   (``max_dead_norm_signal``, 0.05 by default) is left to the LOW_QE / OPEN
   search instead of being called dead, so that a low-QE pixel is not also
   "dead";
4. LOW_QE: between the dead ceiling and ``max_low_qe_norm_signal``; a LOW_QE
   pixel whose neighbours' median is above ``max_open_adj_norm_signal`` is
   OPEN (its charge went to them) and the neighbours ADJ_OPEN (three
   neighbours on the array's edge; see :func:`find_open_and_low_qe_pixels`);
5. optionally a flux check removes from DEAD the pixels whose average of the
   last four groups of the raw ramps is above ``flux_check`` (saturated, not
   dead); manual flags from a text file are added; reference pixels are
   flagged REFERENCE_PIXEL.

The numeric work is done by pure functions on arrays; reading files and saving
the MaskModel are separate.
"""

from __future__ import annotations

import logging
from importlib import resources

import numpy as np
from astropy.io import fits
from astropy.table import Table
from stdatamodels.jwst import datamodels as dm

from ..detectors import REFPIX_BORDERS, reference_pixel_mask, strip_border
from ..dq import PIXEL, flag_value
from ..reffile import save_mask
from ..stats import image_stats as _image_stats
from ..stats import ROBUST_MAX_VALUES, stack_stats
from ..utils import none_check

log = logging.getLogger(__name__)

__all__ = [
    "find_bad_pix", "average_last4groups", "combine_individual_maps", "crds_input_checks",
    "create_dqdef", "create_dummy_hdu_list", "dead_pixels_absolute_rate",
    "dead_pixels_flux_check", "dead_pixels_sigma_rate", "determine_manual_file",
    "extract_10th_group", "find_open_and_low_qe_pixels", "fit_surface", "flag_type_check",
    "get_adjacent_pixels", "get_fastaxis", "get_max_dead_norm_signal_default", "image_stats",
    "manual_flags", "mean_stdev_images", "miri_bad_columns", "none_check", "pad_with_refpix",
    "pipeline_check", "range_format", "read_files", "read_manual_flag_file",
    "reference_pixel_map", "save_final_map", "science_pixels", "smooth", "split_row",
]

#: Dead-pixel ceiling of the normalised signal, used by 'absolute_rate' and as
#: the boundary between DEAD and LOW_QE.
DEFAULT_MAX_DEAD_NORM_SIGNAL = 0.05

#: Shorted columns of the MIRI imager detector (MIRIMAGE), 0-based full-frame
#: columns counting the left reference columns: the columns the predecessor's
#: ``miri_bad_columns`` named.  Flagged DO_NOT_USE in MIRIMAGE masks; the MRS
#: detectors have none listed (give any through a manual flag file).
MIRI_SHORTED_COLUMNS: tuple[int, ...] = (384, 385)


# ---- pure array functions ---------------------------------------------------

def _ramps(hdu_list):
    """(name, SCI ramps (nints, ngroups, y, x)) of an HDUList (the documented input)
    or of an array of ramps."""
    if isinstance(hdu_list, fits.HDUList):
        name, data = hdu_list[0].header.get("FILENAME", "the input"), hdu_list["SCI"].data
    else:
        name, data = "the input", hdu_list
    data = np.asarray(data)
    return name, data if data.ndim == 4 else data[None]


def extract_10th_group(hdu_list):
    """The 10th group (index 9) of each integration, (nints, y, x), of an HDUList's SCI
    ramps (or of an array of ramps), in their own type."""
    name, data = _ramps(hdu_list)
    if data.shape[1] < 10:
        raise ValueError(f"Input file {name} has fewer than 10 groups ({data.shape[1]})")
    return data[:, 9]


def average_last4groups(hdu_list):
    """The mean of the last four groups over every integration, (1, y, x) float64, of
    an HDUList's SCI ramps (or of an array of ramps): the signal near the ramp's top
    that the dead pixels' flux check compares with ``flux_check``."""
    name, data = _ramps(hdu_list)
    if data.shape[1] < 4:
        raise ValueError(f"Input file {name} has fewer than 4 groups ({data.shape[1]})")
    return data[:, -4:].astype(np.float64).mean(axis=(0, 1))[None]


def mean_stdev_images(data, sigma=3.0):
    """Sigma-clipped mean and standard deviation images through a stack."""
    data = np.asarray(data)
    st = stack_stats(data, sigma=sigma, maxiters=5)
    kind = data.dtype if data.dtype.kind == "f" else np.float64
    return st.mean.astype(kind, copy=False), st.std.astype(kind, copy=False)


def image_stats(image, sigma=3.0, mask=None, max_values=None):
    """Sigma-clipped (mean, stdev) over an image (``mask`` True = ignored);
    ``max_values``: as :func:`jwst_reffiles.stats.image_stats` (None: every pixel)."""
    mean, _, std = _image_stats(image, sigma=sigma, maxiters=5, mask=mask,
                                max_values=max_values)
    return np.float64(mean), np.float64(std)


def smooth(data, box_width=15, type="Box2D"):
    """The image smoothed by a ``box_width`` box (``type`` 'Box2D': the mean of the
    finite values, beyond the edges the image's median, as astropy's ``convolve``
    with a ``Box2DKernel``, boundary 'fill' and NaN interpolation) or median filter
    (``type`` 'Median', edges reflected; NaN taken as the median)."""
    from scipy import ndimage
    data = np.asarray(data, dtype=np.float64)
    width = int(box_width)
    valid = np.isfinite(data)
    fill = np.nanmedian(data)
    if str(type).lower() == "box2d":
        if width % 2 == 0:          # astropy's even box has fractional edges: its own
            from astropy.convolution import Box2DKernel, convolve
            return convolve(data, Box2DKernel(width), boundary="fill", fill_value=fill,
                            nan_treatment="interpolate")
        half = width // 2
        padded = np.pad(np.where(valid, data, 0.0), half, constant_values=fill)
        weight = np.pad(valid.astype(np.float64), half, constant_values=1.0)
        num = ndimage.uniform_filter(padded, width, mode="constant", cval=0.0)
        den = ndimage.uniform_filter(weight, width, mode="constant", cval=0.0)
        inner = (slice(half, half + data.shape[0]), slice(half, half + data.shape[1]))
        with np.errstate(invalid="ignore", divide="ignore"):
            return num[inner] / den[inner]
    if str(type).lower() == "median":
        return ndimage.median_filter(np.where(valid, data, fill), size=width, mode="reflect")
    raise ValueError(f"smoothing_type must be 'Box2D' or 'median', got {type!r}")


def fit_surface(data, deg):
    """A 2-D polynomial surface of degree ``deg`` fitted to the finite pixels."""
    data = np.asarray(data, dtype=np.float64)
    ny, nx = data.shape
    y, x = np.mgrid[0:ny, 0:nx]
    xs, ys = x / max(nx - 1, 1) * 2 - 1, y / max(ny - 1, 1) * 2 - 1
    terms = [(i, j) for i in range(deg + 1) for j in range(deg + 1 - i)]
    ok = np.isfinite(data)
    design = np.stack([xs[ok] ** i * ys[ok] ** j for i, j in terms], axis=1)
    coef, *_ = np.linalg.lstsq(design, data[ok], rcond=None)
    return sum(c * xs ** i * ys ** j for c, (i, j) in zip(coef, terms))


def dead_pixels_sigma_rate(rate_image, mean_rate, stdev_rate, sigma=5.0):
    """1 where the normalised rate is more than ``sigma`` stdevs below the mean."""
    with np.errstate(invalid="ignore"):
        return (np.asarray(rate_image) < mean_rate - sigma * stdev_rate).astype(int)


def dead_pixels_absolute_rate(rate_image, max_dead_signal=DEFAULT_MAX_DEAD_NORM_SIGNAL):
    """1 where the normalised rate is below ``max_dead_signal``."""
    with np.errstate(invalid="ignore"):
        return (np.asarray(rate_image) < max_dead_signal).astype(int)


def dead_pixels_flux_check(dead_pix_map, ave_group, flux_check):
    """The dead pixels (1) whose signal ``ave_group`` (an image, or a stack averaged
    through its first axis) stays under ``flux_check``: a pixel that collects as much
    is no dead pixel."""
    ave = np.asarray(ave_group, dtype=np.float64)
    if ave.ndim == 3:
        ave = ave.mean(axis=0)
    with np.errstate(invalid="ignore"):
        return ((np.asarray(dead_pix_map) == 1) & (ave < flux_check)).astype(int)


def get_adjacent_pixels(x_val, y_val, x_dim, y_dim):
    """(x, y) arrays of the pixels that share a side with (x_val, y_val), inside the
    array: above, right, below, left, in that order."""
    cand = [(x_val, y_val + 1), (x_val + 1, y_val), (x_val, y_val - 1), (x_val - 1, y_val)]
    keep = [(x, y) for x, y in cand if 0 <= x < x_dim and 0 <= y < y_dim]
    return np.array([c[0] for c in keep]), np.array([c[1] for c in keep])


def find_open_and_low_qe_pixels(rate_image, max_dead_signal=DEFAULT_MAX_DEAD_NORM_SIGNAL,
                                max_low_qe=0.5, max_adj_open=1.05):
    """(low_qe_map, open_pix_map, adj_pix_map) from a normalised rate image.

    LOW_QE: max_dead_signal <= rate < max_low_qe.  A LOW_QE pixel whose
    neighbours' median is above max_adj_open is OPEN (it lost its charge to
    them), the 3x3 box around it ADJ_OPEN (the predecessor's convention, and the
    masks made with it; clipped at the array's edges).  The median, not each neighbour: the gain
    and QE of one neighbour can pull it under the threshold (a 5 % higher gain
    does, in DN/s), and one bright neighbour (a hot pixel) must not make a
    LOW_QE pixel OPEN.  On the edge of the array the 3 neighbours inside
    count; a pixel in a corner (2) is not judged.
    """
    rate = np.asarray(rate_image, dtype=np.float64)
    ny, nx = rate.shape
    with np.errstate(invalid="ignore"):
        low = (rate >= max_dead_signal) & (rate < max_low_qe)
    low_qe = low.astype(int)
    open_map = np.zeros_like(low_qe)
    adj_map = np.zeros_like(low_qe)
    # every candidate's 4 neighbours at once (left, right, below, above)
    y, x = np.nonzero(low)
    yy, xx = y[:, None] + [0, 0, -1, 1], x[:, None] + [-1, 1, 0, 0]
    inside = (xx >= 0) & (xx < nx) & (yy >= 0) & (yy < ny)
    values = rate[np.clip(yy, 0, ny - 1), np.clip(xx, 0, nx - 1)]
    n_inside = inside.sum(axis=1)
    is_open = np.zeros(len(y), bool)
    with np.errstate(invalid="ignore"):
        for n in (3, 4):            # the median of the neighbours inside (NaN if any is NaN)
            rows = n_inside == n
            if rows.any():
                med = np.median(values[rows][inside[rows]].reshape(-1, n), axis=1)
                is_open[rows] = med > max_adj_open
    low_qe[y[is_open], x[is_open]] = 0
    open_map[y[is_open], x[is_open]] = 1
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            by, bx = y[is_open] + dy, x[is_open] + dx
            keep = (bx >= 0) & (bx < nx) & (by >= 0) & (by < ny)
            adj_map[by[keep], bx[keep]] = 1
    adj_map[y[is_open], x[is_open]] = 0
    return low_qe, open_map, adj_map


def flag_type_check(flags):
    """Upper-cased flag names; ValueError for names the pipeline does not know."""
    out = [str(f).upper() for f in flags]
    bad = [f for f in out if f not in PIXEL]
    if bad:
        raise ValueError(f"unknown bad pixel type(s) {bad}; known: {sorted(PIXEL)}")
    return out


def combine_individual_maps(bad_maps, do_not_use_flags):
    """OR of the maps {TYPE: 0/1 map} as JWST DQ bits (int64, as documented);
    DO_NOT_USE for the listed types."""
    return _combine_maps(bad_maps, do_not_use_flags).astype(int)


def _combine_maps(bad_maps, do_not_use_flags):
    """:func:`combine_individual_maps` in uint32 (the DQ type; no int64 copy of a full
    frame inside the search)."""
    do_not_use = set(flag_type_check(do_not_use_flags))
    final = None
    for name, image in bad_maps.items():
        value = flag_value(name)
        if name.upper() in do_not_use:
            value |= PIXEL["DO_NOT_USE"]
        layer = np.where(np.asarray(image) > 0, np.uint32(value), np.uint32(0))
        final = layer if final is None else final | layer
    return final


def reference_pixel_map(dimensions, instrument_name, xstart=None, ystart=None):
    """Map (1) of the reference pixels of an array of the given (y, x) size.

    As documented (no ``xstart``/``ystart``): a full frame's border, 4 columns on
    each side and (not MIRI) 4 rows at the bottom and top, whatever the size.  With
    the array's first full-frame column and row (SUBSTRT1/2, 1-based): the
    reference pixels a subarray at that place holds.
    """
    ny, nx = dimensions
    if xstart is None and ystart is None:
        ref = np.ones((ny, nx), int)
        strip_border(ref, _full_frame_border(instrument_name))[...] = 0
        return ref
    return reference_pixel_mask(instrument_name, xstart or 1, ystart or 1, nx, ny).astype(int)


def _full_frame_border(instrument_name):
    """(left, right, bottom, top) reference border of a full frame (as every
    instrument but MIRI's, 4 on each side, for a name the table lacks)."""
    bottom, top, left, right = REFPIX_BORDERS.get(str(instrument_name).upper(), (4, 4, 4, 4))
    return left, right, bottom, top


def science_pixels(data, instrument_name):
    """A full-frame image without its reference pixels."""
    return strip_border(np.asarray(data), _full_frame_border(instrument_name))


def pad_with_refpix(data, instrument_name):
    """A science-pixel image padded back with (zero) reference pixels."""
    from ..detectors import REFPIX_BORDERS
    bottom, top, left, right = REFPIX_BORDERS[instrument_name.upper()]
    return np.pad(np.asarray(data), ((bottom, top), (left, right)))


def miri_bad_columns(dimensions, xstart=1, columns=None):
    """Map (1) of the MIRI shorted columns in an image of ``dimensions`` (y, x).

    ``xstart`` is the image's first full-frame column (SUBSTRT1, 1-based), so a
    subarray gets the columns it contains; ``columns`` (0-based full-frame)
    default to ``MIRI_SHORTED_COLUMNS``.
    """
    out = np.zeros(dimensions, int)
    for c in MIRI_SHORTED_COLUMNS if columns is None else columns:
        x = int(c) - (int(xstart) - 1)
        if 0 <= x < dimensions[1]:
            out[:, x] = 1
    return out


# ---- manual flags -----------------------------------------------------------

def range_format(table_cell, total_dimension):
    """[start, stop) of a cell '34' ([34, 35]), '34:36' (inclusive: [34, 37]), ':36'
    (from 0) or '34:' (to ``total_dimension - 1``)."""
    text = str(table_cell).strip()
    if ":" not in text:
        return [int(text), int(text) + 1]
    lo, hi = text.split(":", 1)
    lo = int(lo) if lo.strip() else 0
    hi = int(hi) if hi.strip() else total_dimension - 1
    return [lo, hi + 1]


def split_row(line, colname):
    """[value] for an integer cell, [start, end] for a range 'start:end'."""
    text = str(line[colname]).strip()
    if ":" in text:
        lo, hi = text.split(":", 1)
        return [int(lo) if lo else None, int(hi) if hi else None]
    return [int(text)]


def read_manual_flag_file(filename):
    """Table (x, y, flag) of manually flagged pixels; x and y may be ranges 'a:b'."""
    table = Table.read(filename, format="ascii", comment="#")
    missing = [c for c in ("x", "y", "flag") if c not in table.colnames]
    if missing:
        raise ValueError(f"{filename}: manual flag file lacks column(s) {missing}")
    return table


def manual_flags(filename, map_shape, no_use):
    """DQ map of the pixels in a manual flag file (DO_NOT_USE for types in no_use)."""
    table = read_manual_flag_file(filename)
    no_use = set(flag_type_check(no_use))
    mask = np.zeros(map_shape, int)
    for row in table:
        flags = flag_type_check(str(row["flag"]).split("+"))
        value = flag_value(flags) | (PIXEL["DO_NOT_USE"] if no_use & set(flags) else 0)
        y0, y1 = range_format(row["y"], map_shape[0])
        x0, x1 = range_format(row["x"], map_shape[1])
        mask[y0:y1, x0:x1] |= value
    return mask


def determine_manual_file(inst_name, detector_name):
    """The manual flag file shipped for a detector, or None if there is none."""
    name = f"{inst_name.lower()}_{detector_name.lower()}_manual_flags.txt"
    path = resources.files("jwst_reffiles").joinpath(f"bad_pixel_mask/manual_flags/{name}")
    return str(path) if path.is_file() else None


# ---- files ------------------------------------------------------------------

def get_fastaxis(filename):
    """(FASTAXIS, SLOWAXIS) of a file."""
    hdr = fits.getheader(filename, 0)
    return int(hdr.get("FASTAXIS", -1)), int(hdr.get("SLOWAXIS", 2))


def read_files(filenames, dead_search_type):
    """(stack, instrument, detector) of the inputs, as documented: the stack of
    images to search (every integration of rate images, MIRI 10th groups, or for
    'saturation_check' the mean of the last 4 groups of raw ramps), each input once.
    Inputs must share instrument, detector and subarray."""
    stack = _read_stack(filenames, dead_search_type)
    hdr = fits.getheader(filenames[0], 0)
    return stack, str(hdr.get("INSTRUME", "")).upper(), str(hdr.get("DETECTOR", "")).upper()


def _read_stack(filenames, dead_search_type):
    if dead_search_type not in ("sigma_rate", "absolute_rate", "saturation_check"):
        raise ValueError(f"Unknown dead search type option: {dead_search_type!r}")
    images, ref = [], None
    for f in filenames:
        with fits.open(f) as hdul:
            hdr = hdul[0].header
            key = (hdr.get("INSTRUME"), hdr.get("DETECTOR"), hdr.get("SUBARRAY"))
            if ref is None:
                ref = key
            elif key != ref:
                raise ValueError(f"{f}: INSTRUME/DETECTOR/SUBARRAY {key} differ from the first "
                                 f"file's {ref}")
            data = hdul["SCI"].data
            if dead_search_type == "saturation_check":
                images.append(average_last4groups(data))
            elif str(hdr.get("INSTRUME", "")).upper() == "MIRI" and data.ndim == 4:
                images.append(extract_10th_group(data))
            elif data.ndim == 2:
                images.append(data[None].astype(np.float64))
            elif data.ndim == 3:
                images.append(data.astype(np.float64))
            else:
                raise ValueError(f"{f}: SCI has shape {data.shape}; give rate images "
                                 f"(or MIRI ramps)")
    return np.concatenate(images)


def get_max_dead_norm_signal_default(instrument, detector, normalization_method):
    """Default dead ceiling for 'absolute_rate': 0.05 of the normalised signal; for
    NIRCam images that are not normalised (``normalization_method`` 'none') the
    detector's ceiling in DN/s (the predecessor's table)."""
    if str(instrument).upper() == "NIRCAM" and normalization_method == "none":
        if str(detector).upper() not in NIRCAM_DEAD_SIGNAL:
            raise ValueError(f"no default dead ceiling for NIRCam detector {detector!r}: give "
                             "max_dead_norm_signal")
        return NIRCAM_DEAD_SIGNAL[str(detector).upper()]
    if normalization_method == "none":
        log.warning("max_dead_norm_signal %.2f is a fraction of the normalised signal, but "
                    "normalization_method is 'none'", DEFAULT_MAX_DEAD_NORM_SIGNAL)
    return DEFAULT_MAX_DEAD_NORM_SIGNAL


#: Dead ceilings (DN/s) of NIRCam rate images that are not normalised, by detector
#: (jwst-reffiles 1.0.1's ``get_max_dead_norm_signal_default``).
NIRCAM_DEAD_SIGNAL = {"NRCA1": 25.0, "NRCA2": 25.0, "NRCA3": 30.0, "NRCA4": 30.0,
                      "NRCALONG": 40.0, "NRCB1": 25.0, "NRCB2": 25.0, "NRCB3": 25.0,
                      "NRCB4": 25.0, "NRCBLONG": 50.0}


def crds_input_checks(author_name, descrip, pedigree, use_after):
    """Check CRDS metadata values; ValueError naming the bad one."""
    from astropy.time import Time
    if not str(author_name or "").strip():
        raise ValueError("author must not be empty")
    if not str(descrip or "").strip():
        raise ValueError("description must not be empty")
    if len(str(descrip)) > 65:
        raise ValueError(f"Description cannot exceed 65 characters ({len(str(descrip))}: "
                         f"{descrip!r})")
    words = str(pedigree).split()
    if not words or words[0].upper() not in ("GROUND", "DUMMY", "INFLIGHT"):
        raise ValueError(f"pedigree must be GROUND, DUMMY or 'INFLIGHT start end', got {pedigree!r}")
    if words[0].upper() == "INFLIGHT" and len(words) != 3:
        raise ValueError(f"INFLIGHT pedigree needs a start and an end date, got {pedigree!r}")
    try:
        Time(str(use_after).replace(" ", "T"))
    except ValueError:
        raise ValueError(f"useafter is not a date: {use_after!r}") from None


def create_dqdef():
    """DQ_DEF rows (bit number, value, name, '') of every flag the pipeline defines,
    GOOD (0) included, in the pipeline's order."""
    return [(np.uint8(v.bit_length() - 1) if v else 0, v, name, "") for name, v in PIXEL.items()]


def create_dummy_hdu_list(sigma_threshold, smoothing_width, dead_sigma_threshold, dead_max_rate,
                          low_qe_max_rate, open_adj_max_rate):
    """Primary header holding this module's parameters (written into the output)."""
    hdr = fits.Header()
    hdr["BPMSIGMA"] = (sigma_threshold, "Sigma threshold of the clipped mean image")
    hdr["SMTHWIDT"] = (smoothing_width, "Smoothing box width")
    hdr["DEADSIGM"] = (dead_sigma_threshold, "Dead pixel sigma threshold")
    hdr["DEADMXRT"] = ("None" if dead_max_rate is None else dead_max_rate,
                       "Max normalised signal of a dead pixel")
    hdr["LOWQEMAX"] = (low_qe_max_rate, "Max normalised signal of a low QE pixel")
    hdr["OPENMAX"] = (open_adj_max_rate, "Min normalised signal of ADJ_OPEN neighbours")
    return fits.HDUList([fits.PrimaryHDU(header=hdr)])


def save_final_map(bad_pix_map, instrument, detector, files, author, description, pedigree,
                   useafter, history_text, sigma_thresh, smooth_width, dead_sigma_thresh,
                   max_dead_rate, max_low_qe_rate, max_open_adj_rate, do_not_use_list, outfile):
    """Save the bad pixel map as a CRDS-formatted MaskModel."""
    extra = create_dummy_hdu_list(sigma_thresh, smooth_width, dead_sigma_thresh, max_dead_rate,
                                  max_low_qe_rate, max_open_adj_rate)[0].header
    extra["DNU_LIST"] = (",".join(do_not_use_list) or "none", "Types also flagged DO_NOT_USE")
    return save_mask(bad_pix_map, outfile, files, extra_header=extra, instrument=instrument,
                     detector=detector, author=author, description=description,
                     pedigree=pedigree, useafter=useafter, history=history_text)


def pipeline_check(reference_filename, filename):
    """Run jwst's dq_init step with the new mask (raises if it fails).

    ``filename`` is a ramp, or any file of the same detector and subarray (a
    rate image, say): then a two-group ramp with that file's metadata stands in
    for it, since dq_init works on ramps.
    """
    import tempfile
    from ..pipeline.offline import offline_crds
    from jwst.dq_init import DQInitStep
    with dm.open(str(filename)) as model:
        if model.data.ndim == 4:
            target = str(filename)
        else:
            ny, nx = model.data.shape[-2:]
            target = dm.RampModel(data=np.zeros((1, 2, ny, nx), np.float32))
            target.update(model)
            target.meta.exposure.ngroups = 2
            target.meta.exposure.nints = 1
    with tempfile.TemporaryDirectory() as tmp, offline_crds(tmp):
        result = DQInitStep.call(target, override_mask=str(reference_filename))
    if result.meta.cal_step.dq_init != "COMPLETE":
        raise RuntimeError(f"dq_init with {reference_filename} did not complete on {filename}")
    return result


# ---- the main function --------------------------------------------------------

def normalize(mean_image, normalization_method, refpix, smoothing_box_width=15,
              smoothing_type="Box2D", sigma_threshold=3, fit_degree=2):
    """The mean image divided by its smooth version / clipped mean / fitted surface."""
    image = np.where(refpix, np.nan, mean_image)
    if normalization_method == "smoothed":
        return image / smooth(image, smoothing_box_width, smoothing_type)
    if normalization_method == "mean":
        return image / image_stats(image, sigma_threshold, mask=refpix)[0]
    if normalization_method == "fit2d":
        return image / fit_surface(image, fit_degree)
    if normalization_method == "none":
        return image
    raise ValueError(f"normalization_method must be 'smoothed', 'mean', 'fit2d' or 'none', "
                     f"got {normalization_method!r}")


def find_bad_pix(input_files, dead_search=True, low_qe_and_open_search=True,
                 dead_search_type="sigma_rate", sigma_threshold=3,
                 normalization_method="smoothed", smoothing_box_width=15, smoothing_type="Box2D",
                 dead_sigma_threshold=5.0, max_dead_norm_signal=None, run_dead_flux_check=False,
                 dead_flux_check_files=None, flux_check=45000, max_low_qe_norm_signal=0.5,
                 max_open_adj_norm_signal=1.05, manual_flag_file="default", do_not_use=(),
                 output_file=None, author="jwst_reffiles", description="A bad pix mask",
                 pedigree="GROUND", useafter="2019-04-01 00:00:00", history="",
                 quality_check=True, fit_degree=2):
    """Find DEAD, LOW_QE, OPEN and ADJ_OPEN pixels; return the DQ map (and save it).

    See the module docstring.  ``output_file`` None: the map is only returned.
    """
    input_files = [str(f) for f in input_files]
    if not input_files:
        raise ValueError("find_bad_pix: no input files")
    if dead_search_type not in ("sigma_rate", "absolute_rate"):
        raise ValueError(f"dead_search_type must be 'sigma_rate' or 'absolute_rate', got "
                         f"{dead_search_type!r}")
    do_not_use = flag_type_check(do_not_use)
    crds_input_checks(author, description, pedigree, useafter)
    hdr = fits.getheader(input_files[0], 0)
    instrument, detector = hdr.get("INSTRUME", ""), hdr.get("DETECTOR", "")
    max_dead_norm_signal = none_check(max_dead_norm_signal)
    if max_dead_norm_signal is None:
        max_dead_norm_signal = get_max_dead_norm_signal_default(instrument, detector,
                                                                normalization_method)

    stack = _read_stack(input_files, dead_search_type)
    mean_image, _ = mean_stdev_images(stack, sigma=sigma_threshold)
    ny, nx = mean_image.shape
    refpix = reference_pixel_map((ny, nx), instrument, int(hdr.get("SUBSTRT1", 1)),
                                 int(hdr.get("SUBSTRT2", 1))).astype(bool)
    norm = normalize(mean_image, normalization_method, refpix, smoothing_box_width,
                     smoothing_type, sigma_threshold, fit_degree)
    # the dead threshold's level and spread: an even subsample on a full frame
    mean_rate, std_rate = image_stats(norm, sigma_threshold, mask=refpix,
                                      max_values=ROBUST_MAX_VALUES)
    log.info("normalised flat: clipped mean %.4f, std %.4f", mean_rate, std_rate)

    maps = {}
    if dead_search:
        if dead_search_type == "sigma_rate":
            dead = dead_pixels_sigma_rate(norm, mean_rate, std_rate, dead_sigma_threshold)
            if low_qe_and_open_search:
                # low, but above the dead ceiling: the LOW_QE / OPEN search decides
                dead[norm >= max_dead_norm_signal] = 0
        else:
            dead = dead_pixels_absolute_rate(norm, max_dead_norm_signal)
        if run_dead_flux_check and dead_flux_check_files:
            ave = mean_stdev_images(_read_stack(dead_flux_check_files, "saturation_check"),
                                    sigma=sigma_threshold)[0]
            dead = dead_pixels_flux_check(dead, ave, flux_check)
        dead[refpix] = 0
        maps["DEAD"] = dead
    if low_qe_and_open_search:
        low_qe, open_map, adj = find_open_and_low_qe_pixels(
            norm, max_dead_norm_signal, max_low_qe_norm_signal, max_open_adj_norm_signal)
        for m in (low_qe, open_map, adj):
            m[refpix] = 0
        maps.update({"LOW_QE": low_qe, "OPEN": open_map, "ADJ_OPEN": adj})
    # no data (NaN in every input, e.g. DO_NOT_USE in the mask the inputs were
    # calibrated with): cannot be classified, and must not pass as good
    nodata = ~np.isfinite(norm) & ~refpix
    if nodata.any():
        log.warning("%d pixels have no valid signal in any input (were the inputs calibrated "
                    "with a mask that marks them DO_NOT_USE?): flagged OTHER_BAD_PIXEL and "
                    "DO_NOT_USE", int(nodata.sum()))
        maps["OTHER_BAD_PIXEL"] = nodata.astype(np.uint8)
        do_not_use = list(do_not_use) + ["OTHER_BAD_PIXEL"]
    maps["REFERENCE_PIXEL"] = refpix.astype(np.uint8)
    if instrument.upper() == "MIRI" and str(detector).upper() == "MIRIMAGE":
        maps["DO_NOT_USE"] = miri_bad_columns((ny, nx), int(hdr.get("SUBSTRT1", 1)))
    final = _combine_maps(maps, do_not_use)

    manual = determine_manual_file(instrument, detector) if manual_flag_file == "default" \
        else none_check(manual_flag_file)
    if manual:
        final |= manual_flags(manual, (ny, nx), do_not_use).astype(np.uint32)

    if output_file is not None:
        save_final_map(final, instrument, detector, input_files, author, description, pedigree,
                       useafter, history, sigma_threshold, smoothing_box_width,
                       dead_sigma_threshold, max_dead_norm_signal, max_low_qe_norm_signal,
                       max_open_adj_norm_signal, do_not_use, output_file)
        if quality_check:
            pipeline_check(output_file, input_files[0])
    return final.astype(int)

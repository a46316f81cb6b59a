"""Superbias reference file from dark current ramps.

The superbias is the sigma-clipped mean of the 0th group of every integration
of every input ramp; its error the sigma-clipped standard deviation.  Pixels
whose error is more than ``bad_sigma_threshold`` standard deviations above the
(clipped) mean error of the science pixels are flagged UNRELIABLE_BIAS and
DO_NOT_USE.  The 0th groups are read a block of rows at a time, so memory does
not grow with the number of files.  Plots and the optional filled superbias
are written next to ``outfile``, never into the current directory.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from stdatamodels.jwst import datamodels as dm

from ..detectors import reference_pixel_mask
from ..dq import dq_def_records, flag_value
from ..io import GroupSource
from ..reffile import _Sub, get_crds_info, save_reference
from ..stats import (ROBUST_MAX_VALUES, as_float, calculate_mean, calculate_stddev, image_stats,
                     stack_stats)
from ..utils import none_check

log = logging.getLogger(__name__)

__all__ = ["make_superbias", "calculate_mean", "calculate_stddev", "find_unreliable_bias_pixels",
           "get_crds_info", "make_filled_superbias", "make_refpix_map", "none_check",
           "save_superbias"]


def make_refpix_map(filename):
    """Map (1 = reference pixel) for a file: from PIXELDQ, else from the detector layout.

    Calibrated files carry REFERENCE_PIXEL in PIXELDQ; raw (uncal) files do
    not, and then the instrument's reference-pixel layout and the subarray
    corner in the header give the map (the predecessor returned all zeros).
    """
    with fits.open(filename) as hdul:
        hdr = hdul[0].header
        if "PIXELDQ" in hdul:
            pixeldq = hdul["PIXELDQ"].data
            return ((pixeldq & flag_value("REFERENCE_PIXEL")) > 0).astype(int)
        shape = hdul["SCI"].shape[-2:]
    try:
        ref = reference_pixel_mask(hdr.get("INSTRUME", ""), int(hdr.get("SUBSTRT1", 1)),
                                   int(hdr.get("SUBSTRT2", 1)), shape[1], shape[0])
    except ValueError:
        ref = np.zeros(shape, bool)
    return ref.astype(int)


def find_unreliable_bias_pixels(error, bad_clipping_sigma=3.0, bad_max_clipping_iters=3,
                                bad_sigma_threshold=5.0, plot=False, refpix_map=None,
                                plot_file=None):
    """DQ map flagging pixels with a high superbias error (UNRELIABLE_BIAS + DO_NOT_USE).

    The threshold is the clipped mean + ``bad_sigma_threshold`` x clipped std of
    the error image over the science pixels (on a full frame an even subsample
    of ``stats.ROBUST_MAX_VALUES`` of them: a threshold's precision, not a
    pixel's).  With ``plot`` a histogram is saved to ``plot_file``.
    """
    error = as_float(error)
    mask = ~np.isfinite(error)
    if refpix_map is not None:
        mask |= np.asarray(refpix_map, bool)
    mean, _, std = image_stats(error, sigma=bad_clipping_sigma, maxiters=bad_max_clipping_iters,
                               mask=mask, max_values=ROBUST_MAX_VALUES)
    threshold = mean + bad_sigma_threshold * std
    with np.errstate(invalid="ignore"):
        bad = (error > threshold) | ~np.isfinite(error)
    dq = np.zeros(error.shape, dtype=int)
    dq[bad] = flag_value(["UNRELIABLE_BIAS", "DO_NOT_USE"])
    log.info("%d UNRELIABLE_BIAS pixels (error > %.2f DN)", int(bad.sum()), threshold)
    if plot:
        if plot_file is None:
            raise ValueError("plot=True needs a plot_file")
        _histogram(error[np.isfinite(error)], threshold, plot_file)
    return dq


def _histogram(values, threshold, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..reffile import atomic_write
    fig, ax = plt.subplots(figsize=(6, 4))
    hi = np.percentile(values, 99.9) if values.size else 1
    ax.hist(values, bins=200, range=(0, max(hi, threshold) * 1.1), color="0.3")
    ax.axvline(threshold, color="r", label=f"UNRELIABLE_BIAS threshold {threshold:.2f} DN")
    ax.set_xlabel("superbias error [DN]")
    ax.set_ylabel("pixels")
    ax.set_yscale("log")
    ax.legend()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def make_filled_superbias(superbias, refpix_map, bad_clipping_sigma=3.0,
                          bad_max_clipping_iters=3, bad_sigma_threshold=5.0, box_width=3,
                          outfile="superbias_jwst_reffiles.fits"):
    """A superbias where high pixels are replaced by the median of their neighbours.

    High pixels: above the clipped mean + ``bad_sigma_threshold`` x std of the
    science pixels (an even subsample of them on a full frame, as
    :func:`find_unreliable_bias_pixels`).  The replacement is the median of the science pixels in a
    ``box_width`` box around each (reference pixels are never used or changed).
    The filled image is returned, and saved as ``<outfile>_filled.fits`` when
    ``outfile`` is given.
    """
    superbias = np.asarray(superbias, dtype=np.float64)
    ref = np.asarray(refpix_map, bool)
    mean, _, std = image_stats(superbias, bad_clipping_sigma, bad_max_clipping_iters, mask=ref,
                               max_values=ROBUST_MAX_VALUES)
    high = (superbias > mean + bad_sigma_threshold * std) & ~ref
    filled = superbias.copy()
    half = max(1, int(box_width) // 2)
    work = np.where(ref | high, np.nan, superbias)
    padded = np.pad(work, half, constant_values=np.nan)
    ys, xs = np.nonzero(high)
    if ys.size:
        windows = np.lib.stride_tricks.sliding_window_view(padded, (2 * half + 1,) * 2)
        with warnings.catch_warnings():          # all-NaN boxes give NaN: handled below
            warnings.simplefilter("ignore", RuntimeWarning)
            values = np.nanmedian(windows[ys, xs].reshape(ys.size, -1), axis=1)
        filled[ys, xs] = np.where(np.isfinite(values), values, superbias[ys, xs])
    if outfile is not None:
        from ..reffile import atomic_write
        path = Path(outfile).with_name(Path(outfile).stem + "_filled.fits")
        data = filled.astype(np.float32)
        atomic_write(path, lambda tmp: fits.PrimaryHDU(data).writeto(tmp))
    return filled


def save_superbias(superbias, error, dq, instrument="", detector="", subarray="GENERIC",
                   readpatt="ANY", outfile="superbias_jwst_reffiles.fits", author="jwst_reffiles",
                   description="Super Bias Image", pedigree="GROUND",
                   useafter="2000-01-01T00:00:00", history="", fastaxis=-1, slowaxis=2,
                   substrt1=1, substrt2=1, filenames=()):
    """Save a CRDS-formatted superbias reference file (SuperBiasModel)."""
    superbias = np.asarray(superbias, dtype=np.float32)
    dq = np.asarray(dq, dtype=np.uint32)
    info = {"instrument": instrument, "detector": detector,
            "subarray": _Sub(subarray, substrt1, substrt2, superbias.shape[1], superbias.shape[0]),
            "readpatt": readpatt, "fastaxis": fastaxis, "slowaxis": slowaxis}
    model = dm.SuperBiasModel(data=superbias, err=np.asarray(error, dtype=np.float32), dq=dq,
                              dq_def=dq_def_records(dq))
    return save_reference(model, outfile, reftype="SUPERBIAS", input_files=filenames, info=info,
                          author=author, description=description, pedigree=pedigree,
                          useafter=useafter, history=history)


def make_superbias(filenames, clipping_sigma=3.0, max_clipping_iters=3, bad_clipping_sigma=3.0,
                   bad_max_clipping_iters=3, bad_sigma_threshold=5.0, plot=False,
                   save_filled=False, box_width=3, save_reffile=True,
                   outfile="superbias_jwst_reffiles.fits", author="jwst_reffiles",
                   description="Super Bias Image", pedigree="GROUND",
                   useafter="2000-01-01T00:00:00", history="", subarray=None, readpatt=None):
    """Make a superbias reference file from dark ramps.

    Returns (superbias, error, dq) images.  See the module docstring.
    """
    filenames = [str(f) for f in filenames]
    if not filenames:
        raise ValueError("make_superbias: no input files")
    if (save_reffile or plot or save_filled) and outfile is None:
        raise ValueError("make_superbias: outfile must be given")
    with GroupSource(filenames, group=0) as source:
        # float32 images (the file's type; the statistics are computed in float64)
        st = stack_stats(source, sigma=clipping_sigma, maxiters=max_clipping_iters,
                         dtype=np.float32)
    superbias, error = st.mean, st.std
    refpix = make_refpix_map(filenames[0]).astype(bool)
    plot_file = (Path(outfile).with_name(Path(outfile).stem + "_unreliable_bias_hist.png")
                 if plot else None)
    dq = find_unreliable_bias_pixels(error, bad_clipping_sigma, bad_max_clipping_iters,
                                     bad_sigma_threshold, plot=plot, refpix_map=refpix,
                                     plot_file=plot_file)
    if save_filled:
        make_filled_superbias(superbias, refpix, bad_clipping_sigma, bad_max_clipping_iters,
                              bad_sigma_threshold, box_width, outfile)
    if save_reffile:
        (instrument, detector, sub, rp, fastaxis, slowaxis, x0, y0) = get_crds_info(
            filenames[0], subarray, readpatt)
        save_superbias(superbias, error, dq, instrument, detector, sub, rp, outfile, author,
                       description, pedigree, useafter, history, fastaxis, slowaxis, x0, y0,
                       filenames)
    return superbias.astype(np.float64)

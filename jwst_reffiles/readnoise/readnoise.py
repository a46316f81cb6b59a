"""Readnoise reference file from dark current ramps.

Method 'stack' (default): the group differences (CDS images) of every
integration of every input ramp form one stack; the readnoise is the
sigma-clipped standard deviation through it.  Method 'ramp': the same per
ramp, then the sigma-clipped mean of the per-ramp variances.  Unlike the
predecessor, the standard deviations are corrected for the biases of short
stacks, correlated consecutive differences and clipping (see
:func:`unbiased_variance`), so that short ramps give the right noise.

group_diff_type 'independent' differences each group once (1-0, 3-2, ...; an
odd last group is left out), 'consecutive' differences neighbours (1-0, 2-1,
...).  The result is the CDS noise in DN, what the jwst READNOISE reference
file holds.

Memory: the files are read a block of rows at a time (never whole), so memory
does not grow with the number of files.  ``slice_width`` is the number of rows
per block when ``nproc`` > 1 (rows are contiguous on disk; the predecessor's
column slices read every file once per slice).
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels as dm

from ..detectors import reference_pixel_mask
from ..io import CDSSource, RampFile, cds_differences
from ..reffile import get_crds_info, save_reference
from ..stats import calculate_mean, calculate_stddev, image_stats, stack_stats
from ..utils import none_check

log = logging.getLogger(__name__)

__all__ = ["unbiased_variance", "make_readnoise", "make_cds_stack", "readnoise_by_ramp", "readnoise_by_slice",
           "calculate_mean", "calculate_stddev", "use_single_value", "get_crds_info",
           "save_readnoise", "none_check", "wrapper_readnoise_by_ramp",
           "wrapper_readnoise_by_slice"]


def make_cds_stack(data, group_diff_type="independent"):
    """Stack of group-difference (CDS) images of ramps (nints, ngroups, y, x)."""
    return cds_differences(data, group_diff_type)


def readnoise_by_ramp(filename, group_diff_type="independent", clipping_sigma=3.0,
                      max_clipping_iters=3):
    """Readnoise image of one ramp file (clipped, bias-corrected std of its CDS stack)."""
    return _readnoise_rows([filename], group_diff_type, clipping_sigma, max_clipping_iters,
                           0, _image_rows(filename))


def readnoise_by_slice(filenames, group_diff_type="independent", clipping_sigma=3.0,
                       max_clipping_iters=3, column=0, slice_width=50):
    """Readnoise of the columns [column, column + slice_width) through all files' CDS stack."""
    with CDSSource(filenames, group_diff_type,
                   columns=slice(column, column + slice_width)) as source:
        st = stack_stats(source, sigma=clipping_sigma, maxiters=max_clipping_iters)
        var = unbiased_variance(st.std, st.count, group_diff_type,
                                _diffs_per_int(source, group_diff_type), clipping_sigma)
    return np.sqrt(var)


def unbiased_variance(std, count, group_diff_type, diffs_per_int, clipping_sigma):
    """Variance of the group differences, corrected for the estimator's biases.

    The kernel's standard deviation (astropy semantics: around the sample mean,
    ddof=0, after clipping at ``clipping_sigma``) is low for short stacks:

    * independent differences: by (n-1)/n;
    * consecutive differences share reads (correlation -1/2), so the sample
      mean removes less: by 1 - 1/(n N), N the differences per integration;
    * clipping at k sigma truncates a Gaussian's tails: by
      1 - 2 k phi(k) / (2 Phi(k) - 1).
    """
    from scipy.stats import norm
    k = float(clipping_sigma)
    n = np.asarray(count, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if group_diff_type == "independent":
            factor = n / (n - 1)
        else:
            factor = 1.0 / (1.0 - 1.0 / (n * max(1, diffs_per_int)))
        factor = np.where(n >= 2, factor, np.nan)
    trunc = 1.0 - 2 * k * norm.pdf(k) / (2 * norm.cdf(k) - 1)
    return np.asarray(std, dtype=np.float64) ** 2 * factor / trunc


def _diffs_per_int(source, group_diff_type) -> int:
    ngroups = min(f.shape[1] for f in source.files)
    return ngroups // 2 if group_diff_type == "independent" else ngroups - 1


def _readnoise_rows(filenames, group_diff_type, clipping_sigma, max_clipping_iters, y0, y1,
                    variance=False):
    """Readnoise (or its variance) of rows [y0, y1) through the files' CDS stack."""
    with CDSSource(filenames, group_diff_type) as source:
        class Rows:
            shape = (source.shape[0], y1 - y0, source.shape[2])

            @staticmethod
            def read(a, b):
                return source.read(y0 + a, y0 + b)
        st = stack_stats(Rows(), sigma=clipping_sigma, maxiters=max_clipping_iters)
        var = unbiased_variance(st.std, st.count, group_diff_type,
                                _diffs_per_int(source, group_diff_type), clipping_sigma)
    return var if variance else np.sqrt(var)


def wrapper_readnoise_by_ramp(args):
    """readnoise_by_ramp(*args), for multiprocessing."""
    return readnoise_by_ramp(*args)


def wrapper_readnoise_by_slice(args):
    """readnoise_by_slice(*args), for multiprocessing."""
    return readnoise_by_slice(*args)


def _image_rows(path) -> int:
    """Number of image rows of a ramp file (from its header alone)."""
    with RampFile(path) as f:
        return f.shape[2]


def _wrapper_rows(args):
    return _readnoise_rows(*args)


def use_single_value(readnoise, instrument, detector, subarray, clipping_sigma=3.0,
                     max_clipping_iters=3, xstart=1, ystart=1):
    """An image where every pixel has the sigma-clipped mean of the science pixels.

    Reference pixels (from the instrument's layout and the subarray corner)
    are left out of the mean.
    """
    readnoise = np.asarray(readnoise)
    try:
        ref = reference_pixel_mask(instrument, xstart, ystart, readnoise.shape[1],
                                   readnoise.shape[0])
    except ValueError:
        ref = np.zeros(readnoise.shape, bool)
    mean, _, _ = image_stats(readnoise, sigma=clipping_sigma, maxiters=max_clipping_iters,
                             mask=ref)
    log.info("single readnoise value for %s %s %s: %.3f DN", instrument, detector, subarray, mean)
    return np.full(readnoise.shape, mean, dtype=np.float64)


def save_readnoise(readnoise, instrument="", detector="", subarray="GENERIC", readpatt="ANY",
                   outfile="readnoise_jwst_reffiles.fits", author="jwst_reffiles",
                   description="CDS Noise Image", pedigree="GROUND",
                   useafter="2015-10-01T00:00:00", history="", fastaxis=-1, slowaxis=2,
                   substrt1=1, substrt2=1, filenames=()):
    """Save a CRDS-formatted readnoise reference file (ReadnoiseModel)."""
    from ..reffile import _Sub
    readnoise = np.asarray(readnoise, dtype=np.float32)
    info = {"instrument": instrument, "detector": detector,
            "subarray": _Sub(subarray, substrt1, substrt2, readnoise.shape[1], readnoise.shape[0]),
            "readpatt": readpatt, "fastaxis": fastaxis, "slowaxis": slowaxis}
    model = dm.ReadnoiseModel(data=readnoise)
    return save_reference(model, outfile, reftype="READNOISE", input_files=filenames, info=info,
                          author=author, description=description, pedigree=pedigree,
                          useafter=useafter, history=history)


def make_readnoise(filenames, method="stack", group_diff_type="independent", clipping_sigma=3.0,
                   max_clipping_iters=3, nproc=1, slice_width=50, single_value=False,
                   outfile="readnoise_jwst_reffiles.fits", author="jwst_reffiles",
                   description="CDS Noise Image", pedigree="GROUND",
                   useafter="2015-10-01T00:00:00", history="", subarray=None, readpatt=None,
                   save_tmp=False):
    """Make a readnoise reference file from dark ramps; return the readnoise image.

    See the module docstring for the methods.  ``save_tmp`` also writes the
    readnoise image as ``<outfile>_tmp.fits`` (next to outfile) before the
    CRDS formatting.
    """
    filenames = [str(f) for f in filenames]
    if not filenames:
        raise ValueError("make_readnoise: no input files")
    if outfile is None:
        raise ValueError("make_readnoise: outfile must be given")
    if method not in ("stack", "ramp"):
        raise ValueError(f"method must be 'stack' or 'ramp', got {method!r}")
    cds_differences(np.zeros((1, 2, 1, 1)), group_diff_type)      # validates the name
    nproc = max(1, int(nproc))
    if method == "stack":
        ny = _image_rows(filenames[0])     # all files are checked when they are read
        if nproc == 1:
            readnoise = _readnoise_rows(filenames, group_diff_type, clipping_sigma,
                                        max_clipping_iters, 0, ny)
        else:
            step = max(1, int(slice_width))
            bands = [(filenames, group_diff_type, clipping_sigma, max_clipping_iters, y0,
                      min(ny, y0 + step)) for y0 in range(0, ny, step)]
            with ProcessPoolExecutor(nproc) as pool:
                readnoise = np.concatenate(list(pool.map(_wrapper_rows, bands)))
    else:
        # per ramp, then the clipped mean of the per-ramp variances (a mean of
        # standard deviations of short ramps would be biased low)
        ny = _image_rows(filenames[0])
        args = [([f], group_diff_type, clipping_sigma, max_clipping_iters, 0, ny, True)
                for f in filenames]
        if nproc == 1:
            maps = [_wrapper_rows(a) for a in args]
        else:
            with ProcessPoolExecutor(nproc) as pool:
                maps = list(pool.map(_wrapper_rows, args))
        readnoise = np.sqrt(np.ma.filled(calculate_mean(np.stack(maps), clipping_sigma,
                                                        max_clipping_iters), np.nan))
    (instrument, detector, sub, rp, fastaxis, slowaxis, x0, y0) = get_crds_info(
        filenames[0], subarray, readpatt)
    if single_value:
        readnoise = use_single_value(readnoise, instrument, detector, sub, clipping_sigma,
                                     max_clipping_iters, x0, y0)
    readnoise = readnoise.astype(np.float32)
    if save_tmp:
        from astropy.io import fits
        from ..reffile import atomic_write
        tmp = Path(outfile).with_name(Path(outfile).stem + "_tmp.fits")
        atomic_write(tmp, lambda p: fits.PrimaryHDU(readnoise).writeto(p))
    save_readnoise(readnoise, instrument, detector, sub, rp, outfile, author, description,
                   pedigree, useafter, history, fastaxis, slowaxis, x0, y0, filenames)
    return readnoise

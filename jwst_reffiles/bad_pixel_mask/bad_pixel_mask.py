"""Bad pixel mask from flats and darks: the wrapper the spec documents.

Calls :func:`jwst_reffiles.bad_pixel_mask.badpix_from_flats.find_bad_pix`
(DEAD, LOW_QE, OPEN, ADJ_OPEN) and
:func:`jwst_reffiles.dark_current.badpix_from_darks.find_bad_pix` (HOT, WARM,
RC, low pedestal, many jumps, noisy), combines their maps bit by bit and saves
one MaskModel.  Either input set may be omitted.  Defaults are never shared
mutable objects (the predecessor's flag_values accumulated DO_NOT_USE from one
call to the next).
"""

from __future__ import annotations

import logging

import numpy as np
from astropy.io import fits

from ..dark_current import badpix_from_darks
from . import badpix_from_flats

log = logging.getLogger(__name__)

__all__ = ["bad_pixels", "create_output_filename", "instrument_info", "save_final_map"]


def create_output_filename(inst_name, det_name):
    """Default path of a bad pixel mask: ``<cwd>/<inst>_<det>_<time>_badpix_mask.fits``
    (as documented; the time as YYYY-MM-DDTHH-MM-SS.ffffff, no spaces or colons)."""
    import datetime
    import os
    now = datetime.datetime.now().strftime("%Y-%m-%dT%H-%M-%S.%f")
    return os.path.join(os.getcwd(), f"{inst_name}_{det_name}_{now}_badpix_mask.fits")


def instrument_info(filename):
    """(instrument, detector) of a file, lower case (as documented); KeyError naming
    the file and the keyword it lacks."""
    hdr = fits.getheader(filename, 0)
    for key in ("INSTRUME", "DETECTOR"):
        if key not in hdr:
            raise KeyError(f"expecting {key} in the primary header of {filename}")
    return str(hdr["INSTRUME"]).lower(), str(hdr["DETECTOR"]).lower()


def save_final_map(bad_pix_map, instrument, detector, hdulist, files, author, description,
                   pedigree, useafter, history_text, outfile):
    """Save the combined map as a CRDS MaskModel; ``hdulist`` holds extra keywords."""
    from ..reffile import save_mask
    return save_mask(bad_pix_map, outfile, files,
                     extra_header=None if hdulist is None else hdulist[0].header,
                     instrument=instrument, detector=detector, author=author,
                     description=description, pedigree=pedigree, useafter=useafter,
                     history=history_text)


def bad_pixels(flat_slope_files=None, dead_search=True, low_qe_and_open_search=True,
               dead_search_type="sigma_rate", flat_mean_sigma_threshold=3,
               flat_mean_normalization_method="smoothed", smoothing_box_width=15,
               smoothing_type="Box2D", dead_sigma_threshold=5.0, max_dead_norm_signal=None,
               run_dead_flux_check=False, dead_flux_check_files=None, flux_check=45000,
               max_low_qe_norm_signal=0.5, max_open_adj_norm_signal=1.05,
               manual_flag_file="default", flat_do_not_use=(), dark_slope_files=None,
               dark_uncal_files=None, dark_jump_files=None, dark_fitopt_files=None,
               dark_stdev_clipping_sigma=5.0, dark_max_clipping_iters=5,
               dark_noisy_threshold=5, max_saturated_fraction=0.5, max_jump_limit=10,
               jump_ratio_threshold=5, early_cutoff_fraction=0.25, pedestal_sigma_threshold=5,
               rc_fraction_threshold=0.8, low_pedestal_fraction=0.8, high_cr_fraction=0.8,
               flag_values=None, dark_do_not_use=None, plot=False,
               output_file=None, author="jwst_reffiles",
               description="A bad pix mask", pedigree="GROUND",
               useafter="2019-04-01 00:00:00", history="", quality_check=False,
               hot_threshold=None):
    """Find bad pixels in flats and darks and save one bad pixel mask.

    Returns the combined DQ map.  ``output_file=None`` uses
    :func:`create_output_filename` (in the current directory).
    """
    if not flat_slope_files and not dark_slope_files:
        raise ValueError("bad_pixels: give flat_slope_files, dark_slope_files or both")
    files = [str(f) for f in (flat_slope_files or [])] + [str(f) for f in (dark_slope_files or [])]
    inst, det = instrument_info(files[0])
    instrument, detector = inst.upper(), det.upper()
    if output_file is None:
        output_file = create_output_filename(inst, det)
    badpix_from_flats.crds_input_checks(author, description, pedigree, useafter)
    maps = []
    if flat_slope_files:
        maps.append(badpix_from_flats.find_bad_pix(
            flat_slope_files, dead_search=dead_search,
            low_qe_and_open_search=low_qe_and_open_search, dead_search_type=dead_search_type,
            sigma_threshold=flat_mean_sigma_threshold,
            normalization_method=flat_mean_normalization_method,
            smoothing_box_width=smoothing_box_width, smoothing_type=smoothing_type,
            dead_sigma_threshold=dead_sigma_threshold,
            max_dead_norm_signal=max_dead_norm_signal, run_dead_flux_check=run_dead_flux_check,
            dead_flux_check_files=dead_flux_check_files, flux_check=flux_check,
            max_low_qe_norm_signal=max_low_qe_norm_signal,
            max_open_adj_norm_signal=max_open_adj_norm_signal, manual_flag_file=manual_flag_file,
            do_not_use=list(flat_do_not_use), output_file=None, quality_check=False))
    if dark_slope_files:
        maps.append(badpix_from_darks.find_bad_pix(
            dark_slope_files, uncal_filenames=dark_uncal_files, jump_filenames=dark_jump_files,
            fitopt_filenames=dark_fitopt_files, clipping_sigma=dark_stdev_clipping_sigma,
            max_clipping_iters=dark_max_clipping_iters, noisy_threshold=dark_noisy_threshold,
            max_saturated_fraction=max_saturated_fraction, max_jump_limit=max_jump_limit,
            jump_ratio_threshold=jump_ratio_threshold,
            early_cutoff_fraction=early_cutoff_fraction,
            pedestal_sigma_threshold=pedestal_sigma_threshold,
            rc_fraction_threshold=rc_fraction_threshold,
            low_pedestal_fraction=low_pedestal_fraction, high_cr_fraction=high_cr_fraction,
            flag_values=flag_values, do_not_use=dark_do_not_use, outfile=None,
            hot_threshold=hot_threshold))
    shapes = {m.shape for m in maps}
    if len(shapes) != 1:
        raise ValueError(f"the flat and dark inputs have different sizes: {sorted(shapes)}")
    final = maps[0].copy()
    for m in maps[1:]:
        final |= m
    from ..detectors import reference_pixel_mask
    from ..dq import flag_value
    hdr = fits.getheader(files[0], 0)
    ref = reference_pixel_mask(instrument, int(hdr.get("SUBSTRT1", 1)), int(hdr.get("SUBSTRT2", 1)),
                               final.shape[1], final.shape[0])
    final[ref] |= np.uint32(flag_value("REFERENCE_PIXEL"))
    extra = badpix_from_flats.create_dummy_hdu_list(
        flat_mean_sigma_threshold, smoothing_box_width, dead_sigma_threshold,
        max_dead_norm_signal, max_low_qe_norm_signal, max_open_adj_norm_signal)
    save_final_map(final, instrument, detector, extra, files, author, description, pedigree,
                   useafter, history, output_file)
    if quality_check:
        badpix_from_flats.pipeline_check(output_file, files[0])
    return final

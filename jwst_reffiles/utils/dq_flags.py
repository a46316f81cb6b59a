"""DQ flag helpers at the documented path, on stdatamodels' definitions.

Names <-> bits live in :mod:`jwst_reffiles.dq`; this module adds the
array-level helpers the algorithms use.
"""

from __future__ import annotations

import numpy as np

from ..detectors import strip_border
from ..dq import PIXEL, dq_def_records, flag_names, flag_value, has_flag

__all__ = ["PIXEL", "flag_value", "flag_names", "dq_def_records", "flag_map",
           "first_flagged_group", "signals", "collapse_cr_map", "get_groupdq",
           "create_refpix_map", "extract_cr_mask", "signals_per_group"]


def flag_map(dq_array, mnemonic):
    """Boolean map of where the flag(s) ``mnemonic`` (a name or a list) are set.

    With several names, a pixel counts when any of them is set.
    """
    return has_flag(dq_array, mnemonic)


def collapse_cr_map(dq_map):
    """(nints, y, x): the index of the first group with any flag set in a 4-D DQ map
    (nints, ngroups, y, x); ngroups where none is."""
    flagged = np.asarray(dq_map) != 0
    first = np.argmax(flagged, axis=1)
    first[~flagged.any(axis=1)] = flagged.shape[1]
    return first


def get_groupdq(filename, refpix=None):
    """The GROUPDQ (nints, ngroups, y, x) of a file, ``refpix`` (left, right, bottom,
    top) outer columns and rows stripped off (None: the whole frame)."""
    from astropy.io import fits
    groupdq = fits.getdata(filename, "GROUPDQ")
    if groupdq.ndim != 4:
        raise ValueError(f"{filename}: expecting a 4-D GROUPDQ, got {groupdq.shape}")
    return strip_border(groupdq, refpix)


def create_refpix_map(filename):
    """Boolean map of the reference pixels of a file (its PIXELDQ, else DQ)."""
    from astropy.io import fits
    with fits.open(filename) as hdul:
        name = "PIXELDQ" if "PIXELDQ" in hdul else "DQ"
        dq = hdul[name].data
    return flag_map(dq if dq.ndim == 2 else dq.reshape(-1, *dq.shape[-2:])[0], "REFERENCE_PIXEL")


def extract_cr_mask(filename, refpix=None):
    """Boolean map (nints, ngroups, y, x) of the JUMP_DET flags of a file's GROUPDQ."""
    return flag_map(get_groupdq(filename, refpix), "JUMP_DET")


def signals_per_group(number_of_good, ngroup):
    """(good, bad) counts per group (ngroup, y, x) from the number of good groups of
    each integration (nints, y, x): how many integrations still have a good signal
    at each group, and how many do not."""
    number_of_good = np.asarray(number_of_good)
    nint = number_of_good.shape[0]
    good = np.stack([(g < number_of_good).sum(axis=0) for g in range(int(ngroup))]).astype(int)
    return good, nint - good


def first_flagged_group(groupdq, mnemonic="JUMP_DET"):
    """Index of the first group carrying the flag, per integration and pixel.

    ``groupdq`` is (nints, ngroups, ny, nx); pixels never flagged get ngroups.
    """
    flagged = (np.asarray(groupdq) & flag_value(mnemonic)) > 0
    ngroups = flagged.shape[1]
    first = np.argmax(flagged, axis=1)
    first[~flagged.any(axis=1)] = ngroups
    return first


def signals(dq_value):
    """The mnemonics set in one DQ value (an alias of :func:`jwst_reffiles.dq.flag_names`)."""
    return flag_names(dq_value)

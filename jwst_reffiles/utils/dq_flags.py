"""DQ flag helpers at the documented path, on stdatamodels' definitions.

Names <-> bits live in :mod:`jwst_reffiles.dq`; this module adds the
array-level helpers the algorithms use.
"""

from __future__ import annotations

import numpy as np

from ..dq import PIXEL, dq_def_records, flag_names, flag_value

__all__ = ["PIXEL", "flag_value", "flag_names", "dq_def_records", "flag_map",
           "first_flagged_group", "signals"]


def flag_map(dq_array, mnemonic):
    """0/1 map (uint8) of where the flag(s) ``mnemonic`` (a name or a list) are set.

    With several names, a pixel counts when any of them is set.
    """
    return ((np.asarray(dq_array) & flag_value(mnemonic)) > 0).astype(np.uint8)


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

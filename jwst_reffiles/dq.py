"""Data-quality flags: names <-> bit values, DQ_DEF tables.

The one place where the project turns DQ mnemonics (``"DEAD"``, ``"HOT"``,
...) into bits.  The definitions come from stdatamodels, so they follow the
installed pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from stdatamodels.jwst.datamodels import dqflags

__all__ = ["PIXEL", "flag_value", "has_flag", "dq_def_records", "flag_names"]

#: Mnemonic -> bit value, as the installed stdatamodels defines them.
PIXEL: dict[str, int] = dict(dqflags.pixel)


def flag_value(names: str | Iterable[str]) -> int:
    """Bitwise OR of the named flags.  Unknown names raise ValueError naming them."""
    if isinstance(names, str):
        names = [names]
    value = 0
    unknown = []
    for name in names:
        key = name.strip().upper()
        if key not in PIXEL:
            unknown.append(name)
        else:
            value |= PIXEL[key]
    if unknown:
        raise ValueError(f"unknown DQ flag name(s) {unknown}; known: {sorted(PIXEL)}")
    return value


def has_flag(dq, names: str | Iterable[str]) -> np.ndarray:
    """Where a DQ array has any of the named flags (a boolean array of its shape)."""
    return (np.asarray(dq).astype(np.uint32) & np.uint32(flag_value(names))) > 0


def flag_names(value: int) -> list[str]:
    """Mnemonics of the bits set in ``value`` (GOOD for 0)."""
    value = int(value)
    if value == 0:
        return ["GOOD"]
    return [n for n, v in PIXEL.items() if v and (value & v) == v and bin(v).count("1") == 1]


_DESCRIPTIONS = {
    "DO_NOT_USE": "Bad pixel. Do not use.",
    "SATURATED": "Pixel saturated during exposure",
    "JUMP_DET": "Jump detected during exposure",
    "DEAD": "Dead pixel",
    "HOT": "Hot pixel",
    "WARM": "Warm pixel",
    "LOW_QE": "Low quantum efficiency",
    "RC": "RC pixel",
    "TELEGRAPH": "Telegraph pixel",
    "NONLINEAR": "Pixel highly nonlinear",
    "BAD_REF_PIXEL": "Reference pixel cannot be used",
    "NO_FLAT_FIELD": "Flat field cannot be measured",
    "NO_GAIN_VALUE": "Gain cannot be measured",
    "NO_LIN_CORR": "Linearity correction not available",
    "NO_SAT_CHECK": "Saturation check not available",
    "UNRELIABLE_BIAS": "Bias variance large",
    "UNRELIABLE_DARK": "Dark variance large",
    "UNRELIABLE_SLOPE": "Slope variance large (i.e., noisy pixel)",
    "UNRELIABLE_FLAT": "Flat variance large",
    "OPEN": "Open pixel (counts move to adjacent pixels)",
    "ADJ_OPEN": "Adjacent to open pixel",
    "UNRELIABLE_RESET": "Sensitive to reset anomaly",
    "OTHER_BAD_PIXEL": "A catch-all flag",
    "REFERENCE_PIXEL": "Pixel is a reference pixel",
}


def dq_def_records(dq: np.ndarray | int | Iterable[str]) -> np.ndarray:
    """DQ_DEF rows (BIT, VALUE, NAME, DESCRIPTION) for the flags in use.

    ``dq`` is a DQ array (the flags present are listed), an int, or a list of
    mnemonics.  DO_NOT_USE is always listed.
    """
    if isinstance(dq, (list, tuple, set)) and all(isinstance(n, str) for n in dq):
        present = flag_value(dq)
    else:
        arr = np.asarray(dq, dtype=np.uint32)
        present = int(np.bitwise_or.reduce(arr.ravel())) if arr.size else 0
    present |= PIXEL["DO_NOT_USE"]
    rows = []
    for name, value in PIXEL.items():
        if value and bin(value).count("1") == 1 and present & value:
            rows.append((int(value).bit_length() - 1, value, name,
                         _DESCRIPTIONS.get(name, name.replace("_", " ").capitalize())))
    return np.array(rows, dtype=[("BIT", "<i4"), ("VALUE", "<u4"), ("NAME", "S40"),
                                 ("DESCRIPTION", "S80")])

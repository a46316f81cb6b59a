"""Reference-file metadata and atomic saving: the one place for both.

Every file the project writes through stdatamodels goes through
:func:`atomic_save`: the model is saved under its final name inside a
temporary directory next to the destination, then renamed into place.  A
reader never sees a half-written file, and FILENAME in the header is the final
name.

:func:`set_reference_meta` fills the CRDS-required keywords of a reference
model (REFTYPE, AUTHOR, DESCRIP, PEDIGREE, USEAFTER, TELESCOP, INSTRUME,
DETECTOR, SUBARRAY and its corner/size, HISTORY).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_save", "atomic_write", "set_reference_meta", "REFTYPES"]

#: jwst reference types and the stdatamodels class that holds each.
REFTYPES = {
    "mask": "MaskModel",
    "saturation": "SaturationModel",
    "superbias": "SuperBiasModel",
    "linearity": "LinearityModel",
    "dark": "DarkModel",
    "gain": "GainModel",
    "readnoise": "ReadnoiseModel",
    "ipc": "IPCModel",
    "reset": "ResetModel",
}


class _TempSibling:
    """A temporary directory beside ``path``, removed on exit whatever happens."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                            dir=self.path.parent))
        return self.tmpdir / self.path.name

    def __exit__(self, *exc):
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        return False


def atomic_save(model, path, **save_kwargs) -> Path:
    """Save a stdatamodels model to ``path`` atomically; return the path.

    Parent directories are created.  On any error nothing is left at ``path``
    (an existing file there is untouched) and no temporary file remains.
    """
    path = Path(path)
    with _TempSibling(path) as tmp:
        model.save(str(tmp), **save_kwargs)
        os.replace(tmp, path)
    return path


def atomic_write(path, writer) -> Path:
    """Call ``writer(tmp_path)`` then rename the result to ``path`` atomically.

    For files not written through stdatamodels (tables, plain FITS, text).
    """
    path = Path(path)
    with _TempSibling(path) as tmp:
        writer(tmp)
        os.replace(tmp, path)
    return path


def set_reference_meta(model, *, reftype: str, instrument: str, detector: str,
                       author: str = "jwst_reffiles", description: str = "",
                       pedigree: str = "GROUND", useafter: str = "2022-01-01T00:00:00",
                       subarray=None, history: list[str] | str | None = None,
                       exposure_type: str | None = None, readpatt: str | None = None,
                       filt: str | None = None, pupil: str | None = None,
                       channel: str | None = None, module: str | None = None,
                       fastaxis: int = 1, slowaxis: int = 2) -> None:
    """Fill the CRDS-required metadata of a reference-file model in place.

    ``subarray`` is an object with ``name, xstart, ystart, xsize, ysize``
    (e.g. :class:`jwst_reffiles.simulate.detectors.Subarray`); when omitted the
    SUBARRAY keywords are left unset.  ``fastaxis``/``slowaxis`` are written
    with the subarray keywords.
    """
    meta = model.meta
    meta.reftype = reftype.upper()
    meta.telescope = "JWST"
    meta.author = author
    meta.description = description or f"{reftype} reference file"
    meta.pedigree = pedigree
    meta.useafter = useafter
    meta.instrument.name = instrument.upper()
    meta.instrument.detector = detector.upper()
    optional = (("instrument", "channel", channel), ("instrument", "module", module),
                ("instrument", "filter", filt), ("instrument", "pupil", pupil),
                ("exposure", "type", exposure_type), ("exposure", "readpatt", readpatt))
    for node, attr, value in optional:
        if value is not None:        # (not every reference model has an exposure block)
            setattr(getattr(meta, node), attr, value)
    if subarray is not None:
        for attr in ("name", "xstart", "ystart", "xsize", "ysize"):
            setattr(meta.subarray, attr, getattr(subarray, attr))
        meta.subarray.fastaxis = fastaxis
        meta.subarray.slowaxis = slowaxis
    if history:
        for line in [history] if isinstance(history, str) else history:
            model.add_history_entry(line)

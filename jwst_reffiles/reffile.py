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

import numpy as np

from .reftypes import model_names

__all__ = ["atomic_save", "atomic_write", "set_reference_meta", "REFTYPES"]

#: jwst reference types and the stdatamodels class that holds each.
#: reftype -> data model class name (from :mod:`jwst_reffiles.reftypes`).
REFTYPES = model_names()


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


# --------------------------------------------------------------------------
# the one reference-file writer used by every algorithm
# --------------------------------------------------------------------------

class _Sub:
    def __init__(self, name, xstart, ystart, xsize, ysize):
        self.name, self.xstart, self.ystart, self.xsize, self.ysize = (
            name, xstart, ystart, xsize, ysize)


def crds_info_from_file(filename, subarray: str | None = None, readpatt: str | None = None,
                        shape: tuple[int, int] | None = None) -> dict:
    """CRDS selection metadata from one input file's primary header.

    Returns instrument, detector, subarray (name, xstart, ystart, xsize, ysize),
    readpatt, fastaxis, slowaxis.  ``subarray``/``readpatt`` given by the caller
    win over the header (as the predecessor's ``subarray``/``readpatt``
    arguments did); the subarray's corner and size always come from the header,
    so a subarray is never recorded as FULL.  ``shape`` (ny, nx) is used when
    the header has no SUBSIZE keywords.
    """
    from astropy.io import fits

    hdr = fits.getheader(filename, 0)
    missing = [k for k in ("INSTRUME", "DETECTOR") if k not in hdr]
    if missing:
        raise ValueError(f"{filename}: keyword(s) {', '.join(missing)} missing: cannot "
                         f"describe the reference file for CRDS")
    ysize = hdr.get("SUBSIZE2", shape[0] if shape else None)
    xsize = hdr.get("SUBSIZE1", shape[1] if shape else None)
    sub = _Sub(subarray or hdr.get("SUBARRAY", "GENERIC"), int(hdr.get("SUBSTRT1", 1)),
               int(hdr.get("SUBSTRT2", 1)), xsize, ysize)
    return {"instrument": hdr["INSTRUME"], "detector": hdr["DETECTOR"], "subarray": sub,
            "readpatt": readpatt or hdr.get("READPATT", "ANY"),
            "fastaxis": int(hdr.get("FASTAXIS", -1)), "slowaxis": int(hdr.get("SLOWAXIS", 2))}


def save_reference(model, output_file, *, reftype: str, input_files=(), info: dict | None = None,
                   author: str = "jwst_reffiles", description: str = "",
                   pedigree: str = "GROUND", useafter: str = "2022-01-01T00:00:00",
                   history: str | list[str] = "", exposure_type: str | None = None) -> Path:
    """Fill the CRDS metadata of ``model``, validate it and save it atomically.

    ``info`` is what :func:`crds_info_from_file` returns (taken from the first
    input file when omitted).  The names of all input files go into HISTORY.
    ``output_file`` must be given: nothing is ever written to a default place.
    """
    if output_file is None or str(output_file).strip() == "":
        raise ValueError(f"no output file given for the {reftype} reference file")
    input_files = [str(f) for f in input_files]
    if info is None:
        if not input_files:
            raise ValueError("either info or input_files must be given")
        info = crds_info_from_file(input_files[0])
    lines = [history] if isinstance(history, str) else list(history)
    lines = [h for h in lines if h]
    if input_files:
        lines.append(f"Made by jwst_reffiles from {len(input_files)} file(s): "
                     + ", ".join(os.path.basename(f) for f in input_files))
    sub = info["subarray"]
    if getattr(sub, "xsize", None) is None:
        sub = None
    set_reference_meta(model, reftype=reftype, instrument=info["instrument"],
                       detector=info["detector"], author=author,
                       description=description or f"{reftype} reference file",
                       pedigree=pedigree, useafter=useafter, subarray=sub,
                       history=lines, exposure_type=exposure_type,
                       readpatt=info.get("readpatt") if _has_exposure(model) else None,
                       fastaxis=info.get("fastaxis", -1), slowaxis=info.get("slowaxis", 2))
    model.validate()
    return atomic_save(model, output_file)


def _has_exposure(model) -> bool:
    try:
        model.meta.exposure
        return True
    except AttributeError:
        return False


def get_crds_info(filename, subarray=None, readpatt=None):
    """(instrument, detector, subarray, readpatt, fastaxis, slowaxis, substrt1, substrt2).

    The tuple the documented ``get_crds_info`` functions of the algorithm
    modules return; 'none' strings count as None; subarray None: the file's,
    readpatt None: 'ANY' (as documented).
    """
    from .utils import none_check
    readpatt = none_check(readpatt)
    info = crds_info_from_file(filename, none_check(subarray),
                               "ANY" if readpatt is None else readpatt)
    sub = info["subarray"]
    return (info["instrument"], info["detector"], sub.name, info["readpatt"],
            info["fastaxis"], info["slowaxis"], sub.xstart, sub.ystart)


def save_mask(dq, output_file, input_files, *, extra_header=None, instrument=None,
              detector=None, author="jwst_reffiles", description="Bad pixel mask",
              pedigree="GROUND", useafter="2022-01-01T00:00:00", history=()) -> Path:
    """Save a DQ map as a CRDS MaskModel (the one mask writer of the bad pixel modules).

    ``extra_header`` (a FITS header) adds module-specific keywords; the CRDS
    metadata come from the first input file, with ``instrument``/``detector``
    overriding its header when given.
    """
    from stdatamodels.jwst import datamodels as dm

    from .dq import dq_def_records
    dq = np.asarray(dq, dtype=np.uint32)
    model = dm.MaskModel(dq=dq, dq_def=dq_def_records(dq))
    if extra_header is not None:
        model.extra_fits = {"PRIMARY": {"header": [
            [k, extra_header[k], extra_header.comments[k]] for k in extra_header
            if k not in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND")]}}
    files = [str(f) for f in input_files]
    info = crds_info_from_file(files[0], shape=dq.shape)
    if instrument is not None:
        info["instrument"] = instrument
    if detector is not None:
        info["detector"] = detector
    history = [history] if isinstance(history, str) else list(history or [])
    return save_reference(model, output_file, reftype="MASK", input_files=files, info=info,
                          author=author, description=description, pedigree=pedigree,
                          useafter=str(useafter).replace(" ", "T"), history=history)

"""Reading ramps from FITS files a block of rows at a time.

Uncalibrated (uint16, scaled) and calibrated (float32) ramps are read a block
of rows at a time, only the requested bytes from disk, scaled here: memory is
set by the block, not by the file.  :class:`RampFile` reads each plane's rows
with one seek and read into the block (astropy's ``section`` where the file is
compressed), other extensions go through ``section`` (:func:`read_section`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

__all__ = ["file_checksum", "cached_checksum", "RampFile", "CDSSource", "GroupSource",
           "cds_differences", "open_unscaled", "read_section", "check_consistent",
           "READOUT_KEYS"]

#: Header keywords that inputs combined pixel by pixel must share.
READOUT_KEYS = ("INSTRUME", "DETECTOR", "SUBARRAY", "READPATT", "NGROUPS", "NFRAMES",
                "GROUPGAP")


def check_consistent(paths, keys=READOUT_KEYS, what: str = "inputs") -> dict:
    """Primary headers of ``paths``; ValueError listing every file whose ``keys``
    differ from the first file's."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError(f"no {what} given")
    headers = {}
    for p in paths:
        try:
            headers[p] = fits.getheader(p, 0)
        except OSError as exc:
            raise ValueError(f"{p}: cannot read the primary header ({exc})") from None
    ref = headers[paths[0]]
    problems = []
    for p in paths[1:]:
        h = headers[p]
        diff = [f"{k}={h.get(k)!r} (first file: {ref.get(k)!r})" for k in keys
                if h.get(k) != ref.get(k)]
        if diff:
            problems.append(f"{p}: " + ", ".join(diff))
    if problems:
        raise ValueError(f"inconsistent {what} (first file {paths[0]}):\n"
                         + "\n".join(f"  - {x}" for x in problems))
    return headers


def file_checksum(path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes (the one content fingerprint of the package)."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


_CHECKSUMS: dict = {}


def cached_checksum(path) -> str:
    """:func:`file_checksum`, computed once per file version in this process (the
    version: path, size, mtime and inode -- a shortcut; an edit that keeps all four
    is seen only by :func:`file_checksum` itself)."""
    import os
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _CHECKSUMS:
        _CHECKSUMS[key] = file_checksum(path)
    return _CHECKSUMS[key]


def open_unscaled(path):
    """Open a FITS file for :func:`read_section` (no memmap, scaling left to it)."""
    return fits.open(path, memmap=False, do_not_scale_image_data=True, lazy_load_hdus=True)


def read_section(hdu, index=(), dtype=np.float64) -> np.ndarray:
    """Part of an image HDU (opened by :func:`open_unscaled`), scaled, as ``dtype``.

    Only the requested bytes are read.  Integer ``dtype`` (DQ arrays stored as
    signed integers with BZERO) are converted exactly.
    """
    raw = np.asarray(hdu.section[index] if index != () else hdu.section[...])
    return _scaled(raw, float(hdu.header.get("BSCALE", 1.0)),
                   float(hdu.header.get("BZERO", 0.0)), np.dtype(dtype), None, hdu.name)


def _scaled(stored, bscale: float, bzero: float, dtype: np.dtype, out, what: str):
    """Stored FITS values as ``dtype`` with BSCALE/BZERO applied, into ``out``
    when given (``stored`` may be ``out`` itself, already of its type).  An
    integer ``dtype`` is converted exactly; ValueError naming ``what`` for
    scaled data."""
    if np.issubdtype(dtype, np.integer):
        if bscale != 1.0 or not float(bzero).is_integer():
            raise ValueError(f"{what}: scaled data (BSCALE {bscale}, BZERO {bzero}) "
                             "read as integers")
        if bzero != 0.0:
            stored = np.asarray(stored, np.int64) + int(bzero)
    if out is None:
        out = np.asarray(stored, dtype=dtype)       # byte order and type in one pass
    elif stored is not out:
        np.copyto(out, stored, casting="unsafe")
    if not np.issubdtype(dtype, np.integer):
        if bscale != 1.0:
            out *= bscale
        if bzero != 0.0:
            out += bzero
    return out


#: the stored (big-endian) type of each FITS BITPIX
_STORED = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


class RampFile:
    """A 4-D ramp (nints, ngroups, ny, nx) in the SCI extension of a FITS file."""

    def __init__(self, path, extension: str = "SCI"):
        self.path = Path(path)
        try:
            # no memmap: a section then reads just its bytes with seek/read, and
            # pages of many open files do not pile up as resident memory;
            # BZERO/BSCALE (uint16 raw data) are applied to the block here
            self._hdul = fits.open(self.path, memmap=False, do_not_scale_image_data=True,
                                   lazy_load_hdus=True)
            hdu = self._hdul[extension]
            self._bscale = float(hdu.header.get("BSCALE", 1.0))
            self._bzero = float(hdu.header.get("BZERO", 0.0))
        except (OSError, KeyError, IndexError) as exc:
            raise ValueError(f"{self.path}: cannot read the {extension} extension ({exc})") from None
        shape = hdu.shape
        if len(shape) == 3:
            shape = (1,) + tuple(shape)
        if len(shape) != 4:
            raise ValueError(f"{self.path}: {extension} must be a ramp (nints, ngroups, ny, nx), "
                             f"got shape {hdu.shape}")
        self._hdu = hdu
        # integers of up to 16 bits (raw DN, unscaled or shifted by an integral
        # BZERO) and float32 data are exact in float32: half the memory traffic
        bitpix = int(hdu.header.get("BITPIX", -64))
        #: FITS BITPIX of the stored values
        self.bitpix = bitpix
        self.exact_in_float32 = (bitpix == -32 or (bitpix in (8, 16) and self._bscale == 1.0
                                                   and float(self._bzero).is_integer()))
        self.ndim_file = len(hdu.shape)
        self.shape = tuple(int(s) for s in shape)
        self._raw = self._open_raw(hdu, bitpix)

    @property
    def flag_dtype(self) -> np.dtype:
        """The unsigned type to read flags (GROUPDQ) in: uint8 where they are
        stored as bytes (jwst's), else uint32."""
        return np.dtype(np.uint8 if self.bitpix == 8 else np.uint32)

    def _open_raw(self, hdu, bitpix):
        """The file opened for reading planes' rows directly (one seek and one
        read each, into the output's own buffer), or None where astropy's
        section must do it (a compressed file, an unusual BITPIX)."""
        if bitpix not in _STORED:
            return None
        try:
            raw = open(self.path, "rb")
        except OSError:
            return None
        if raw.read(6) != b"SIMPLE":            # gzip and the like: astropy reads them
            raw.close()
            return None
        self._datloc = int(hdu.fileinfo()["datLoc"])
        self._stored = np.dtype(_STORED[bitpix])
        return raw

    def _read_planes(self, ints, groups, y0, y1, into=None):
        """The stored values (big-endian, unscaled) of rows y0:y1 of the planes
        ``ints`` x ``groups`` (ranges), (len(ints), len(groups), y1-y0, nx);
        ``into``: a C-contiguous array of that shape and the stored type to
        fill instead of a new one."""
        nints, ngroups, ny, nx = self.shape
        out = np.empty((len(ints), len(groups), y1 - y0, nx), self._stored) if into is None \
            else into
        plane = ny * nx * self._stored.itemsize
        for a, i in enumerate(ints):
            for b, g in enumerate(groups):
                self._raw.seek(self._datloc + (i * ngroups + g) * plane
                               + y0 * nx * self._stored.itemsize)
                buf = out[a, b]
                if self._raw.readinto(buf) != buf.nbytes:
                    raise ValueError(f"{self.path}: the {self._hdu.name} data end early "
                                     f"(plane {i}, {g}, rows {y0}:{y1})")
        return out

    def read(self, y0: int = 0, y1: int | None = None, ints=slice(None),
             groups=slice(None), dtype=np.float64, out=None) -> np.ndarray:
        """Array (nints', ngroups', y1-y0, nx) of the requested part, as ``dtype``
        (float64; float32 only where :attr:`exact_in_float32`; an integer type
        for unscaled integer data, e.g. GROUPDQ, converted exactly).  ``out``:
        an array of that shape to fill (its dtype wins) instead of a new one."""
        y1 = self.shape[2] if y1 is None else y1
        dtype = np.dtype(out.dtype if out is not None else dtype)
        if self._raw is not None and isinstance(ints, slice) and isinstance(groups, slice):
            ints, groups = range(self.shape[0])[ints], range(self.shape[1])[groups]
            native = (dtype == self._stored.newbyteorder("=")
                      and (self._bzero == 0.0 or not np.issubdtype(dtype, np.integer)))
            shape = (len(ints), len(groups), y1 - y0, self.shape[3])
            if native and out is not None and out.flags.c_contiguous and out.shape == shape:
                # the stored bytes straight into the given array, swapped there
                self._read_planes(ints, groups, y0, y1, into=out.view(self._stored))
                stored = out.byteswap(inplace=True) if not self._stored.isnative else out
            else:
                stored = self._read_planes(ints, groups, y0, y1)
                if out is None and native:
                    # ours: swapped in place rather than copied
                    if not self._stored.isnative:
                        stored.byteswap(inplace=True)
                    out = stored = stored.view(dtype)
        elif self.ndim_file == 3:
            stored = self._hdu.section[groups, y0:y1, :][None][ints]
        else:
            stored = self._hdu.section[ints, groups, y0:y1, :]
        return _scaled(stored, self._bscale, self._bzero, dtype, out,
                       f"{self.path}: {self._hdu.name}")

    def read_usable(self, y0: int = 0, y1: int | None = None, ints=slice(None),
                    groups=slice(None), bad_flags: int | None = None) -> np.ndarray:
        """:meth:`read` with NaN where GROUPDQ or PIXELDQ has any of ``bad_flags``
        (default SATURATED and DO_NOT_USE); files without DQ are read as they are."""
        from .dq import flag_value
        bad = flag_value(["SATURATED", "DO_NOT_USE"]) if bad_flags is None else bad_flags
        data = self.read(y0, y1, ints, groups)
        y1 = self.shape[2] if y1 is None else y1
        names = [h.name for h in self._hdul]
        flagged = np.zeros(data.shape, dtype=bool)
        if "GROUPDQ" in names and self.ndim_file == 4:
            gdq = read_section(self._hdul["GROUPDQ"], (ints, groups, slice(y0, y1)), np.int64)
            flagged |= (gdq & bad) > 0
        if "PIXELDQ" in names:
            pdq = read_section(self._hdul["PIXELDQ"], (slice(y0, y1),), np.int64)
            flagged |= ((pdq & bad) > 0)[None, None]
        data[flagged] = np.nan
        return data

    def close(self):
        if self._raw is not None:
            self._raw.close()
        self._hdul.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def cds_differences(data: np.ndarray, group_diff_type: str = "independent",
                    out: np.ndarray | None = None) -> np.ndarray:
    """Group differences of ramps (nints, ngroups, ...) stacked over integrations.

    independent: (1-0), (3-2), ... every group used once (an odd last group is
    left out); consecutive: (1-0), (2-1), ...  A difference with a non-finite
    read is NaN.  float32 data stay float32 (exact for raw DN), others float64.
    ``out``: a C-contiguous array of the result's shape to write them into.
    """
    from .stats import as_float
    data = as_float(data)
    if data.ndim == 3:
        data = data[None]
    if group_diff_type == "independent":
        n = data.shape[1] // 2 * 2
        later, earlier = data[:, 1:n:2], data[:, 0:n:2]
    elif group_diff_type == "consecutive":
        later, earlier = data[:, 1:], data[:, :-1]
    else:
        raise ValueError(f"group_diff_type must be 'independent' or 'consecutive', got "
                         f"{group_diff_type!r}")
    if later.shape[1] == 0:
        raise ValueError(f"ramps with {data.shape[1]} group(s) give no group difference")
    with np.errstate(invalid="ignore"):          # inf - inf: NaN, made so below anyway
        diffs = np.subtract(later, earlier,
                            out=None if out is None else out.reshape(later.shape))
    if not np.isfinite(diffs).all():
        diffs[~np.isfinite(diffs)] = np.nan          # an infinite read: no difference
    return diffs.reshape((-1,) + diffs.shape[2:])


def read_dtype(ramps) -> type:
    """The dtype to read several :class:`RampFile` in: float32 where every one is
    exact in it, else float64."""
    return np.float32 if all(r.exact_in_float32 for r in ramps) else np.float64


class _RampFiles:
    """Several ramp files of one image size, opened for row-block reading."""

    def __init__(self, paths):
        self.files = [RampFile(p) for p in paths]
        if not self.files:
            raise ValueError("no input files")
        sizes = {f.shape[2:] for f in self.files}
        if len(sizes) != 1:
            raise ValueError("the input ramps have different image sizes: " + ", ".join(
                f"{f.path.name} {f.shape[2:]}" for f in self.files))
        self.image_shape = self.files[0].shape[2:]
        #: the dtype blocks are read in
        self.dtype = read_dtype(self.files)
        self._buffer = None

    def _block(self, y0, y1):
        """The (N, y1-y0, nx) block to fill: one buffer reused by every read
        (a new one per read page-faults its whole size again), so a block is
        valid until the next read."""
        shape = (self.shape[0], y1 - y0, self.shape[2])
        size = int(np.prod(shape))
        if self._buffer is None or self._buffer.size < size:
            self._buffer = np.empty(size, dtype=self.dtype)
        return self._buffer[:size].reshape(shape)

    def _fill(self, parts, y0, y1):
        """One block from each file's part (a callable of the file and the
        slice of the block it fills)."""
        out = self._block(y0, y1)
        i = 0
        for f, n in zip(self.files, self._counts):
            parts(f, out[i:i + n])
            i += n
        return out

    def close(self):
        for f in self.files:
            f.close()
        self._buffer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class CDSSource(_RampFiles):
    """The group differences of many ramp files as one stack, read a row block
    at a time (a block is valid until the next read)."""

    def __init__(self, paths, group_diff_type: str = "independent", columns=slice(None)):
        super().__init__(paths)
        self.group_diff_type = group_diff_type
        self.columns = columns
        ny, nx = self.image_shape
        nx = len(range(nx)[columns])
        self._counts = [cds_differences(np.zeros((f.shape[0], f.shape[1], 1, 1)),
                                        group_diff_type).shape[0] for f in self.files]
        self.shape = (sum(self._counts), ny, nx)

    def read(self, y0: int, y1: int) -> np.ndarray:
        return self._fill(lambda f, out: cds_differences(
            f.read(y0, y1, dtype=self.dtype)[..., self.columns], self.group_diff_type, out=out),
            y0, y1)


class GroupSource(_RampFiles):
    """One group (e.g. the 0th) of every integration of many ramp files, as a
    stack (a block is valid until the next read)."""

    def __init__(self, paths, group: int = 0):
        super().__init__(paths)
        short = [f.path.name for f in self.files if f.shape[1] <= group]
        if short:
            raise ValueError(f"group {group} does not exist in {', '.join(short)}")
        self.group = group
        ny, nx = self.image_shape
        self._counts = [f.shape[0] for f in self.files]
        self.shape = (sum(self._counts), ny, nx)

    def read(self, y0: int, y1: int) -> np.ndarray:
        g = slice(self.group, self.group + 1)
        return self._fill(lambda f, out: f.read(y0, y1, groups=g, out=out[:, None]), y0, y1)

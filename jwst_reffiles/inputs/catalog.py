"""The master table of input files.

:func:`collect_files` turns command-line arguments (files, globs, directories,
and ``@list`` files of paths) into a de-duplicated list of files matching the
basename pattern; :func:`build_catalog` reads their primary headers only, checks
the required keywords, computes each file's MJD and classifies it as dark or
flat.  Problems are gathered and reported together, each naming the file and
the keyword.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

log = logging.getLogger(__name__)

__all__ = ["illumination_level", "InputError", "collect_files", "read_primary_header", "observation_mjd",
           "classify", "build_catalog", "Catalog"]

_GLOB_CHARS = set("*?[")


class InputError(ValueError):
    """Problems with the input files; ``problems`` lists them (file, keyword, what)."""

    def __init__(self, problems: list[str], summary: str = "problems with the input files"):
        self.problems = list(problems)
        if len(problems) == 1:
            super().__init__(problems[0])
        else:
            super().__init__(f"{summary} ({len(problems)}):\n"
                             + "\n".join(f"  - {p}" for p in problems))


def _read_list_file(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            p = Path(line)
            out.append(str(p if p.is_absolute() else path.parent / p))
    return out


def collect_files(items, basenamepattern: str | None = None) -> tuple[list[Path], list[str]]:
    """Expand command-line input arguments into a sorted, de-duplicated list of files.

    Each item is a file, a glob, a directory (its files, not recursive), or
    ``@listfile`` (a text file with one path, file or glob, per line; ``#``
    starts a comment).  Files whose name does not match ``basenamepattern``
    (a regular expression searched in the file name) are left out.  The same
    file reached twice (also through a symbolic link) counts once.

    Returns (files, notes): notes say what was left out and why.

    Raises InputError for a path that does not exist or a glob that matches
    nothing, naming every such item.
    """
    pattern = re.compile(basenamepattern) if basenamepattern else None
    problems, notes = [], []
    seen: dict[str, Path] = {}
    queue = [str(i) for i in items]
    while queue:
        item = queue.pop(0)
        if item.startswith("@"):
            lst = Path(item[1:])
            if not lst.exists():
                problems.append(f"list file {lst} does not exist")
                continue
            try:
                listed = _read_list_file(lst)
            except OSError as exc:
                problems.append(f"list file {lst} cannot be read ({exc.strerror or exc})")
                continue
            if not listed:
                problems.append(f"list file {lst} names no file")
            queue[:0] = listed
            continue
        if _GLOB_CHARS & set(item) and not Path(item).exists():
            matches = sorted(glob.glob(item))
            if not matches:
                problems.append(f"{item}: the pattern matches no file")
            candidates = [Path(m) for m in matches if Path(m).is_file()]
        else:
            p = Path(item)
            if p.is_dir():
                try:
                    entries = sorted(p.iterdir())
                except OSError as exc:
                    problems.append(f"{item}: the input directory cannot be read "
                                    f"({exc.strerror or exc})")
                    continue
                candidates = []
                for c in entries:
                    if c.is_file():
                        candidates.append(c)
                    elif c.is_symlink():          # dangling, or a loop: said, not dropped
                        if not pattern or pattern.search(c.name):
                            notes.append(f"{c}: a symbolic link to nothing that can be read "
                                         f"({os.readlink(c)}): left out")
            elif p.is_file():
                candidates = [p]
            else:
                problems.append(f"{item}: no such file or directory")
                continue
        for c in candidates:
            if pattern and not pattern.search(c.name):
                continue
            key = os.path.realpath(c)
            if key in seen:
                notes.append(f"{c}: same file as {seen[key]}, used once")
                continue
            seen[key] = c.absolute()
    by_name: dict[str, list[Path]] = {}
    for p in seen.values():
        by_name.setdefault(p.name, []).append(p)
    for name, paths in sorted(by_name.items()):
        if len(paths) > 1:
            problems.append(f"{len(paths)} different input files are called {name} "
                            f"({', '.join(str(p.parent) for p in paths)}): pipeline products "
                            f"are named after the exposure, so input names must be unique")
    if problems:
        raise InputError(problems, "input paths that give no file or clashing files")
    return sorted(seen.values(), key=lambda p: p.name), notes


def read_primary_header(path: Path) -> fits.Header:
    """Only the primary header of a FITS file (fast: the data are not read)."""
    try:
        return fits.getheader(path, 0)
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError...
        raise InputError([f"{path}: cannot read a FITS primary header ({exc})"]) from None


def check_ramp_data(path: Path, header) -> list[str]:
    """Problems with the SCI data of an input: missing, truncated on disk, or not a
    ramp of the header's NINTS x NGROUPS (headers only are read, not the data)."""
    import os
    import warnings
    problems = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # truncation: reported below, by name
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                names = [h.name for h in hdul]
                if "SCI" not in names:
                    return [f"{path}: no SCI extension (extensions: {', '.join(names)})"]
                end = 0
                for h in hdul:
                    end = max(end, h._data_offset + h._data_size)
                sci = hdul["SCI"].header
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError...
        return [f"{path}: cannot read the FITS structure ({exc})"]
    size = os.path.getsize(path)
    if size < end:
        problems.append(f"{path}: truncated: {size} bytes on disk, the headers describe "
                        f"{end} (an interrupted copy or download?)")
    naxis = [sci.get(f"NAXIS{i}") for i in range(sci.get("NAXIS", 0), 0, -1)]
    want = [header.get("NINTS"), header.get("NGROUPS")]
    if str(header.get("S_RAMP", "")).upper() == "COMPLETE":
        # a rate (ny, nx) or rateints (NINTS, ny, nx) product given as input
        if len(naxis) not in (2, 3):
            problems.append(f"{path}: S_RAMP is COMPLETE but SCI has {len(naxis)} "
                            f"dimension(s) {tuple(naxis)}; a rate image has 2, rateints 3")
        return problems
    if len(naxis) != 4:
        problems.append(f"{path}: SCI has {len(naxis)} dimension(s) {tuple(naxis)}; a raw "
                        f"ramp has 4 (NINTS, NGROUPS, ny, nx)")
    elif None not in want and [int(v) for v in naxis[:2]] != [int(v) for v in want]:
        problems.append(f"{path}: SCI shape {tuple(naxis)} does not match NINTS={want[0]}, "
                        f"NGROUPS={want[1]} of the primary header")
    if not problems:
        problems += _check_first_frame(path)
    return problems


def _check_first_frame(path: Path) -> list[str]:
    """The first group of the first integration (one frame read, not the file): all
    zero is an error (no signal was recorded); non-finite values are reported."""
    from ..io import open_unscaled, read_section
    with open_unscaled(path) as hdul:
        frame = read_section(hdul["SCI"], (0, 0))
    if not np.any(frame):
        return [f"{path}: the first group of SCI is all zero: no data was recorded (a failed "
                f"readout?); leave the file out"]
    bad = int(np.count_nonzero(~np.isfinite(frame)))
    if bad:
        log.warning("%s: %d non-finite value(s) in the first group of SCI; the pipeline and "
                    "the algorithms leave them out", path, bad)
    return []


def illumination_level(path) -> float | None:
    """A flat's illumination as a signal rate [DN/s], from three frames of its first
    integration: the median of the last group less the first over the time between
    them where the ramp is still rising as its start does (the long baseline makes
    a frame's bias offset small against the signal), else the second group less
    the first (a ramp that saturates).  For a rate product, the median of its
    image.  None where it cannot be measured (one group, no TGROUP)."""
    from ..io import open_unscaled, read_section
    hdr = read_primary_header(Path(path))
    with open_unscaled(path) as hdul:
        sci = hdul["SCI"]
        if str(hdr.get("S_RAMP", "")).upper() == "COMPLETE":
            image = read_section(sci, (0,) if sci.header.get("NAXIS") == 3 else ())
            return float(np.nanmedian(image))
        tgroup = float(hdr.get("TGROUP") or 0.0)
        ngroups = int(sci.header.get("NAXIS3", 1))
        if ngroups < 2 or tgroup <= 0:
            return None
        first = read_section(sci, (0, 0))
        early = float(np.nanmedian(read_section(sci, (0, 1)) - first))
        if ngroups == 2:
            return early / tgroup
        late = float(np.nanmedian(read_section(sci, (0, ngroups - 1)) - first))
    span = ngroups - 1
    if early > 0 and 0.8 * span * early <= late <= 1.25 * span * early:
        return late / (span * tgroup)
    return early / tgroup


def observation_mjd(header, dateobs_key: str | None, timeobs_key: str | None,
                    mjdobs_key: str | None, filename="") -> float:
    """MJD of an observation from its header, as the spec defines it.

    ``mjdobs_key`` (if set) holds the MJD; otherwise ``dateobs_key`` holds a
    date (``YYYY-MM-DD``, combined with ``timeobs_key`` when set) or a full
    date-time (``YYYY-MM-DDThh:mm:ss``, as DATE-END is in flight data, in which
    case the time keyword is not needed).
    """
    if mjdobs_key:
        if mjdobs_key not in header:
            raise InputError([f"{filename}: keyword {mjdobs_key} (mjdobs_fitskey) is missing"])
        try:
            return float(header[mjdobs_key])
        except (TypeError, ValueError):
            raise InputError([f"{filename}: keyword {mjdobs_key} (mjdobs_fitskey) is not a "
                              f"number: {header[mjdobs_key]!r}"]) from None
    if not dateobs_key:
        raise InputError([f"{filename}: neither mjdobs_fitskey nor dateobs_fitskey is set "
                          f"in the configuration"])
    if dateobs_key not in header:
        raise InputError([f"{filename}: keyword {dateobs_key} (dateobs_fitskey) is missing"])
    date = str(header[dateobs_key]).strip()
    text = date
    if "T" not in date and timeobs_key:
        if timeobs_key not in header:
            raise InputError([f"{filename}: keyword {timeobs_key} (timeobs_fitskey) is "
                              f"missing and {dateobs_key}={date!r} has no time"])
        text = f"{date}T{str(header[timeobs_key]).strip()}"
    try:
        return float(Time(text, format="isot", scale="utc").mjd)
    except ValueError:
        keys = dateobs_key + (f"/{timeobs_key}" if text != date else "")
        raise InputError([f"{filename}: cannot read a date from {keys}: {text!r}"]) from None


def classify(name: str, exp_type, dark_re, flat_re, exptype_dark, exptype_flat) -> tuple[str | None, str]:
    """'dark', 'flat' or None, and how it was decided.

    The file name decides when exactly one of the patterns matches it;
    otherwise EXP_TYPE does, through the exptype tables.
    """
    is_dark = bool(dark_re and dark_re.search(name))
    is_flat = bool(flat_re and flat_re.search(name))
    if is_dark != is_flat:
        return ("dark" if is_dark else "flat"), "file name"
    et = str(exp_type).strip().upper() if exp_type is not None else None
    if et in exptype_dark:
        return "dark", "EXP_TYPE"
    if et in exptype_flat:
        return "flat", "EXP_TYPE"
    why = "both name patterns match" if is_dark else "no name pattern matches"
    return None, f"{why} and EXP_TYPE={et or 'missing'} is in neither exptype table"


@dataclass
class Catalog:
    """The master table and what was set aside.

    table : one row per usable input (fileID, filename, basename, imtype, MJD,
        classified_by, and the header keywords)
    unclassified : (file, reason) for files neither dark nor flat
    notes : other things the user should know (duplicates, files left out)
    """

    table: Table
    unclassified: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def measure_levels(self) -> None:
        """The ``LEVEL`` column (DN/s) of every flat (:func:`illumination_level`),
        for pairing flats of one illumination; NaN for darks and where unmeasurable."""
        t = self.table
        if "LEVEL" in t.colnames or not len(t):
            return
        levels = []
        for name, kind in zip(t["filename"], t["imtype"]):
            level = illumination_level(name) if kind == "flat" else None
            levels.append(np.nan if level is None else level)
        t["LEVEL"] = np.array(levels, dtype=float)

    def write(self, path) -> Path:
        from ..reffile import atomic_write
        return atomic_write(path, lambda tmp: self.table.write(tmp, format="ascii.ecsv"))

    def summary(self) -> str:
        t = self.table
        lines = []
        nd, nf = int((t["imtype"] == "dark").sum()), int((t["imtype"] == "flat").sum())
        lines.append(f"Inputs: {len(t)} files ({nd} dark, {nf} flat)"
                     + (f", {len(self.unclassified)} unclassified" if self.unclassified else ""))
        if len(t):
            combos = {}
            for r in t:
                key = tuple(str(r[k]) if k in t.colnames else "?" for k in
                            ("INSTRUME", "DETECTOR", "SUBARRAY", "READPATT", "NGROUPS", "NINTS"))
                combos[key] = combos.get(key, 0) + 1
            for (inst, det, sub, rp, ng, ni), n in sorted(combos.items()):
                lines.append(f"  {n:4d} x {inst} {det} {sub} {rp}, {ng} groups x {ni} ints")
            lines.append(f"  MJD {t['MJD'].min():.4f} - {t['MJD'].max():.4f} "
                         f"({t['MJD'].max() - t['MJD'].min():.2f} days)")
            by = {}
            for r in t:
                by[r["classified_by"]] = by.get(r["classified_by"], 0) + 1
            lines.append("  classified by " + ", ".join(f"{k}: {v}" for k, v in sorted(by.items())))
        for f, why in self.unclassified:
            lines.append(f"  unclassified: {f}: {why}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        return "\n".join(lines)


def build_catalog(files, inputfiles_cfg: dict, extra_keys=()) -> Catalog:
    """Read the headers of ``files`` and make the master table.

    ``inputfiles_cfg`` is the configuration's ``inputfiles`` section.
    ``extra_keys`` are further keywords to copy when present (e.g. the
    grouping keys).  Every missing required keyword of every file is reported
    in one InputError.
    """
    cfg = inputfiles_cfg
    required = list(dict.fromkeys(k.upper() for k in cfg["requiredfitskeys"]))
    time_keys = [k for k in (cfg.get("mjdobs_fitskey"),) if k] or \
        [k for k in (cfg.get("dateobs_fitskey"),) if k]
    for k in time_keys:
        if k.upper() not in required:
            required.append(k.upper())
    optional = [k.upper() for k in list(cfg["optionalfitskeys"]) + list(extra_keys)
                if k.upper() not in required]
    optional = list(dict.fromkeys(optional + (["EXP_TYPE"] if "EXP_TYPE" not in required else [])))
    dark_re = re.compile(cfg["dark_pattern"]) if cfg.get("dark_pattern") else None
    flat_re = re.compile(cfg["flat_pattern"]) if cfg.get("flat_pattern") else None
    exptype_dark = {e.upper() for e in cfg["exptype_dark"]}
    exptype_flat = {e.upper() for e in cfg["exptype_flat"]}

    problems, rows, unclassified, notes = [], [], [], []
    seen: dict[tuple, list] = {}
    for path in files:
        path = Path(path)
        try:
            hdr = read_primary_header(path)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        if not _safe_name(str(path.absolute())):
            problems.append(f"{path}: the path has characters the calibration pipeline cannot "
                            f"take (non-ASCII, '$' or control characters): rename the file or "
                            f"link it under a plain name")
            continue
        twin = _same_exposure(path, hdr, seen)
        if twin is not None:
            notes.append(f"{path} is the same exposure as {twin} (identical content): "
                         f"used once")
            continue
        missing = [k for k in required if k not in hdr]
        if missing:
            problems.append(f"{path}: required keyword(s) {', '.join(missing)} missing")
            continue
        bad_ints = [f"{k}={hdr[k]!r}" for k in INTEGER_KEYS if k in hdr
                    and not _is_whole(hdr[k])]
        if bad_ints:
            problems.append(f"{path}: keyword(s) {', '.join(bad_ints)} must be whole numbers")
            continue
        data_problems = check_ramp_data(path, hdr)
        if data_problems:
            problems.extend(data_problems)
            continue
        try:
            mjd = observation_mjd(hdr, cfg.get("dateobs_fitskey"), cfg.get("timeobs_fitskey"),
                                  cfg.get("mjdobs_fitskey"), filename=str(path))
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        imtype, how = classify(path.name, hdr.get("EXP_TYPE"), dark_re, flat_re,
                               exptype_dark, exptype_flat)
        if imtype is None:
            unclassified.append((str(path), how))
            continue
        row = {"filename": str(path), "basename": path.name, "imtype": imtype,
               "MJD": mjd, "classified_by": how}
        for k in required:
            row[k] = hdr[k]
        for k in optional:
            row[k] = hdr.get(k, None)
        rows.append(row)
    if problems:
        raise InputError(problems)

    rows.sort(key=lambda r: (r["MJD"], r["basename"]))
    names = ["fileID", "filename", "basename", "imtype", "MJD", "classified_by"] + required \
        + optional
    columns = {n: [] for n in names}
    for i, r in enumerate(rows):
        r["fileID"] = i
        for n in names:
            columns[n].append(r.get(n))
    table = Table()
    for n in names:
        values = columns[n]
        if any(v is None for v in values):
            present = [v for v in values if v is not None]
            if not present:
                continue                     # optional keyword no file has
            fill = "" if isinstance(present[0], str) else -1
            col = np.ma.masked_array([fill if v is None else v for v in values],
                                     mask=[v is None for v in values])
            table[n] = col
        else:
            table[n] = values if values else np.array([], dtype=float if n == "MJD" else "U1")
    table.meta["comments"] = ["jwst_reffiles master table of input files"]
    catalog = Catalog(table=table, unclassified=unclassified)
    catalog.notes.extend(notes)
    return catalog


#: Header keywords that count things: a value that is no whole number is named.
INTEGER_KEYS = ("NGROUPS", "NINTS", "NFRAMES", "GROUPGAP", "SUBSTRT1", "SUBSTRT2",
                "SUBSIZE1", "SUBSIZE2")


def _is_whole(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    try:
        return float(value) == int(float(value))
    except (TypeError, ValueError):
        return False


def _safe_name(text: str) -> bool:
    """Whether a path can go through the pipeline: printable ASCII (FITS header values),
    no '$' (stpipe expands it)."""
    return text.isascii() and text.isprintable() and "$" not in text


def _same_exposure(path: Path, hdr, seen: dict) -> Path | None:
    """The file already catalogued that ``path`` is a copy or a hard link of, if any.

    Exposures whose sizes and primary headers agree are the only candidates (two
    exposures differ in their headers' times and names): a hard link is the same
    inode, a copy has the same bytes (read in full only for such candidates).
    """
    import hashlib

    from ..io import file_checksum
    st = path.stat()
    key = (st.st_size, hashlib.sha1(hdr.tostring().encode()).hexdigest())
    for other in seen.setdefault(key, []):
        ost = other.stat()
        if (st.st_dev, st.st_ino) == (ost.st_dev, ost.st_ino) or \
                file_checksum(path) == file_checksum(other):
            return other
    seen[key].append(path)
    return None

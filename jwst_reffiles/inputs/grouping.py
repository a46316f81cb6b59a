"""Groups of input files, one per individual reference file.

Image types (the ``imtypes`` of a module):

==== =====================================================================
D    every dark on its own
F    every flat on its own
DD   pairs of darks at most DD.max_Delta_MJD apart
FF   pairs of flats at most FF.max_Delta_MJD apart
DDFF a flat pair (FF rule) with a dark pair (DD rule), all four within
     DDFF.max_Delta_MJD
D+   all darks together;  F+  all flats together;  D+F+  all of both
==== =====================================================================

Aliases: FFDD = DDFF; F+D+, DF+ and FD+ = D+F+.

Rules (deterministic, whatever the order the files were given in):

* Files are first split by the ``group_by`` header keywords (detector,
  readout pattern, subarray, ngroups, nints by default): a group never mixes
  values of these.
* Within each split, files are sorted by MJD (then name).  Pairs are made
  greedily: the earliest file not yet paired is paired with the next file not
  yet paired if that one is within max_Delta_MJD; otherwise it is left out
  (and reported).  For points on a line this gives the largest number of pairs,
  and a file is never in two pairs.
* DDFF: for each flat pair, in time order, the dark pair is chosen among those
  whose four files span at most DDFF.max_Delta_MJD: the least used so far, then
  the closest in mean time, then the earliest.  Dark pairs may serve several
  flat pairs; a dark pair that serves none is reported.
* Flat pairs (FF, and the flats of DDFF) are two flats of one illumination: they
  agree on the ``FF.match_keys`` header keywords (filter, pupil... a keyword a
  file lacks does not decide) and their measured levels (the ``LEVEL`` column:
  signal rate of the second group less the first) differ by at most the factor
  ``FF.max_level_ratio``.  The earliest unpaired flat takes the next unpaired one
  of its illumination within max_Delta_MJD, so flats of several illuminations
  interleaved in time pair up within each illumination.
* A missing max_Delta_MJD means no limit.

Held out (:func:`hold_out`, the ``verification: holdout`` setting): the
latest N files of each image type in each ``group_by`` split, where at least
``min_kept`` others remain, go into no group; the final reference files are
verified on them.

Each group has a cmdID: 8 hex digits of a hash of the reflabel and the names of
its files, so the same inputs always give the same cmdID and output name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from astropy.table import Table

from ..config import normalize_imtypes

__all__ = ["Member", "InputGroup", "Grouping", "make_groups", "same_illumination",
           "DEFAULT_GROUP_BY", "hold_out"]

DEFAULT_GROUP_BY = ("INSTRUME", "DETECTOR", "READPATT", "SUBARRAY", "NGROUPS", "NINTS")

#: Grouping keys that tell final reference files apart (see InputGroup.final_part).
FINAL_KEYS = ("DETECTOR", "SUBARRAY", "READPATT")


@dataclass(frozen=True)
class Member:
    """One file of a group: its image label (D1, D2, F1, ...) and catalog entry."""

    label: str
    fileID: int
    basename: str
    filename: str
    MJD: float
    imtype: str


@dataclass
class InputGroup:
    """The inputs of one individual reference file."""

    reflabel: str
    imtypes: str
    cmdID: str
    members: list[Member]
    key: dict

    @property
    def mjd_span(self) -> float:
        mjds = [m.MJD for m in self.members]
        return max(mjds) - min(mjds)

    @property
    def filenames(self) -> list[str]:
        return [m.filename for m in self.members]

    def files(self, imtype: str) -> list[Member]:
        return [m for m in self.members if m.imtype == imtype]

    def final_part(self, reftype: str = "") -> str:
        """Which final reference file this group's individual file goes into: one per
        detector, subarray and readout pattern (and number of groups for a dark,
        whose data are per group) -- 'nrca1-sub160-rapid'.  Files of other
        detectors or subarrays never combine into one final file."""
        keys = list(FINAL_KEYS) + (["NGROUPS"] if reftype.lower() == "dark" else [])
        values = [self.key.get(k) for k in keys if self.key.get(k) is not None]
        return "-".join(str(v).lower() for v in values) or "all"


@dataclass
class Grouping:
    """All groups of one reflabel, and the files left out with the reason."""

    reflabel: str
    imtypes: str
    groups: list[InputGroup] = field(default_factory=list)
    unused: list[tuple[str, str]] = field(default_factory=list)

    def table(self) -> Table:
        """One row per (group, member): reflabel, cmdID, label, file, MJD, span."""
        rows = [(self.reflabel, self.imtypes, g.cmdID, m.label, m.fileID, m.basename,
                 m.MJD, g.mjd_span) for g in self.groups for m in g.members]
        return Table(rows=rows or None,
                     names=("reflabel", "imtypes", "cmdID", "label", "fileID", "basename",
                            "MJD", "MJD_span"),
                     dtype=(str, str, str, str, int, str, float, float))


def _cmdid(reflabel: str, members) -> str:
    text = reflabel + "|" + "|".join(sorted(m.basename for m in members))
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _pairs(rows, limit, what, desc, compatible=None):
    """Greedy pairing by MJD: the earliest unpaired file with the next unpaired one
    (that ``compatible`` accepts) within ``limit``; returns (pairs, unused with reasons)."""
    pairs, unused = [], []
    n = len(rows)
    taken = [False] * n
    for i in range(n):
        if taken[i]:
            continue
        partner, refused = None, 0
        for j in range(i + 1, n):
            if taken[j]:
                continue
            if limit is not None and rows[j]["MJD"] - rows[i]["MJD"] > limit:
                break
            if compatible is None or compatible(rows[i], rows[j]):
                partner = j
                break
            refused += 1
        if partner is not None:
            taken[i] = taken[partner] = True
            pairs.append((rows[i], rows[partner]))
            continue
        if n == 1:
            why = f"the only {what} with {desc}"
        elif refused:
            why = (f"no unpaired {what} of the same illumination ({_illumination(rows[i])}) "
                   f"with {desc} within max_Delta_MJD={limit} d")
        else:
            why = f"no unpaired {what} with {desc} within max_Delta_MJD={limit} d"
        unused.append((rows[i]["basename"], why))
    return pairs, unused


def _value(row, key):
    if key not in row.colnames:
        return None
    v = row[key]
    if getattr(v, "mask", False) is True:
        return None
    v = v.item() if hasattr(v, "item") else v
    return None if v is None or (isinstance(v, float) and v != v) or v == "" else v


def _illumination(row) -> str:
    level = _value(row, "LEVEL")
    return f"level {level:.4g} DN/s" if isinstance(level, float) else "level not measured"


def same_illumination(match_keys=(), max_level_ratio=None):
    """Whether two flats (catalog rows) are of one illumination (see the module
    docstring); a keyword or level a file lacks does not decide."""
    keys = [k.upper() for k in match_keys]

    def compatible(a, b) -> bool:
        for k in keys:
            va, vb = _value(a, k), _value(b, k)
            if va is not None and vb is not None and va != vb:
                return False
        la, lb = _value(a, "LEVEL"), _value(b, "LEVEL")
        if max_level_ratio and isinstance(la, float) and isinstance(lb, float) \
                and la > 0 and lb > 0:
            return max(la, lb) / min(la, lb) <= max_level_ratio
        return True
    return compatible


def _member(row, label) -> Member:
    return Member(label=label, fileID=int(row["fileID"]), basename=str(row["basename"]),
                  filename=str(row["filename"]), MJD=float(row["MJD"]), imtype=str(row["imtype"]))


def _label(rows_by_kind) -> list[Member]:
    out = []
    for kind, prefix in (("dark", "D"), ("flat", "F")):
        for k, row in enumerate(rows_by_kind.get(kind, ()), 1):
            out.append(_member(row, f"{prefix}{k}"))
    return out


def _key_of(row, group_by) -> tuple:
    vals = []
    for k in group_by:
        if k in row.colnames:
            v = row[k]
            vals.append(None if getattr(v, "mask", False) is True else
                        (v.item() if hasattr(v, "item") else v))
        else:
            vals.append(None)
    return tuple(vals)


def hold_out(table: Table, n: int, min_kept: int = 2, group_by=DEFAULT_GROUP_BY):
    """Which rows of the master table are held out of every group (bool array).

    In each split by the ``group_by`` keywords and image type (dark, flat), the
    ``n`` latest files (by MJD, then name) are held out when at least
    ``min_kept`` files of the split remain; otherwise none of the split is.
    """
    import numpy as np
    held = np.zeros(len(table), bool)
    if n <= 0 or not len(table):
        return held
    group_by = [k.upper() for k in group_by]
    splits: dict[tuple, list[int]] = {}
    for i in range(len(table)):
        row = table[i]
        splits.setdefault((str(row["imtype"]),) + _key_of(row, group_by), []).append(i)
    for rows in splits.values():
        if len(rows) - n < min_kept:
            continue
        rows.sort(key=lambda i: (float(table["MJD"][i]), str(table["basename"][i])))
        held[rows[-n:]] = True
    return held


def make_groups(table: Table, reflabel: str, imtypes: str, limits: dict | None = None,
                group_by=DEFAULT_GROUP_BY, flat_pairs=None) -> Grouping:
    """Group the catalog's files for one reflabel.

    Parameters
    ----------
    table : astropy Table
        The master table (columns fileID, basename, filename, imtype, MJD and
        the ``group_by`` keywords).
    reflabel, imtypes : str
        The module and its image type (aliases accepted).
    limits : dict
        ``{"DD": days, "FF": days, "DDFF": days}``; missing or None = no limit.
    group_by : sequence of str
        Header keywords the files of a group must agree on.
    flat_pairs : callable, optional
        ``compatible(row_a, row_b)`` for the flats of a pair
        (:func:`same_illumination`); None: any two flats.
    """
    imtypes = normalize_imtypes(imtypes)
    limits = limits or {}
    result = Grouping(reflabel=reflabel, imtypes=imtypes)
    group_by = [k.upper() for k in group_by]

    partitions: dict[tuple, dict[str, list]] = {}
    order = sorted(range(len(table)), key=lambda i: (float(table["MJD"][i]),
                                                       str(table["basename"][i])))
    for i in order:
        row = table[i]
        part = partitions.setdefault(_key_of(row, group_by), {"dark": [], "flat": []})
        part[str(row["imtype"])].append(row)

    def add(rows_by_kind, key):
        members = _label(rows_by_kind)
        result.groups.append(InputGroup(reflabel=reflabel, imtypes=imtypes,
                                        cmdID=_cmdid(reflabel, members), members=members,
                                        key=dict(zip(group_by, key))))

    for key, part in sorted(partitions.items(), key=lambda kv: str(kv[0])):
        darks, flats = part["dark"], part["flat"]
        desc = ", ".join(f"{k}={v}" for k, v in zip(group_by, key))
        if imtypes == "D":
            for r in darks:
                add({"dark": [r]}, key)
        elif imtypes == "F":
            for r in flats:
                add({"flat": [r]}, key)
        elif imtypes == "D+":
            if darks:
                add({"dark": darks}, key)
        elif imtypes == "F+":
            if flats:
                add({"flat": flats}, key)
        elif imtypes == "D+F+":
            if darks and flats:
                add({"dark": darks, "flat": flats}, key)
            else:
                lacking = "darks" if not darks else "flats"
                for r in darks + flats:
                    result.unused.append((r["basename"], f"no {lacking} with {desc}"))
        elif imtypes == "DD":
            pairs, unused = _pairs(darks, limits.get("DD"), "dark", desc)
            result.unused += unused
            for a, b in pairs:
                add({"dark": [a, b]}, key)
        elif imtypes == "FF":
            pairs, unused = _pairs(flats, limits.get("FF"), "flat", desc, flat_pairs)
            result.unused += unused
            for a, b in pairs:
                add({"flat": [a, b]}, key)
        elif imtypes == "DDFF":
            dd, unused_d = _pairs(darks, limits.get("DD"), "dark", desc)
            ff, unused_f = _pairs(flats, limits.get("FF"), "flat", desc, flat_pairs)
            result.unused += unused_d + unused_f
            limit = limits.get("DDFF")
            uses = [0] * len(dd)
            for fa, fb in ff:
                f_mid = (fa["MJD"] + fb["MJD"]) / 2
                best = None
                for k, (da, db) in enumerate(dd):
                    mjds = [fa["MJD"], fb["MJD"], da["MJD"], db["MJD"]]
                    if limit is not None and max(mjds) - min(mjds) > limit:
                        continue
                    rank = (uses[k], abs((da["MJD"] + db["MJD"]) / 2 - f_mid), da["MJD"])
                    if best is None or rank < best[0]:
                        best = (rank, k)
                if best is None:
                    why = (f"no dark pair with {desc} within DDFF max_Delta_MJD={limit} d"
                           if dd else f"no dark pair with {desc}")
                    result.unused += [(fa["basename"], why), (fb["basename"], why)]
                    continue
                k = best[1]
                uses[k] += 1
                add({"dark": list(dd[k]), "flat": [fa, fb]}, key)
            for k, (da, db) in enumerate(dd):
                if uses[k]:
                    continue
                in_reach = any(limit is None or max(x["MJD"] for x in (da, db, fa, fb))
                               - min(x["MJD"] for x in (da, db, fa, fb)) <= limit
                               for fa, fb in ff)
                if not ff:
                    why = f"no flat pair with {desc}"
                elif in_reach:
                    why = ("dark pair not needed: every flat pair within reach was matched "
                           "with a dark pair used less or closer in time")
                else:
                    why = f"no flat pair within DDFF max_Delta_MJD={limit} d of this dark pair"
                result.unused += [(da["basename"], why), (db["basename"], why)]
    return result

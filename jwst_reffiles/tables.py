"""The run directory's tables, kept across mkrefs calls into the same run.

A second call into a run directory (``runID: AUTO`` resumes the latest run)
may make other reflabels than the first: its rows replace the rows of what it
made again and keep the others (``reffiles.ecsv``, ``final_reffiles.ecsv``,
``groups.ecsv``, ``ssb_products.ecsv``, ``pipeline_runs.ecsv``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from astropy.table import Table, vstack

from .reffile import atomic_write

log = logging.getLogger(__name__)

__all__ = ["write_merged"]


def write_merged(path, table: Table, column: str, replaced=None) -> Table:
    """Write ``table`` to ``path`` (ECSV, atomically), keeping the rows of the file
    already there whose ``column`` is not among ``replaced`` (default: the values
    of ``column`` in ``table``).  Returns what was written."""
    path = Path(path)
    replaced = {str(v) for v in (table[column] if replaced is None else replaced)} \
        if column in table.colnames or replaced is not None else set()
    out = table
    if path.is_file():
        try:
            old = Table.read(path, format="ascii.ecsv")
        except Exception as exc:        # an unreadable table is replaced, with a note
            log.warning("%s cannot be read (%s); written anew", path, exc)
            old = None
        if old is not None and column in old.colnames and len(old):
            kept = old[[str(v) not in replaced for v in old[column]]]
            if len(kept):
                out = vstack([kept, table], metadata_conflicts="silent") if len(table) \
                    else kept
                out.meta = dict(table.meta)
                for name in out.colnames:          # masked gaps of columns one side lacks
                    if hasattr(out[name], "filled"):
                        out[name] = out[name].filled("" if out[name].dtype.kind in "US"
                                                     else 0)
    atomic_write(path, lambda tmp: out.write(tmp, format="ascii.ecsv"))
    return out

"""What the shipped plug-ins share: selecting their inputs from the group table."""

from __future__ import annotations

from pathlib import Path

__all__ = ["files_of", "column_of", "side_file"]


def files_of(table, imtype: str | None = None, column: str = "output_name") -> list[str]:
    """The calibrated files of one image type (dark/flat) of a group table, in order."""
    rows = [r for r in table if imtype is None or str(r["imtype"]) == imtype]
    return [str(r[column]) for r in rows]


def column_of(table, name: str, imtype: str | None, owner: str) -> list[str]:
    """A product column (jump, fitopt, ...) for the rows of one image type; every
    row must have it."""
    if name not in table.colnames:
        raise ValueError(f"{owner}: the group table has no '{name}' products (add "
                         f"'ssbsave: [{name}]' or a ramp-fitting step to the module's "
                         f"configuration section)")
    rows = [r for r in table if imtype is None or str(r["imtype"]) == imtype]
    values = [str(r[name]) for r in rows]
    missing = [str(r["output_name"]) for r, v in zip(rows, values) if not v]
    if missing:
        raise ValueError(f"{owner}: no '{name}' product for {', '.join(missing)}")
    return values


def side_file(output, suffix: str) -> str:
    """A side product next to the reference file: <output stem>_<suffix>."""
    out = Path(output)
    return str(out.with_name(out.name[: -len(".fits")] + f"_{suffix}"
                             if out.name.endswith(".fits") else out.name + f"_{suffix}"))

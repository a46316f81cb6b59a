"""Where outputs go, and what they are called: the one place for naming.

Individual reference files (the spec's pattern)::

    outrootdir[/outsubdir][/runID]/reflabel/reflabel[_outsubdir][_runID][.addsuffix].cmdID.reftype.fits

Final reference files (stage 3, one per reflabel)::

    outrootdir[/outsubdir][/runID]/final/reflabel[_outsubdir][_runID][.addsuffix].reftype.fits

Pipeline products go to ``ssbdir``: by default ``outrootdir[/outsubdir][/runID]/ssb``,
or ``outrootdir[/outsubdir]/ssb`` with ``skip_runID_ssbdir``.

``runID: AUTO`` takes the latest run: the highest existing numeric run directory
(the spec: "the latest runID in the output dir is taken"), so that a second call
resumes and adds to it; the first run is 1.  A new run (``--new-run``, the
predecessor's ``--new_runID``) takes the highest plus one, claimed with
``mkdir``, which fails if it exists, so two new runs started at the same moment
never get the same runID.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunLayout", "make_layout", "existing_run_ids"]


@dataclass(frozen=True)
class RunLayout:
    """Directories and names of one run."""

    base: Path               # outrootdir[/outsubdir]
    run_id: str | None       # zero-padded, or None when the config has no runID
    rundir: Path             # base[/runID]
    ssbdir: Path
    outsubdir: str | None = None
    addsuffix: str | None = None

    def reflabel_dir(self, reflabel: str) -> Path:
        return self.rundir / reflabel

    def _stem(self, reflabel: str) -> str:
        parts = [reflabel]
        if self.outsubdir:
            parts.append(f"_{self.outsubdir}")
        if self.run_id:
            parts.append(f"_{self.run_id}")
        if self.addsuffix:
            parts.append(f".{self.addsuffix}")
        return "".join(parts)

    def reffile_name(self, reflabel: str, cmdID: str, reftype: str) -> str:
        return f"{self._stem(reflabel)}.{cmdID}.{reftype}.fits"

    def inside(self, path: Path) -> Path:
        """``path`` if it resolves inside the run directory; ValueError otherwise (a
        name that leads out of the output tree is never written)."""
        resolved = Path(os.path.abspath(path))
        root = Path(os.path.abspath(self.rundir))
        if resolved != root and root not in resolved.parents:
            raise ValueError(f"{path} is outside the run directory {self.rundir}: refused")
        return path

    def reffile_path(self, reflabel: str, cmdID: str, reftype: str) -> Path:
        return self.inside(self.reflabel_dir(reflabel)
                           / self.reffile_name(reflabel, cmdID, reftype))

    @property
    def final_dir(self) -> Path:
        return self.rundir / "final"

    def final_name(self, reflabel: str, reftype: str, part: str | None = None) -> str:
        """reflabel[_outsubdir][_runID][.addsuffix][.part].reftype.fits: no cmdID (one per
        reflabel); ``part`` (detector-subarray-readpatt) where a reflabel's inputs make
        several final files."""
        return f"{self._stem(reflabel)}{'.' + part if part else ''}.{reftype}.fits"

    def final_path(self, reflabel: str, reftype: str, part: str | None = None) -> Path:
        """A final reference file of a reflabel: <run directory>/final/<final_name>."""
        return self.inside(self.final_dir / self.final_name(reflabel, reftype, part))

    @property
    def inputs_table(self) -> Path:
        return self.rundir / "inputs.ecsv"

    @property
    def groups_table(self) -> Path:
        return self.rundir / "groups.ecsv"


def existing_run_ids(base: Path) -> list[int]:
    """Numeric run directories under ``base``."""
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())


def make_layout(output_cfg: dict, create: bool = True, new_run: bool = False) -> RunLayout:
    """The run's layout from the configuration's ``output`` section.

    With ``create`` the run directory is made (a new AUTO run atomically
    claimed); without, nothing is made and the runID is the one a run would
    use.  ``new_run``: AUTO takes a new run number instead of the latest.
    """
    base = Path(output_cfg["outrootdir"])
    subdir = output_cfg.get("outsubdir") or None
    if subdir:
        base = base / subdir
    ndig = int(output_cfg.get("runIDNdigits") or 3)
    run = output_cfg.get("runID")
    if run is None:
        run_id, rundir = None, base
        if create:
            rundir.mkdir(parents=True, exist_ok=True)
    elif run == "AUTO" and not new_run:
        n = (existing_run_ids(base) or [1])[-1]
        run_id = str(n).zfill(ndig)
        rundir = base / run_id
        if create:
            rundir.mkdir(parents=True, exist_ok=True)
    elif run == "AUTO":
        n = (existing_run_ids(base) or [0])[-1] + 1
        if create:
            base.mkdir(parents=True, exist_ok=True)
            while True:
                try:
                    os.mkdir(base / str(n).zfill(ndig))
                    break
                except FileExistsError:
                    n += 1
        run_id = str(n).zfill(ndig)
        rundir = base / run_id
    else:
        run_id = str(int(run)).zfill(ndig)
        rundir = base / run_id
        if create:
            rundir.mkdir(parents=True, exist_ok=True)
    if output_cfg.get("ssbdir"):
        ssbdir = Path(output_cfg["ssbdir"])
    elif output_cfg.get("skip_runID_ssbdir"):
        ssbdir = base / "ssb"
    else:
        ssbdir = rundir / "ssb"
    return RunLayout(base=base, run_id=run_id, rundir=rundir, ssbdir=ssbdir,
                     outsubdir=subdir, addsuffix=output_cfg.get("addsuffix") or None)

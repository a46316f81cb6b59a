"""Stage 1: organise the inputs.

From the configuration, the requested reflabels and the input arguments:
the master table of inputs, the groups of every reflabel, the run layout, and
the two tables written into the run directory (``inputs.ecsv``,
``groups.ecsv``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pathlib import Path

from astropy.table import Table, vstack

from .config import Config
from .inputs import Catalog, Grouping, build_catalog, collect_files, hold_out, make_groups
from .inputs.grouping import same_illumination
from .layout import RunLayout, make_layout
from .reffile import atomic_write
from .tables import write_merged

log = logging.getLogger(__name__)

__all__ = ["Stage1", "organise_inputs", "format_plan"]


@dataclass
class Stage1:
    config: Config
    reflabels: list[str]
    layout: RunLayout
    catalog: Catalog
    groupings: dict[str, Grouping] = field(default_factory=dict)

    def heldout(self, imtype: str | None = None) -> list[str]:
        """The files held out of every group for verification (of one image type)."""
        t = self.catalog.table
        if not len(t) or "heldout" not in t.colnames:
            return []
        return [str(f) for f, h, k in zip(t["filename"], t["heldout"], t["imtype"])
                if h and (imtype is None or str(k) == imtype)]

    def groups_table(self) -> Table:
        tables = [g.table() for g in self.groupings.values()]
        table = vstack(tables) if tables else Table()
        table.meta["unused"] = [{"reflabel": label, "basename": name, "reason": why}
                                for label, g in self.groupings.items()
                                for name, why in g.unused]
        return table

    def write_tables(self) -> None:
        self.catalog.write(self.layout.inputs_table)
        write_merged(self.layout.groups_table, self.groups_table(), "reflabel",
                     replaced=self.reflabels)


def organise_inputs(config: Config, reflabels, inputs, create: bool = True,
                    new_run: bool = False) -> Stage1:
    """Catalog the inputs and group them for each reflabel.

    ``reflabels`` is a comma list or list of reflabels / reference types;
    ``inputs`` are file names, globs, directories or ``@list`` files.  With
    ``create`` the run directory is made and the tables written into it;
    ``new_run``: runID AUTO takes a new run instead of the latest.
    """
    labels = config.resolve_reflabels(reflabels)
    inp = config["inputfiles"]
    group_by = config["grouping"]["group_by"]
    files, notes = collect_files(inputs, inp.get("basenamepattern"))
    log.info("%d input files after the basename pattern", len(files))
    catalog = build_catalog(files, inp, extra_keys=list(group_by)
                            + list(config["FF"].get("match_keys", ())))
    catalog.notes.extend(notes)
    check_instrument(catalog.table, config["instrument"], config.origin.get(("instrument",)))
    limits = {k: config.max_delta_mjd(k) for k in ("DD", "FF", "DDFF")}
    ff = config["FF"]
    pairing = same_illumination(ff.get("match_keys", ()), ff.get("max_level_ratio"))
    if ff.get("max_level_ratio") and any(config.module(label)["imtypes"] in ("FF", "DDFF")
                                         for label in labels):
        catalog.measure_levels()
    ver = config["verification"]
    held = hold_out(catalog.table, ver["holdout"] if ver["enabled"] else 0, ver["min_kept"],
                    group_by)
    catalog.table["heldout"] = held
    usable = catalog.table[~held]
    groupings = {}
    for label in labels:
        section = config.module(label)
        groupings[label] = make_groups(usable, label, section["imtypes"], limits,
                                       group_by, flat_pairs=pairing)
        log.info("%s: %d groups", label, len(groupings[label].groups))
    layout = make_layout(config["output"], create=create, new_run=new_run)
    result = Stage1(config=config, reflabels=labels, layout=layout, catalog=catalog,
                    groupings=groupings)
    if create:
        result.write_tables()
    return result


def check_instrument(table, instrument: str, source=None) -> None:
    """Inputs of another instrument than the configuration's are refused, one line
    naming them (InputError)."""
    from .inputs import InputError
    want = str(instrument).upper()
    if not len(table) or "INSTRUME" not in table.colnames:
        return
    other: dict[str, list[str]] = {}
    for name, inst in zip(table["filename"], table["INSTRUME"]):
        if str(inst).strip().upper() != want:
            other.setdefault(str(inst).strip().upper(), []).append(str(name))
    if other:
        raise InputError([
            f"{len(names)} input(s) are {inst} exposures, but the configuration's instrument "
            f"is {want} ({source or 'the default'}): {', '.join(names[:5])}"
            f"{' ...' if len(names) > 5 else ''}; set 'instrument: {inst}' or leave them out"
            for inst, names in sorted(other.items())])


def format_plan(s1: Stage1) -> str:
    """The catalog summary, the groups of each reflabel and the planned outputs."""
    cfg, layout = s1.config, s1.layout
    lines = [f"Run directory: {layout.rundir}" + (f" (runID {layout.run_id})" if layout.run_id else ""),
             f"Pipeline products: {layout.ssbdir}", "", s1.catalog.summary()]
    for label in s1.reflabels:
        sec = cfg.module(label)
        g = s1.groupings[label]
        limits = {"DD": ["DD"], "FF": ["FF"], "DDFF": ["DD", "FF", "DDFF"]}.get(g.imtypes, [])
        lim = ", ".join(f"{k} {cfg.max_delta_mjd(k)} d" for k in limits)
        lines += ["", f"{label}: reftype {sec['reftype']}, imtypes {g.imtypes}, "
                      f"ssbsteps {sec['ssbsteps'] or 'none'}"
                      + (f", max_Delta_MJD {lim}" if lim else "")
                      + f": {len(g.groups)} group{'s' * (len(g.groups) != 1)}"]
        for grp in g.groups:
            out = layout.reffile_path(label, grp.cmdID, sec["reftype"])
            lines.append(f"  {grp.cmdID}  span {grp.mjd_span:6.3f} d  -> "
                         f"{out.relative_to(layout.rundir)}")
            for m in grp.members:
                lines.append(f"      {m.label:<4} MJD {m.MJD:.4f}  {m.basename}")
        parts = sorted({grp.final_part(sec["reftype"]) for grp in g.groups})
        if len(parts) > 1:
            lines.append(f"  {len(parts)} final files, one per detector, subarray and readout: "
                         + ", ".join(f"final/{layout.final_name(label, sec['reftype'], p)}"
                                     for p in parts))
        for name, why in g.unused:
            lines.append(f"  not used: {name}: {why}")
    held = s1.heldout()
    if held:
        lines += ["", f"Held out of every reference file, to verify the final files on "
                      f"(verification: holdout {cfg['verification']['holdout']}):"]
        lines += [f"  {Path(f).name}" for f in held]
    return "\n".join(lines)


def calibrate_inputs(s1: Stage1, jobs: int | None = None, execute: bool = True,
                     self_refs: dict | None = None):
    """Stage 1b: plan the pipeline runs and, with ``execute``, run them.

    Writes ``pipeline_runs.ecsv`` (one row per run, with its status) and
    ``ssb_products.ecsv`` (the product of every group member) in the run
    directory.  Returns (plan, outcomes).
    """
    from .pipeline.plan import plan_pipeline
    from .pipeline.run import execute_plan, outcomes_table

    plan = plan_pipeline(s1, self_refs=self_refs)
    outcomes = []
    if execute:
        out = s1.config["output"]
        outcomes = execute_plan(plan, s1.layout.rundir / ".crds_offline", jobs=jobs,
                                ssblogFlag=out["ssblogFlag"],
                                ssberrorlogFlag=out["ssberrorlogFlag"])
        runs = outcomes_table(outcomes)
        atomic_write(s1.layout.rundir / "pipeline_runs.ecsv",
                     lambda tmp: runs.write(tmp, format="ascii.ecsv"))
    write_merged(s1.layout.rundir / "ssb_products.ecsv", plan.products_table(), "reflabel",
                 replaced=s1.reflabels)
    return plan, outcomes

"""The ``mkrefs`` command (also installed as ``mkrefs.py``).

Forms::

    mkrefs.py -vvv --cfgfile main.cfg reflabels files...   make reference files
    mkrefs simulate [options]                               simulate input data

Heavy imports (jwst, stdatamodels) happen inside the sub-commands, so that
``mkrefs --help`` answers at once.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from . import __version__

log = logging.getLogger("jwst_reffiles")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record is emitted.

    One line per message: tracebacks go to the run's log (``mkrefs.log``),
    and to the terminal only with -vv or more.
    """

    show_tracebacks = False

    def format(self, record):
        if self.show_tracebacks or not (record.exc_info or record.exc_text):
            return super().format(record)
        plain = logging.makeLogRecord(record.__dict__)
        plain.exc_info, plain.exc_text, plain.stack_info = None, None, None
        return super().format(plain) + " (traceback in the run's log)"

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup_logging(verbosity: int) -> None:
    """-v: INFO, -vv: DEBUG for jwst_reffiles, -vvv: DEBUG everywhere."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(h)
    handler = _StderrHandler()
    handler.show_tracebacks = verbosity >= 2
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s",
                                           datefmt="%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
    logging.getLogger("jwst_reffiles").setLevel(level)


# --------------------------------------------------------------------------
# mkrefs simulate
# --------------------------------------------------------------------------

DEMO = dict(detector="NRCA1", subarray="SUB160", readpatt="RAPID", ngroups=10, nints=2,
            ndarks=4, nflats=4, flat_flux=[1000.0, 3000.0], start="2026-01-01T00:00:00",
            cadence_days=0.5, style="ground", seed=2026)


def _float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    if not values:
        raise argparse.ArgumentTypeError("expected at least one number")
    return values


def simulate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mkrefs simulate",
        description="Simulate JWST Level-1b dark and flat exposures with known truth, "
                    "and the truth reference files that stand in for CRDS.")
    p.add_argument("-o", "--outdir", type=Path, help="output directory (required unless --demo)")
    p.add_argument("--demo", action="store_true",
                   help="the demo data set: NIRCam NRCA1 SUB160, 4 darks and 4 flats over "
                        "2 days (the options below override it)")
    p.add_argument("--detector", help="DETECTOR, e.g. NRCA1, NRCBLONG, MIRIMAGE (default NRCA1)")
    p.add_argument("--subarray", help="SUBARRAY: FULL, SUB640, SUB320, SUB160, SUB64P "
                                      "(NIRCam); FULL (MIRI). Default SUB160 (NIRCam), FULL (MIRI)")
    p.add_argument("--readpatt", help="READPATT, e.g. RAPID, BRIGHT2, DEEP8; FAST (MIRI)")
    p.add_argument("--ngroups", type=int, help="groups per integration (default 10)")
    p.add_argument("--nints", type=int, help="integrations per exposure (default 2)")
    p.add_argument("--ndarks", type=int, help="number of dark exposures (default 4)")
    p.add_argument("--nflats", type=int, help="number of flat exposures (default 4)")
    p.add_argument("--flat-flux", type=_float_list,
                   help="flat illumination(s) in e-/s per pixel, comma-separated, cycled "
                        "over the flats (default 2000)")
    p.add_argument("--start", help="ISO date-time of the first exposure")
    p.add_argument("--cadence-days", type=float,
                   help="days between exposures of one kind (default 0.5)")
    p.add_argument("--style", choices=["ground", "flight"],
                   help="file names: ground-test (DARK/LIN in the name) or flight (jw...)")
    p.add_argument("--flat-label", choices=["LIN", "GAIN"], help="flat word in ground names")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--no-cosmic-rays", action="store_true", help="inject no cosmic rays")
    p.add_argument("--no-reffiles", action="store_true",
                   help="do not write the truth reference files")
    p.add_argument("-v", "--verbose", action="count", default=1,
                   help="more output (-v is the default; -vv debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary")
    return p


def run_simulate(argv: list[str]) -> int:
    args = simulate_parser().parse_args(argv)
    setup_logging(0 if args.quiet else args.verbose)
    opts = dict(DEMO) if args.demo else {}
    for name in ("detector", "subarray", "readpatt", "ngroups", "nints", "ndarks", "nflats",
                 "flat_flux", "start", "cadence_days", "style", "flat_label", "seed"):
        value = getattr(args, name)
        if value is not None:
            opts[name] = value
    if args.outdir is None:
        if not args.demo:
            simulate_parser().error("--outdir is required (or use --demo)")
        args.outdir = Path("demo_output")
    if "detector" in opts and opts["detector"].upper().startswith("MIRI"):
        opts.setdefault("subarray", "FULL")
        opts.setdefault("readpatt", "FAST")
    opts["cosmic_rays"] = not args.no_cosmic_rays
    opts["write_reffiles"] = not args.no_reffiles

    from .simulate import simulate_dataset, summarize
    t0 = time.perf_counter()
    try:
        ds = simulate_dataset(args.outdir, **opts)
    except (ValueError, OSError) as exc:
        print(f"mkrefs simulate: error: {exc}", file=sys.stderr)
        return 2
    print(summarize(ds, elapsed=time.perf_counter() - t0))
    return 0


# --------------------------------------------------------------------------
# mkrefs (reference files)
# --------------------------------------------------------------------------

def _module_parameters(cfgfile) -> dict[str, list[str]]:
    """Parameter name -> modules that have it: from the configuration's module
    sections and from the plug-ins' own ``extra_optional_arguments``.

    Used to offer every plug-in parameter as a command-line option.  A
    configuration that does not load gives none here; loading it for real
    reports its problems.
    """
    from .config import ConfigError, expand_env, load_config
    from .plugins import PluginError, discover_plugins
    try:
        cfg = load_config(cfgfile, expand_paths=False)
    except (ConfigError, OSError):
        return {}
    params: dict[str, list[str]] = {}
    for section in cfg.module_sections:
        for name in cfg.module_parameters(section):
            params.setdefault(name, []).append(section)
    try:
        found = discover_plugins([expand_env(d) for d in cfg["plugin_dirs"]])
    except (PluginError, KeyError):
        found = {}
    for label in cfg["reflabels"]:
        if label in found:
            for name in found[label].cls.parameter_names():
                if label not in params.setdefault(name, []):
                    params[name].append(label)
    return params


def _module_overrides(args, cfg_args: dict):
    """Load the configuration with the ``--<param>`` options applied.

    A parameter goes to every requested module that has it: through the
    configuration (typed like its value there) when the module's section has
    it, else parsed by the plug-in's own ``extra_optional_arguments``.
    """
    from .config import ConfigError, load_config
    from .plugins import PluginError, discover_plugins
    given = {k[len("modparam_"):]: v for k, v in vars(args).items()
             if k.startswith("modparam_") and v is not None}
    pp = list(cfg_args["section_params"])
    direct = []
    if given:
        base = load_config(args.cfgfile, params=cfg_args["params"], section_params=pp,
                           strict=args.strict_config)
        requested = base.resolve_reflabels(args.reflabels)
        try:
            found = discover_plugins(base["plugin_dirs"])
        except PluginError as exc:
            raise ConfigError([str(exc)]) from None
        for name, value in given.items():
            targets = 0
            for label in requested:
                if name in base.module_parameters(label):
                    pp.append((label, name, value))
                    targets += 1
                elif label in found and name in found[label].cls.parameter_names():
                    direct.append((label, name, _plugin_parse(found[label].cls, name, value)))
                    targets += 1
            if not targets:
                raise ConfigError([f"command line --{name}: none of the requested modules "
                                   f"({', '.join(requested)}) has a parameter '{name}'"])
    cfg = load_config(args.cfgfile, params=cfg_args["params"], section_params=pp,
                      strict=args.strict_config)
    for label, name, value in direct:
        cfg.data[label][name] = value
        cfg.origin[(label, name)] = "command line"
    return cfg


def _plugin_parse(cls, name: str, text: str):
    """A value typed by the plug-in's own argument parser."""
    from .config import ConfigError
    parser = cls.add_parameters(argparse.ArgumentParser(prog=cls.reflabel, add_help=False,
                                                        exit_on_error=False))
    try:
        ns, _ = parser.parse_known_args([f"--{name}", text])
    except (argparse.ArgumentError, SystemExit) as exc:
        raise ConfigError([f"command line --{name} {text!r}: {exc}"]) from None
    return getattr(ns, name)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _pre_cfgfile(argv: list[str]):
    for i, a in enumerate(argv):
        if a == "--cfgfile" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--cfgfile="):
            return a.split("=", 1)[1]
    return None


def main_parser(module_params: dict[str, list[str]] | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mkrefs.py",
        description="Make JWST calibration reference files from raw dark and flat exposures.",
        epilog="Sub-command: 'mkrefs simulate --help' simulates input data with known truth.")
    p.add_argument("--version", action="version", version=f"jwst_reffiles {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="verbosity; more v's give more detail (-vvv)")
    p.add_argument("--cfgfile", type=Path,
                   help="main configuration file (YAML), merged over the defaults")
    p.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="override a configuration value: a top-level key or section.key")
    p.add_argument("--pp", nargs=3, action="append", default=[],
                   metavar=("SECTION", "KEY", "VALUE"),
                   help="override a key of one configuration section")
    p.add_argument("--strict-config", action="store_true",
                   help="a configuration key nobody declares is an error (default: a warning)")
    p.add_argument("--dry-run", action="store_true",
                   help="show the inputs, the groups of every reflabel, the pipeline runs and "
                        "the tasks; write nothing (no run directory, no run number taken)")
    p.add_argument("-n", "--new-run", "--new_runID", dest="new_run", action="store_true",
                   help="with output.runID AUTO: start a new run (the highest run number + 1) "
                        "instead of resuming the latest")
    p.add_argument("-j", "--jobs", type=_positive_int,
                   help="tasks at once (default: execution.jobs, else the cores as memory "
                        "allows)")
    p.add_argument("--executor", choices=("inline", "processes", "dask"),
                   help="where the tasks run: inline (this process, for debugging), processes "
                        "(a local pool; default) or dask (dask.distributed; with "
                        "batch.batch_enabled a dask-jobqueue cluster)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running dask scheduler (implies --executor dask)")
    p.add_argument("--force-redo", action="append", default=[], metavar="STAGE",
                   help="do a stage again although the run state says it is done: pipeline, "
                        "individual, final or all (repeatable, or comma-separated)")
    p.add_argument("--verify-inputs", action="store_true",
                   help="compute every input's checksum from its bytes, not from the cache "
                        "of size, mtime and inode (an input edited in place with all three "
                        "kept)")
    p.add_argument("--no-quality-check", action="store_true",
                   help="do not run the pipeline step that uses each final reference file "
                        "(the format checks and comparisons still run)")
    p.add_argument("--list-plugins", action="store_true",
                   help="list the reference-file modules found, and where from, and exit")
    p.add_argument("--print-config", action="store_true",
                   help="print the default configuration (with comments) and exit")
    p.add_argument("reflabels", nargs="?",
                   help="comma-separated reflabels, or reference types (through default_reflabels)")
    p.add_argument("inputfiles", nargs="*",
                   help="input files, globs, directories, or @file (a list of paths)")
    taken = {a for action in p._actions for a in action.option_strings}
    if module_params:
        group = p.add_argument_group(
            "module parameters", "override a parameter of the requested modules that have it "
                                 "(use --pp for a name that clashes with an option above)")
        for name, sections in sorted(module_params.items()):
            flag = f"--{name}"
            if flag in taken:
                continue
            group.add_argument(flag, dest=f"modparam_{name}", metavar="VALUE",
                               help=f"parameter of {', '.join(sections)}")
    return p


def list_plugins(cfgfile) -> int:
    """Print the plug-ins found (package, entry points, the configuration's plugin_dirs)."""
    from .config import ConfigError, load_config
    from .plugins import PluginError
    from .plugins.registry import discover
    try:
        cfg = load_config(cfgfile, expand_paths=True) if cfgfile else None
        dirs = cfg["plugin_dirs"] if cfg else []
        found, combiners = discover(dirs)
    except (ConfigError, PluginError, OSError) as exc:
        print(f"mkrefs: error: {exc}", file=sys.stderr)
        return 2
    from .combine import BUILTIN_COMBINERS
    width = max([len(k) for k in [*found, *combiners]] + [8])
    print(f"{'reflabel':<{width}}  {'reftype':<10} source")
    for label, info in sorted(found.items()):
        print(f"{label:<{width}}  {info.reftype:<10} {info.source}")
    print(f"\n{'combiner':<{width}}  source")
    for name in BUILTIN_COMBINERS:
        print(f"{name:<{width}}  built-in")
    for name, info in sorted(combiners.items()):
        print(f"{name:<{width}}  {info.source}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "simulate":
        return run_simulate(argv[1:])
    if argv and argv[0] == "demo":
        from .demo import main as demo_main
        return demo_main(argv[1:])
    if "--print-config" in argv:
        from .config import default_config_text
        print(default_config_text(), end="")
        return 0
    if "--list-plugins" in argv:
        return list_plugins(_pre_cfgfile(argv))
    if any(a in ("-h", "--help") for a in argv):
        cfgfile = _pre_cfgfile(argv)
        main_parser(_module_parameters(cfgfile) if cfgfile else None).parse_args(argv)
    module_params = _module_parameters(_pre_cfgfile(argv))
    parser = main_parser(module_params)
    args = parser.parse_intermixed_args(argv)
    args.argv = argv                  # the command line, for the run's provenance
    setup_logging(args.verbose)
    if not args.reflabels:
        parser.error("give the reflabels (or reference types) to make, then the input files")

    from .config import ConfigError
    from .inputs import InputError
    from .pipeline.plan import PlanError
    from .stage1 import format_plan, organise_inputs
    from .stage2 import StageError, resolve_modules
    try:
        cfg = _module_overrides(args, {"params": [tuple(x) for x in args.p],
                                       "section_params": [tuple(x) for x in args.pp]})
        force = list(cfg["execution"]["force_redo"])
        for item in args.force_redo:
            for v in (x.strip() for x in item.split(",") if x.strip()):
                if v not in ("pipeline", "individual", "final", "all"):
                    raise ConfigError([f"command line --force-redo {v!r}: choose from "
                                       f"pipeline, individual, final, all"])
                force.append(v)
        if not args.inputfiles:
            raise InputError(["no input files given"])
        # every requested module must have a plug-in and a combiner before any work starts
        plugins = combiners = None
        would_stop = []           # a dry run shows what it can, and exits as the run would
        try:
            plugins, combiners = resolve_modules(cfg, cfg.resolve_reflabels(args.reflabels))
        except StageError as exc:
            if not args.dry_run:
                raise
            would_stop.append(str(exc))
            print(f"mkrefs: warning (a real run would stop here): {exc}", file=sys.stderr)
        for line in cfg.warnings:
            print(f"mkrefs: warning: {line}", file=sys.stderr)
        if (cfg["batch"]["batch_enabled"] and args.executor in (None, "dask")
                and not (args.scheduler or cfg["execution"]["dask_scheduler"])):
            from .execution.executors import BatchError, check_batch_system
            try:
                check_batch_system(cfg["batch"])
            except BatchError as exc:
                if not args.dry_run:
                    print(f"mkrefs: error: {exc}", file=sys.stderr)
                    return 2
                would_stop.append(str(exc))
                print(f"mkrefs: warning (a real run would stop here): {exc}", file=sys.stderr)
        s1 = organise_inputs(cfg, args.reflabels, args.inputfiles, create=not args.dry_run,
                             new_run=args.new_run)
    except (ConfigError, InputError, PlanError, StageError, FileNotFoundError) as exc:
        print(f"mkrefs: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:     # the output directories cannot be made or written
        print(f"mkrefs: error: cannot write the run's output ({exc}); check output.outrootdir "
              f"({cfg['output']['outrootdir']}) and output.ssbdir in the configuration",
              file=sys.stderr)
        return 2
    print(format_plan(s1))
    empty = [label for label in s1.reflabels if not s1.groupings[label].groups]
    if empty:                     # a dry run says so too, with the status a run would have
        nd = int((s1.catalog.table["imtype"] == "dark").sum()) if len(s1.catalog.table) else 0
        nf = len(s1.catalog.table) - nd
        for label in empty:
            g = s1.groupings[label]
            why = "; ".join(f"{n}: {w}" for n, w in g.unused[:3])
            print(f"mkrefs: error: {label}: no group of imtypes {g.imtypes} can be formed from "
                  f"{nd} dark(s) and {nf} flat(s) under the grouping rules (max_Delta_MJD, "
                  f"grouping.group_by){': ' + why if why else ''}; nothing was run",
                  file=sys.stderr)
        return 2
    import signal
    # SIGTERM (a batch system's or a user's kill) stops like Ctrl-C: the summary, the
    # state marked interrupted
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        rc = _run(args, cfg, s1, plugins, combiners, force)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if would_stop and rc == 0:
        print(f"mkrefs: error: a real run would stop: {would_stop[0]}", file=sys.stderr)
        return 2
    return rc


def _run_log(rundir) -> logging.Handler:
    """Everything jwst_reffiles logs, at DEBUG, into <run>/mkrefs.log."""
    handler = logging.FileHandler(Path(rundir) / "mkrefs.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("jwst_reffiles")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
        for h in logging.getLogger().handlers:
            if isinstance(h, _StderrHandler) and h.level == logging.NOTSET:
                h.setLevel(logging.WARNING)
    return handler


def _run(args, cfg, s1, plugins, combiners, force) -> int:
    """Stages 1b to 3 as one task graph, resumed from the run state."""
    from .execution import GraphError, default_jobs, execute, prepare
    from .execution.executors import BatchError
    from .pipeline.offline import offline_environment
    from .pipeline.plan import PlanError, format_pipeline_plan
    from .state import RunLocked, RunState
    layout = s1.layout
    ex = cfg["execution"]
    executor = args.executor or ("dask" if args.scheduler or cfg["batch"]["batch_enabled"]
                                 else ex["executor"])
    jobs = args.jobs or ex["jobs"] or default_jobs(ex["memory_per_task_gib"])
    state = handler = None
    try:
        if not args.dry_run:
            state = RunState(layout.rundir, verify=args.verify_inputs)
            handler = _run_log(layout.rundir)
            for path in state.remove_stale_temporaries():
                log.info("removed %s, left by an interrupted session", path)
            state.begin_session(executor)
            state.record_inputs(str(f) for f in s1.catalog.table["filename"])
        offline_env = {} if args.dry_run else offline_environment(layout.rundir / ".crds_offline")
        job = prepare(s1, plugins, combiners, state=state, force_redo=force,
                      offline_env=offline_env)
        print()
        print(format_pipeline_plan(job.plan))
        print()
        print(job.graph.format(job.planned_status() if state else None, root=layout.rundir))
        missing = _crds_problems(job.plan)
        for line in missing:
            print(f"mkrefs: {'warning' if args.dry_run else 'error'}: {line}", file=sys.stderr)
        if missing and not args.dry_run:
            print("mkrefs: error: nothing was run: the pipeline runs above need these "
                  "reference files", file=sys.stderr)
            state.end_session("error")
            return 2
        if args.dry_run:
            print("\nDry run: nothing was written" + (
                f" (a run would use {layout.rundir})" if layout.run_id else ""))
            return 0
        from .provenance import collect, write_provenance
        from .tables import write_merged
        provenance = collect(cfg, job, args.argv, state.checksum)
        write_merged(layout.rundir / "ssb_products.ecsv", job.plan.products_table(),
                     "reflabel", replaced=s1.reflabels)
        print(f"\nTables: {layout.inputs_table}, {layout.groups_table}, "
              f"{layout.rundir / 'ssb_products.ecsv'}")
        scheduler = args.scheduler or ex["dask_scheduler"]
        if executor == "dask" and scheduler:
            where = f"the workers of the dask scheduler at {scheduler}"
        elif executor == "dask" and cfg["batch"]["batch_enabled"]:
            where = (f"{cfg['batch']['jobs']} {cfg['batch']['batchmode']} batch job(s) of "
                     f"{(cfg['batch']['queue_options'] or {}).get('cores', 1)} core(s)")
        else:
            where = f"{jobs} at once"
        print(f"\n{len(job.to_run)} task(s) to run, {len(job.reused)} reused from the run state "
              f"({state.path}); executor {executor}, {where}; log: "
              f"{layout.rundir / 'mkrefs.log'}")
        sys.stdout.flush()
        try:
            execute(job, executor=executor, jobs=jobs, dask_scheduler=scheduler,
                    batch=cfg["batch"])
        except KeyboardInterrupt:
            from .execution import format_summary
            print("\nmkrefs: interrupted; what finished is kept, a rerun does the rest",
                  file=sys.stderr)
            print(format_summary(job, logfile=layout.rundir / "mkrefs.log"))
            write_provenance(layout.rundir, provenance, job, state.checksum)
            state.end_session("interrupted")
            return 130
        rc = _report(job, layout, state)
        write_provenance(layout.rundir, provenance, job, state.checksum)
        try:
            _validate_and_report(cfg, s1, layout, quality=not args.no_quality_check)
        except Exception as exc:       # the reference files are made; say what failed after
            log.error("validation and report failed (%s: %s); the reference files above are "
                      "made", type(exc).__name__, exc, exc_info=True)
        return rc
    except RunLocked as exc:
        print(f"mkrefs: error: {exc}", file=sys.stderr)
        return 2
    except (PlanError, GraphError, BatchError) as exc:
        print(f"mkrefs: error: {exc}", file=sys.stderr)
        if state is not None:
            state.end_session("error")
        return 2
    except OSError as exc:         # a full disk, an unwritable directory while planning
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"mkrefs: error: cannot write the run's files{where}: {exc.strerror or exc}; "
              f"nothing more was run", file=sys.stderr)
        log.debug("write failure", exc_info=True)
        if state is not None:
            try:
                state.end_session("error")
            except Exception:
                pass
        return 2
    finally:
        if state is not None:
            state.close()
        if handler is not None:
            logging.getLogger("jwst_reffiles").removeHandler(handler)
            handler.close()


def _crds_problems(plan) -> list[str]:
    """One line per reference type the planned runs need from CRDS, when CRDS cannot
    be reached (no server, no cache): which file, for which step and how many
    exposures, and what to do."""
    from .pipeline.offline import crds_unreachable
    from .pipeline.steps import STEP_INFO, spec_name
    need: dict[str, dict] = {}
    for run in plan.runs:
        for step in run.to_run:
            for rt in STEP_INFO[step][2]:
                if run.refs.get(rt) == "CRDS":
                    entry = need.setdefault(rt, {"steps": [], "files": set()})
                    if spec_name(step) not in entry["steps"]:
                        entry["steps"].append(spec_name(step))
                    entry["files"].add(run.root)
    if not need:
        return []
    why = crds_unreachable()
    if why is None:
        return []
    return [f"no {rt} reference file for step {', '.join(e['steps'])} of "
            f"{len(e['files'])} exposure(s): reffile4ssb gives CRDS for it, and {why}; give "
            f"a file or a pattern ('reffile4ssb: {{{rt}: /path/*_{{detector}}_{rt}.fits}}' or "
            f"'default:')" for rt, e in sorted(need.items())]


def _validate_and_report(cfg, s1, layout, quality: bool = True) -> None:
    """Validate the final reference files, write the report, print both."""
    from astropy.table import Table

    from .pipeline.plan import PlanError, RefResolver, primary_header
    from .report import write_report
    from .simulate.accuracy import accuracy, find_truth
    from .validation import validate_run, write_summary
    table = layout.rundir / "final_reffiles.ecsv"
    if not table.is_file():
        return
    finals = [{"reflabel": str(r["reflabel"]), "reftype": str(r["reftype"]).lower(),
               "output": str(r["output"])} for r in Table.read(table, format="ascii.ecsv")
              if str(r["output"]) and Path(str(r["output"])).is_file()
              and str(r["reflabel"]) in s1.reflabels]        # this call's (others are kept)
    if not finals:
        return
    cat = s1.catalog.table
    by_kind = {k: [str(f) for f, t in zip(cat["filename"], cat["imtype"]) if t == k]
               for k in ("dark", "flat")}
    # the other reference files a quality-check step needs: this run's, else reffile4ssb's
    made = {f["reftype"]: f["output"] for f in finals}
    resolver = RefResolver(cfg["reffile4ssb"], {}, Path(layout.ssbdir) / "reffiles")
    inst = str(cfg["instrument"]).upper()

    def configured(exposure, reftypes) -> dict:
        refs = {}
        for need in reftypes:
            try:
                ref = resolver.resolve(need, resolver.choices({}), primary_header(exposure),
                                       inst, "validation")
            except PlanError:
                continue
            if ref != "CRDS":
                refs[need] = ref
        return refs

    first = (by_kind["dark"] or by_kind["flat"])[:1]
    others = dict(made)
    if first:
        others.update({k: v for k, v in configured(first[0], ("superbias", "readnoise",
                                                             "gain")).items()
                       if k not in others and v != "N/A"})
    from .reftypes import get as get_reftype
    raws = {f["reftype"]: by_kind[getattr(get_reftype(f["reftype"]), "qc_input", "dark")]
            or by_kind["dark"] or by_kind["flat"] for f in finals}
    chain = ("mask", "saturation", "superbias", "refpix", "sirskernel", "linearity", "dark",
             "readnoise")
    verification = {"heldout": {k: s1.heldout(k) for k in ("dark", "flat")},
                    "settings": cfg["verification"],
                    "refs_for": lambda exposure: configured(exposure, chain)}
    results = validate_run(layout.rundir, finals, cfg["validation"], raws, others,
                           quality=quality, verification=verification)
    vpath = results["path"]
    truth = find_truth(cat["filename"])
    acc = {}
    if truth is not None:
        tframe = float(primary_header(str(cat["filename"][0])).get("TFRAME", 0) or 0) or None
        for f in finals:
            made_from = sorted({m.filename for g in s1.groupings[f["reflabel"]].groups
                                for m in g.members})
            try:
                acc[f["output"]] = accuracy(f["output"], f["reftype"], truth, tframe=tframe,
                                            inputs=made_from)
            except (KeyError, ValueError, OSError) as exc:
                log.warning("no accuracy figures for %s: %s", f["output"], exc)
    if acc:            # kept with the entries, for the report of a later call too
        for e in results["files"]:
            if e["file"] in acc:
                e["accuracy"] = acc[e["file"]]
        write_summary(vpath, results)
    page = write_report(layout.rundir, results, acc)
    print("\nValidation (" + str(vpath) + "):")
    for e in results["new"]:
        comp = e["comparison"]
        qc = e["quality"]
        print(f"  {e['reflabel']:<18} format {'valid' if e['format']['valid'] else 'INVALID'}; "
              f"{comp.get('line') or comp['verdict']}; quality check "
              f"{qc['status']}{' (' + qc.get('step', '') + ')' if qc.get('step') else ''}")
    from .verify import summary_line
    print("\nVerification on held-out exposures:")
    for e in results["new"]:
        ver = e.get("verification") or {"status": "skipped", "reason": "not run"}
        print(f"  {e['reflabel']:<18} {summary_line(ver)}")
    cons = results.get("consistency") or {"violations": [], "checked": {}}
    print(f"\nConsistency across the {cons['checked'].get('files', 0)} final file(s): "
          + (f"{len(cons['violations'])} violation(s)" if cons["violations"] else "no violation"))
    for v in cons["violations"]:
        print(f"  {v['rule']:<24} {', '.join(v['files'])}: {v['detail']}")
    if acc:
        print("\nAccuracy against the injected truth:")
        for f in finals:
            for r in acc.get(f["output"], []):
                shown = r["detail"] or f"{r['value']:.4g}"
                print(f"  {f['reflabel']:<18} {r['quantity']:<62} {shown:<28} target "
                      f"{r['target']:<16} {'met' if r['ok'] else 'NOT MET'}")
    print(f"\nReport: {page}")


def _report(job, layout, state) -> int:
    """The pipeline line, the summary, and the exit status (1 if anything is not done)."""
    from .execution import format_summary
    pipe = [t for t in job.graph if t.stage == "pipeline"]
    failed = [t for t in pipe if job.status.get(t.id) == "failed"]
    print(f"\nPipeline: {sum(job.status.get(t.id) == 'made' for t in pipe)} run(s) done, "
          f"{len(failed)} failed, {len(job.plan.reused)} product(s) reused (details: "
          f"{layout.rundir / 'pipeline_runs.ecsv'})")
    for t in failed:
        print(f"  FAILED {t.payload['run'].root}: {job.result(t.id).get('error')}",
              file=sys.stderr)
    print()
    print(format_summary(job, logfile=layout.rundir / "mkrefs.log"))
    from .execution.job import NOT_DONE
    bad = [t for t in job.graph if job.status.get(t.id) in NOT_DONE]
    missing = [t.payload["reflabel"] for t in job.graph
               if t.stage == "final" and not job.result(t.id).get("ok")]
    if missing:
        print(f"mkrefs: error: no final reference file for {', '.join(missing)}",
              file=sys.stderr)
    if bad:
        print(f"mkrefs: error: {len(bad)} task(s) not done "
              f"({', '.join(t.label for t in bad[:10])}{' ...' if len(bad) > 10 else ''})"
              f"; see the summary above", file=sys.stderr)
    state.end_session("failed" if bad else "done")
    return 1 if bad or missing else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

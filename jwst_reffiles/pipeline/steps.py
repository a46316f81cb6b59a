"""Calibration steps: the spec's names, the installed pipeline's steps and their order.

``ssbsteps`` is an explicit comma list of step names, or ``"X-"``: every step
up to and including X.  The spec names the steps group_scale, dq_init,
saturation, ipc, firstframe, lastframe, superbias, refpix, linearity,
persistence, rscd, dark_current (``dark``), jump and rate (ramp fitting).  They
are mapped onto the installed jwst ``Detector1Pipeline``, whose order differs
for MIRI and the near-infrared detectors (and, in jwst 3.0, runs persistence
after jump).  ``"X-"`` follows the installed order for the file's instrument.

Steps the installed pipeline has and the spec does not (emicorr, reset,
charge_migration, picture_frame, clean_flicker_noise, gain_scale) are skipped
unless ssbsteps names them explicitly.

The tables here describe jwst 3.0; they are kept free of a jwst import so that
planning stays fast.  The test suite checks them against the installed
pipeline (step order in ``Detector1Pipeline.process``, each step's
``reference_file_types``, the S_* keywords in the datamodel schema).
"""

from __future__ import annotations

__all__ = ["SPEC_STEPS", "EXTRA_STEPS", "STEP_INFO", "NIR_ORDER", "MIRI_ORDER",
           "parse_ssbsteps", "resolve_steps", "step_order", "SsbStepsError",
           "spec_name", "STEP_KEYWORDS"]

#: The spec's step names, in the spec's order.  ``rate`` is ramp fitting.
SPEC_STEPS: tuple[str, ...] = (
    "group_scale", "dq_init", "saturation", "ipc", "firstframe", "lastframe", "superbias",
    "refpix", "linearity", "persistence", "rscd", "dark_current", "jump", "rate",
)

#: Installed steps the spec does not name: run only when ssbsteps names them.
EXTRA_STEPS: tuple[str, ...] = ("emicorr", "reset", "charge_migration", "picture_frame",
                                "clean_flicker_noise", "gain_scale")

#: installed step -> (cal_step attribute, S_* keyword, reference types it reads)
STEP_INFO: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "group_scale": ("group_scale", "S_GRPSCL", ()),
    "dq_init": ("dq_init", "S_DQINIT", ("mask",)),
    "emicorr": ("emicorr", "S_MIREMI", ("emicorr",)),
    "saturation": ("saturation", "S_SATURA", ("saturation", "superbias")),
    "ipc": ("ipc", "S_IPC", ("ipc",)),
    "firstframe": ("firstframe", "S_FRSTFR", ()),
    "lastframe": ("lastframe", "S_LASTFR", ()),
    "reset": ("reset", "S_RESET", ("reset",)),
    "superbias": ("superbias", "S_SUPERB", ("superbias",)),
    "refpix": ("refpix", "S_REFPIX", ("refpix", "sirskernel")),
    "rscd": ("rscd", "S_RSCD", ("rscd",)),
    "linearity": ("linearity", "S_LINEAR", ("linearity",)),
    "dark_current": ("dark_sub", "S_DARK", ("dark",)),
    "charge_migration": ("charge_migration", "S_CHGMIG", ()),
    "jump": ("jump", "S_JUMP", ("gain", "readnoise")),
    "picture_frame": ("picture_frame", "S_PCTFRM", ("pictureframe",)),
    "clean_flicker_noise": ("clean_flicker_noise", "S_CLNFNS", ("flat", "pastasoss")),
    "persistence": ("persistence", "S_PERSIS", ()),
    "ramp_fit": ("ramp_fit", "S_RAMP", ("readnoise", "gain")),
    "gain_scale": ("gain_scale", "S_GANSCL", ("gain",)),
}

#: S_* keyword -> installed step.
STEP_KEYWORDS = {info[1]: step for step, info in STEP_INFO.items()}

_COMMON_TAIL = ("charge_migration", "jump", "picture_frame", "clean_flicker_noise",
                "persistence", "ramp_fit", "gain_scale")
#: Run order of calwebb_detector1 for near-infrared detectors.
NIR_ORDER: tuple[str, ...] = ("group_scale", "dq_init", "saturation", "ipc", "superbias",
                              "refpix", "linearity", "dark_current") + _COMMON_TAIL
#: Run order of calwebb_detector1 for MIRI.
MIRI_ORDER: tuple[str, ...] = ("group_scale", "dq_init", "emicorr", "saturation", "ipc",
                               "firstframe", "lastframe", "reset", "linearity", "rscd",
                               "dark_current", "refpix") + _COMMON_TAIL

#: Steps that "X-" leaves out.  jwst 3.0's persistence step is skipped by
#: default and, without a persistence time given to it, ends FAILED; it runs
#: only when ssbsteps names it.
NOT_IN_SHORTHAND = frozenset({"persistence"})

_ALIASES = {"dark": "dark_current", "rate": "ramp_fit", "ramp": "ramp_fit",
            "dq": "dq_init", "sat": "saturation", "lin": "linearity", "bias": "superbias"}


class SsbStepsError(ValueError):
    """An ssbsteps value names a step that does not exist or does not apply."""


def step_order(instrument: str) -> tuple[str, ...]:
    """Installed Detector1 steps in run order for an instrument."""
    return MIRI_ORDER if str(instrument).upper() == "MIRI" else NIR_ORDER


def spec_name(step: str) -> str:
    """The spec's name of an installed step (ramp_fit -> rate)."""
    return "rate" if step == "ramp_fit" else step


def _canonical(name: str) -> str:
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def parse_ssbsteps(value) -> list[tuple[str, bool]]:
    """Validate an ssbsteps value: [(installed step, up_to), ...].

    Accepts ``"dq_init, saturation"``, a YAML list, ``"refpix-"`` (up to and
    including refpix), ``"dark-"``, ``"rate-"``, or nothing (raw files).
    Unknown names raise :class:`SsbStepsError` naming them and the known ones.
    """
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    items = [str(i).strip() for i in items if str(i).strip()]
    out, unknown = [], []
    for item in items:
        upto = item.endswith("-")
        name = _canonical(item[:-1] if upto else item)
        spec_ok = spec_name(name) in SPEC_STEPS
        if not spec_ok and not (name in EXTRA_STEPS and not upto):
            unknown.append(item)
            continue
        out.append((name, upto))
    if unknown:
        raise SsbStepsError(
            f"unknown pipeline step(s) {unknown}; known steps are {', '.join(SPEC_STEPS)} "
            f"(and 'X-' for all steps up to X; the installed pipeline's "
            f"{', '.join(EXTRA_STEPS)} may be named explicitly)")
    return out


def resolve_steps(value, instrument: str) -> tuple[str, ...]:
    """The installed steps an ssbsteps value asks for on one instrument, in run order.

    ``"X-"`` gives every step the spec knows up to and including X, in the
    installed order for the instrument (persistence excepted: see
    ``NOT_IN_SHORTHAND``).  Explicitly named steps that do not
    apply to the instrument (superbias or rscd on the other kind of detector,
    firstframe/lastframe on near-infrared ones) are left out: the pipeline
    would skip them anyway.  ``"X-"`` with an X the instrument does not have is
    an error.
    """
    order = step_order(instrument)
    wanted: set[str] = set()
    for name, upto in parse_ssbsteps(value):
        if upto:
            if name not in order:
                raise SsbStepsError(f"ssbsteps '{value}': {spec_name(name)} is not a step of "
                                    f"the {instrument} pipeline, so '{spec_name(name)}-' means "
                                    f"nothing there")
            wanted.update(s for s in order[: order.index(name) + 1]
                          if spec_name(s) in SPEC_STEPS and s not in NOT_IN_SHORTHAND)
        elif name in order:
            wanted.add(name)
    return tuple(s for s in order if s in wanted)

"""Names of the calibration steps a reference-file module can ask for (``ssbsteps``).

The spec's names, in calwebb_detector1 order: ``ssbsteps`` is either an
explicit comma list of these, or ``"X-"`` meaning every step up to and
including X.  This module only parses and validates names (no jwst import); the
mapping onto the installed pipeline's steps per instrument lives with the
pipeline runner.
"""

from __future__ import annotations

__all__ = ["SPEC_STEPS", "parse_ssbsteps", "SsbStepsError"]

#: The spec's step names in pipeline order.  ``rate`` is ramp fitting.
SPEC_STEPS: tuple[str, ...] = (
    "group_scale", "dq_init", "saturation", "ipc", "firstframe", "lastframe", "superbias",
    "refpix", "linearity", "persistence", "rscd", "dark_current", "jump", "rate",
)

_ALIASES = {"dark": "dark_current", "ramp_fit": "rate", "ramp": "rate", "dq": "dq_init",
            "sat": "saturation", "lin": "linearity", "bias": "superbias"}


class SsbStepsError(ValueError):
    """An ssbsteps value names a step that does not exist."""


def _canonical(name: str) -> str:
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def parse_ssbsteps(value) -> tuple[str, ...]:
    """The steps an ``ssbsteps`` value asks for, in pipeline order.

    Accepts ``"dq_init, saturation"``, ``["dq_init", "saturation"]``,
    ``"refpix-"`` (every step up to and including refpix), ``"dark-"`` (the spec's
    shorthand for dark_current), or an empty value (raw files: no step).
    Unknown names raise :class:`SsbStepsError` naming them and the known ones.
    """
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    items = [str(i).strip() for i in items if str(i).strip()]
    wanted: set[str] = set()
    unknown = []
    for item in items:
        upto = item.endswith("-")
        name = _canonical(item[:-1] if upto else item)
        if name not in SPEC_STEPS:
            unknown.append(item)
            continue
        if upto:
            wanted.update(SPEC_STEPS[: SPEC_STEPS.index(name) + 1])
        else:
            wanted.add(name)
    if unknown:
        raise SsbStepsError(f"unknown pipeline step(s) {unknown}; known steps are "
                            f"{', '.join(SPEC_STEPS)} (and 'X-' for all steps up to X)")
    return tuple(s for s in SPEC_STEPS if s in wanted)

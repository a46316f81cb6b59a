"""The facts about each reference type, in one place.

One frozen :class:`RefType` per reference type that this project makes or hands
to the pipeline: its data model, main extension, the pipeline step that uses
it (the quality check) and the other reference files that step needs, the kind
of raw exposure that step is tried on, the names a configuration may give it,
and whether finals combine it by a flag vote (masks).  Everything else asks
here (:func:`get`, :func:`normalize`) instead of keeping a table of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RefType", "REGISTRY", "get", "normalize", "is_mask", "model_names"]


@dataclass(frozen=True)
class RefType:
    """One reference type (``name``: jwst's, lower case)."""

    name: str
    model: str                                   # stdatamodels.jwst.datamodels class
    main_ext: str = "SCI"                        # the extension that must be there
    qc_step: tuple[str, str, str] | None = None  # (module, step class, override argument)
    qc_needs: tuple[str, ...] = ()               # other reference files that step needs
    qc_input: str = "dark"                       # the raw exposures it is tried on
    aliases: tuple[str, ...] = ()                # other names a configuration may use
    flag_vote: bool = False                      # finals: each flag kept by a vote

    @property
    def header_reftype(self) -> str:
        """What its files' REFTYPE keyword says."""
        return self.name.upper()


REGISTRY: dict[str, RefType] = {r.name: r for r in (
    RefType("mask", "MaskModel", main_ext="DQ",
            qc_step=("jwst.dq_init", "DQInitStep", "override_mask"),
            aliases=("bpm", "badpix"), flag_vote=True),
    RefType("saturation", "SaturationModel",
            qc_step=("jwst.saturation", "SaturationStep", "override_saturation"),
            qc_needs=("superbias",), qc_input="flat", aliases=("sat",)),
    RefType("superbias", "SuperBiasModel",
            qc_step=("jwst.superbias", "SuperBiasStep", "override_superbias"),
            aliases=("bias",)),
    RefType("linearity", "LinearityModel", main_ext="COEFFS",
            qc_step=("jwst.linearity", "LinearityStep", "override_linearity"),
            qc_input="flat", aliases=("lin",)),
    RefType("dark", "DarkModel",
            qc_step=("jwst.dark_current", "DarkCurrentStep", "override_dark")),
    RefType("gain", "GainModel",
            qc_step=("jwst.ramp_fitting", "RampFitStep", "override_gain"),
            qc_needs=("readnoise", "gain"), qc_input="flat"),
    RefType("readnoise", "ReadnoiseModel",
            qc_step=("jwst.ramp_fitting", "RampFitStep", "override_readnoise"),
            qc_needs=("readnoise", "gain"), aliases=("rdnoise",)),
    RefType("ipc", "IPCModel", qc_step=("jwst.ipc", "IPCStep", "override_ipc"),
            qc_input="flat"),
    RefType("reset", "ResetModel"),
)}

_ALIASES = {a: r.name for r in REGISTRY.values() for a in r.aliases}


def normalize(key: str) -> str:
    """A configuration's reftype name as jwst's (bpm -> mask, rdnoise -> readnoise,
    gainreffile -> gain); names not known here are returned lower case."""
    k = str(key).strip().lower()
    if k.endswith("reffile") and k != "reffile":
        k = k[: -len("reffile")]
    return _ALIASES.get(k, k)


def get(key: str) -> RefType | None:
    """The :class:`RefType` of a name or alias (None when unknown)."""
    return REGISTRY.get(normalize(key))


def is_mask(key: str) -> bool:
    """Whether a reftype's finals combine by a flag vote (a bad pixel mask)."""
    r = get(key)
    return bool(r and r.flag_vote)


def model_names(with_aliases: bool = False) -> dict[str, str]:
    """reftype -> data model class name (and each alias's, if asked)."""
    out = {r.name: r.model for r in REGISTRY.values()}
    if with_aliases:
        out.update({a: REGISTRY[n].model for a, n in _ALIASES.items()})
    return out

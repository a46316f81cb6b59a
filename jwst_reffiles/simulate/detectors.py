"""Detector geometry, readout patterns and subarrays for the simulator.

Everything here is a plain description of the hardware: array sizes, where the
reference pixels are, how the amplifiers divide the array, the readout patterns
(frames averaged per group, frames dropped between groups) and how long a frame
takes.  The physical properties of individual pixels live in ``truth.py``.

Coordinates follow the JWST convention used in Level-1b files in the DMS
orientation: ``data[..., y, x]``, with SUBSTRT1/SUBSTRT2 1-based and measured in
full-frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DetectorGeometry",
    "ReadoutPattern",
    "Subarray",
    "DETECTORS",
    "READOUT_PATTERNS",
    "SUBARRAYS",
    "get_detector",
    "get_readout_pattern",
    "get_subarray",
    "frame_time",
]


@dataclass(frozen=True)
class DetectorGeometry:
    """Static description of one detector.

    Attributes
    ----------
    instrument, detector : str
        Values of INSTRUME and DETECTOR.
    shape : tuple(int, int)
        Full-frame (ny, nx).
    refpix : dict
        Width of reference-pixel borders: keys ``bottom``, ``top``, ``left``,
        ``right`` (rows/columns, full-frame coordinates).
    n_amplifiers : int
        Number of readout amplifiers in full frame.
    amp_layout : str
        ``"blocks"`` (NIR detectors: contiguous vertical stripes of columns) or
        ``"interleaved"`` (MIRI: amplifier = column index modulo 4).
    pixel_pitch_um : float
        Pixel pitch, used to turn a cosmic-ray flux per cm^2 into a rate per pixel.
    sca_id : int
        Sensor chip assembly number, used in ground-test style file names.
    channel, module : str or None
        NIRCam CHANNEL (SHORT/LONG) and MODULE (A/B).
    fastaxis, slowaxis : int
        FASTAXIS / SLOWAXIS header values of the DMS-oriented data.
    """

    instrument: str
    detector: str
    shape: tuple[int, int]
    refpix: dict
    n_amplifiers: int
    amp_layout: str
    pixel_pitch_um: float
    sca_id: int
    channel: str | None = None
    module: str | None = None
    fastaxis: int = -1
    slowaxis: int = 2
    default_filter: str = "N/A"
    default_pupil: str | None = None
    exp_types: dict = field(default_factory=dict)

    @property
    def ny(self) -> int:
        return self.shape[0]

    @property
    def nx(self) -> int:
        return self.shape[1]

    def reference_pixel_mask(self) -> np.ndarray:
        """Boolean full-frame map, True on reference pixels."""
        from ..detectors import reference_pixel_mask
        return reference_pixel_mask(self.instrument, 1, 1, self.nx, self.ny)

    def amplifier_map(self, xstart: int = 1, xsize: int | None = None,
                      noutputs: int | None = None) -> np.ndarray:
        """Amplifier index (0-based) of every column of a (sub)array.

        Parameters
        ----------
        xstart : int
            1-based first full-frame column (SUBSTRT1).
        xsize : int
            Number of columns (SUBSIZE1); full width by default.
        noutputs : int
            Outputs used for the readout.  NIR subarrays narrower than the full
            frame are read through a single output.
        """
        xsize = self.nx if xsize is None else xsize
        cols = np.arange(xstart - 1, xstart - 1 + xsize)
        if self.amp_layout == "interleaved":
            return cols % self.n_amplifiers
        if noutputs is None:
            noutputs = self.n_amplifiers if xsize == self.nx else 1
        if noutputs == 1:
            return np.zeros(xsize, dtype=int)
        width = self.nx // noutputs
        return cols // width

    def drift_channels(self, xstart: int = 1, xsize: int | None = None,
                       noutputs: int | None = None) -> np.ndarray:
        """Index into a flattened (amplifier, column parity) drift array, per column.

        The simulator's reference-pixel drift is one value per amplifier and
        per even/odd column of each read (the per-exposure truth files' DRIFT).
        """
        xsize = self.nx if xsize is None else xsize
        amp = self.amplifier_map(xstart, xsize, noutputs)
        parity = np.arange(xstart - 1, xstart - 1 + xsize) % 2
        return amp * 2 + parity


@dataclass(frozen=True)
class ReadoutPattern:
    """A MULTIACCUM readout pattern: frames averaged per group, frames skipped."""

    name: str
    nframes: int
    groupgap: int


@dataclass(frozen=True)
class Subarray:
    """A subarray: name, 1-based full-frame corner, size, outputs used."""

    name: str
    xstart: int
    ystart: int
    xsize: int
    ysize: int
    noutputs: int

    def slices(self) -> tuple[slice, slice]:
        """(y, x) slices selecting this subarray from a full-frame array."""
        return (slice(self.ystart - 1, self.ystart - 1 + self.ysize),
                slice(self.xstart - 1, self.xstart - 1 + self.xsize))


_NIRCAM_EXP = {"dark": "NRC_DARK", "flat": "NRC_FLAT"}
_MIRI_EXP = {"dark": "MIR_DARKIMG", "flat": "MIR_FLATIMAGE"}


def _nircam(detector: str, sca_id: int, channel: str, module: str) -> DetectorGeometry:
    return DetectorGeometry(
        instrument="NIRCAM", detector=detector, shape=(2048, 2048),
        refpix={"bottom": 4, "top": 4, "left": 4, "right": 4},
        n_amplifiers=4, amp_layout="blocks", pixel_pitch_um=18.0, sca_id=sca_id,
        channel=channel, module=module, fastaxis=-1 if sca_id % 2 else 1,
        slowaxis=2 if sca_id % 2 else -2,
        default_filter="F150W" if channel == "SHORT" else "F444W",
        default_pupil="CLEAR", exp_types=_NIRCAM_EXP,
    )


#: The detectors the simulator knows, by DETECTOR keyword value.
DETECTORS: dict[str, DetectorGeometry] = {
    "NRCA1": _nircam("NRCA1", 481, "SHORT", "A"),
    "NRCA2": _nircam("NRCA2", 482, "SHORT", "A"),
    "NRCA3": _nircam("NRCA3", 483, "SHORT", "A"),
    "NRCA4": _nircam("NRCA4", 484, "SHORT", "A"),
    "NRCALONG": _nircam("NRCALONG", 485, "LONG", "A"),
    "NRCB1": _nircam("NRCB1", 486, "SHORT", "B"),
    "NRCB2": _nircam("NRCB2", 487, "SHORT", "B"),
    "NRCB3": _nircam("NRCB3", 488, "SHORT", "B"),
    "NRCB4": _nircam("NRCB4", 489, "SHORT", "B"),
    "NRCBLONG": _nircam("NRCBLONG", 490, "LONG", "B"),
    # MIRI imager: 1032 columns of which the 4 leftmost and 4 rightmost are
    # reference columns; the four outputs read interleaved columns.
    "MIRIMAGE": DetectorGeometry(
        instrument="MIRI", detector="MIRIMAGE", shape=(1024, 1032),
        refpix={"bottom": 0, "top": 0, "left": 4, "right": 4},
        n_amplifiers=4, amp_layout="interleaved", pixel_pitch_um=25.0, sca_id=493,
        fastaxis=1, slowaxis=2, default_filter="F770W", exp_types=_MIRI_EXP,
    ),
}

#: Readout patterns by READPATT value.
READOUT_PATTERNS: dict[str, ReadoutPattern] = {
    p.name: p for p in [
        ReadoutPattern("RAPID", 1, 0),
        ReadoutPattern("BRIGHT1", 1, 1),
        ReadoutPattern("BRIGHT2", 2, 0),
        ReadoutPattern("SHALLOW2", 2, 3),
        ReadoutPattern("SHALLOW4", 4, 1),
        ReadoutPattern("MEDIUM2", 2, 8),
        ReadoutPattern("MEDIUM8", 8, 2),
        ReadoutPattern("DEEP2", 2, 18),
        ReadoutPattern("DEEP8", 8, 12),
        ReadoutPattern("FAST", 1, 0),      # MIRI
        ReadoutPattern("SLOW", 1, 0),      # MIRI (longer frame time)
    ]
}

#: Subarrays by (instrument, SUBARRAY name).  NIRCam subarrays sit in the
#: corner that holds the detector's reference pixels on two sides.
SUBARRAYS: dict[tuple[str, str], Subarray] = {
    ("NIRCAM", "FULL"): Subarray("FULL", 1, 1, 2048, 2048, 4),
    ("NIRCAM", "SUB640"): Subarray("SUB640", 1, 1, 640, 640, 1),
    ("NIRCAM", "SUB320"): Subarray("SUB320", 1, 1, 320, 320, 1),
    ("NIRCAM", "SUB160"): Subarray("SUB160", 1, 1, 160, 160, 1),
    ("NIRCAM", "SUB64P"): Subarray("SUB64P", 1, 1, 64, 64, 1),
    ("MIRI", "FULL"): Subarray("FULL", 1, 1, 1032, 1024, 4),
    # MIRI imager subarrays at the detector's left edge (their leftmost 4 columns
    # are reference columns), read through the 4 interleaved outputs
    ("MIRI", "SUB128"): Subarray("SUB128", 1, 897, 132, 128, 4),
    ("MIRI", "SUB64"): Subarray("SUB64", 1, 897, 68, 64, 4),
}

#: MIRI FAST frame times [s] of the subarrays (MIRI detector documentation).
MIRI_FRAME_TIMES = {"FULL": 2.77504, "BRIGHTSKY": 0.86528, "SUB256": 0.29952,
                    "SUB128": 0.11904, "SUB64": 0.08500}


def _lookup(table: dict, key, what: str, name: str):
    if key not in table:
        known = sorted(k[-1] if isinstance(k, tuple) else k for k in table
                       if not isinstance(key, tuple) or k[0] == key[0])
        raise ValueError(f"unknown {what} {name!r}; the simulator knows {', '.join(known)}")
    return table[key]


def get_detector(name: str) -> DetectorGeometry:
    """Look up a detector by DETECTOR value (case-insensitive)."""
    return _lookup(DETECTORS, name.upper(), "detector", name)


def get_readout_pattern(name: str) -> ReadoutPattern:
    """Look up a readout pattern by READPATT value (case-insensitive)."""
    return _lookup(READOUT_PATTERNS, name.upper(), "readout pattern", name)


def get_subarray(instrument: str, name: str) -> Subarray:
    """Look up a subarray by instrument and SUBARRAY value (case-insensitive)."""
    return _lookup(SUBARRAYS, (instrument.upper(), name.upper()), f"{instrument} subarray", name)


def frame_time(geometry: DetectorGeometry, subarray: Subarray,
               readpatt: str = "RAPID") -> float:
    """Frame time in seconds (TFRAME).

    NIR detectors: each output reads ``xsize/noutputs`` columns plus 12 overhead
    pixel times per row, ``ysize + 1`` rows, at 10 microseconds per pixel. This
    gives 10.73676 s for NIRCam full frame.  MIRI: the published FAST frame
    times (2.77504 s full frame, 0.11904 s SUB128...), 10x longer in SLOW.
    """
    if geometry.instrument == "MIRI":
        fast = MIRI_FRAME_TIMES.get(subarray.name.upper(), 2.77504 * (
            subarray.xsize * subarray.ysize) / (1032 * 1024))
        return fast * (10.0 if readpatt.upper() == "SLOW" else 1.0)
    cols = subarray.xsize // subarray.noutputs + 12
    return round(cols * (subarray.ysize + 1) * 1e-5, 5)

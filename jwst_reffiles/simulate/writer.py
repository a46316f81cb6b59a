"""Writing simulated exposures, their truth, and truth reference files.

All files are written atomically (:mod:`jwst_reffiles.reffile`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.time import Time, TimeDelta
from stdatamodels.jwst import datamodels as dm

from .. import __version__
from ..dq import dq_def_records, flag_value
from ..reffile import atomic_save, atomic_write, set_reference_meta
from .detectors import DetectorGeometry, ReadoutPattern, Subarray, frame_time
from .ramps import RampResult, group_times
from .truth import DEFECT_CLASSES, DEFECT_VALUE_MEANING, DetectorTruth

__all__ = [
    "ExposureSpec",
    "exposure_filename",
    "build_level1b",
    "write_exposure_truth",
    "write_detector_truth",
    "write_truth_reffiles",
    "exposure_timing",
]

ORIGIN = "jwst_reffiles.simulate"


@dataclass
class ExposureSpec:
    """What one simulated exposure is.

    kind : "dark" or "flat"
    flux : illumination [e-/s per pixel] (0 for darks)
    start : ISO date-time (UTC) of the start of the exposure
    style : "ground" (DARK/LIN/GAIN in the name) or "flight" (jw..._uncal.fits)
    flat_label : word naming flats in ground-style names ("LIN" or "GAIN")
    index : running number, used in names and visit numbers
    exp_type : EXP_TYPE; the instrument's dark/flat type if None
    """

    detector: str
    subarray: str
    readpatt: str
    ngroups: int
    nints: int
    kind: str
    flux: float
    start: str
    style: str = "ground"
    flat_label: str = "LIN"
    index: int = 0
    program: int = 1234
    exp_type: str | None = None
    cosmic_rays: bool = True

    def __post_init__(self):
        if self.kind not in ("dark", "flat"):
            raise ValueError(f"kind must be 'dark' or 'flat', got {self.kind!r}")
        if self.style not in ("ground", "flight"):
            raise ValueError(f"style must be 'ground' or 'flight', got {self.style!r}")
        if self.kind == "dark" and self.flux != 0:
            raise ValueError("a dark exposure has flux 0")


def exposure_timing(pattern: ReadoutPattern, ngroups: int, nints: int, tframe: float,
                    start: str) -> dict:
    """Times of one exposure, as the Level-1b keywords define them.

    One reset frame starts each integration; an integration lasts
    ``ngroups*(nframes+groupgap) - groupgap`` frames.
    """
    nframes_int = ngroups * (pattern.nframes + pattern.groupgap) - pattern.groupgap
    tgroup = (pattern.nframes + pattern.groupgap) * tframe
    t_int_cycle = (nframes_int + 1) * tframe
    duration = nints * t_int_cycle
    t0 = Time(start, format="isot", scale="utc")
    t1 = t0 + TimeDelta(duration, format="sec")
    tmid = t0 + TimeDelta(duration / 2, format="sec")
    eff_int = (ngroups - 1) * tgroup if ngroups > 1 else tgroup
    int_starts = [t0 + TimeDelta(k * t_int_cycle + tframe, format="sec") for k in range(nints)]
    return {
        "tframe": tframe, "tgroup": tgroup, "duration": duration,
        "start": t0, "end": t1, "mid": tmid,
        "effective_integration_time": eff_int,
        "effective_exposure_time": eff_int * nints,
        "int_start": [t.mjd for t in int_starts],
        "int_end": [(t + TimeDelta(nframes_int * tframe, format="sec")).mjd for t in int_starts],
    }


def exposure_filename(spec: ExposureSpec, geometry: DetectorGeometry) -> str:
    """File name of an exposure, in ground-test or flight style."""
    t = Time(spec.start, format="isot", scale="utc").datetime
    if spec.style == "flight":
        obs = 1 if spec.kind == "dark" else 2
        return (f"jw{spec.program:05d}{obs:03d}{spec.index + 1:03d}_03101_00001_"
                f"{geometry.detector.lower()}_uncal.fits")
    inst = {"NIRCAM": "NRC", "MIRI": "MIR"}.get(geometry.instrument, geometry.instrument[:3])
    label = "DARK" if spec.kind == "dark" else spec.flat_label
    return (f"{inst}{geometry.detector}-{label}-{t:%y%j%H%M}{spec.index:04d}_1_"
            f"{geometry.sca_id}_SE_{t:%Y-%m-%dT%Hh%Mm%S}_uncal.fits")


def build_level1b(spec: ExposureSpec, geometry: DetectorGeometry, subarray: Subarray,
                  pattern: ReadoutPattern, ramps: RampResult, filename: str):
    """A Level1bModel holding the ramps and every header keyword the pipeline reads."""
    tframe = frame_time(geometry, subarray, spec.readpatt)
    tim = exposure_timing(pattern, spec.ngroups, spec.nints, tframe, spec.start)
    model = dm.Level1bModel(data=ramps.data)
    m = model.meta
    m.filename = filename
    m.date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    m.origin = "STSCI"
    m.telescope = "JWST"
    m.calibration_software_name = ORIGIN
    m.calibration_software_version = __version__

    m.instrument.name = geometry.instrument
    m.instrument.detector = geometry.detector
    if geometry.channel:
        m.instrument.channel = geometry.channel
    if geometry.module:
        m.instrument.module = geometry.module
    m.instrument.filter = geometry.default_filter
    if geometry.default_pupil:
        m.instrument.pupil = geometry.default_pupil

    exp = m.exposure
    exp.type = spec.exp_type or geometry.exp_types[spec.kind]
    exp.readpatt = pattern.name
    exp.nframes = pattern.nframes
    exp.groupgap = pattern.groupgap
    exp.ngroups = spec.ngroups
    exp.nints = spec.nints
    exp.integration_start = 1
    exp.integration_end = spec.nints
    exp.nresets_at_start = 1
    exp.nresets_between_ints = 1
    exp.frame_divisor = pattern.nframes
    exp.drop_frames1 = 0
    exp.drop_frames3 = 0
    exp.noutputs = subarray.noutputs
    exp.sample_time = 10.0
    exp.frame_time = tframe
    exp.group_time = tim["tgroup"]
    exp.integration_time = tim["effective_integration_time"]
    exp.exposure_time = tim["effective_exposure_time"]
    exp.effective_exposure_time = tim["effective_exposure_time"]
    exp.measurement_time = tim["effective_integration_time"]
    exp.duration = tim["duration"]
    exp.start_time = tim["start"].mjd
    exp.mid_time = tim["mid"].mjd
    exp.end_time = tim["end"].mjd
    exp.start_time_mjd = tim["start"].mjd
    exp.mid_time_mjd = tim["mid"].mjd
    exp.end_time_mjd = tim["end"].mjd
    exp.zero_frame = False
    exp.data_problem = False
    exp.count = 1

    obs = m.observation
    start_iso, end_iso = tim["start"].isot, tim["end"].isot
    obs.date, obs.time = start_iso.split("T")
    obs.date_beg = start_iso
    obs.date_end = end_iso
    obs_num = 1 if spec.kind == "dark" else 2
    obs.program_number = f"{spec.program:05d}"
    obs.observation_number = f"{obs_num:03d}"
    obs.visit_number = f"{spec.index + 1:03d}"
    obs.visit_group = "03"
    obs.sequence_id = "1"
    obs.activity_id = "01"
    obs.exposure_number = "00001"
    obs.visit_id = f"{spec.program:05d}{obs_num:03d}{spec.index + 1:03d}"
    obs.obs_id = f"V{obs.visit_id}P0000000003101"

    sub = m.subarray
    sub.name = subarray.name
    sub.xstart, sub.ystart = subarray.xstart, subarray.ystart
    sub.xsize, sub.ysize = subarray.xsize, subarray.ysize
    sub.fastaxis, sub.slowaxis = geometry.fastaxis, geometry.slowaxis

    # TIME-END (the spec's default timeobs_fitskey) is not in the datamodel
    # schema since DATE-END became a full date-time; ground-test files had it.
    model.extra_fits = {"PRIMARY": {"header": [
        ["TIME-END", end_iso.split("T")[1], "[hh:mm:ss.sss] UTC time at end of exposure"],
        ["SIMFLUX", float(spec.flux), "[e-/s] simulated illumination per pixel"],
        ["SIMKIND", spec.kind, "simulated exposure kind"],
    ]}}

    n = spec.nints
    model.int_times = np.array(
        list(zip(np.arange(1, n + 1), tim["int_start"],
                 [(a + b) / 2 for a, b in zip(tim["int_start"], tim["int_end"])],
                 tim["int_end"], tim["int_start"],
                 [(a + b) / 2 for a, b in zip(tim["int_start"], tim["int_end"])],
                 tim["int_end"])),
        dtype=[("integration_number", "<i4"), ("int_start_MJD_UTC", "<f8"),
               ("int_mid_MJD_UTC", "<f8"), ("int_end_MJD_UTC", "<f8"),
               ("int_start_BJD_TDB", "<f8"), ("int_mid_BJD_TDB", "<f8"),
               ("int_end_BJD_TDB", "<f8")])
    return model


def write_exposure_truth(path: Path, spec: ExposureSpec, ramps: RampResult,
                         tframe: float, pattern: ReadoutPattern) -> Path:
    """Per-exposure truth: cosmic rays (table CRS), amplifier drift (DRIFT)."""
    def writer(tmp):
        hdr = fits.Header()
        for k, v in asdict(spec).items():
            if v is not None:
                hdr[f"HIERARCH SIM {k.upper()}"] = v
        hdr["TFRAME"] = tframe
        prim = fits.PrimaryHDU(header=hdr)
        crs = fits.BinTableHDU(ramps.cosmic_rays, name="CRS")
        drift = fits.ImageHDU(ramps.drift, name="DRIFT")
        drift.header["COMMENT"] = "axes: (integration, group, amplifier, column parity)"
        gt = fits.ImageHDU(group_times(pattern, spec.ngroups, tframe), name="GRPTIME")
        gt.header["BUNIT"] = "s"
        fits.HDUList([prim, crs, drift, gt]).writeto(tmp)
    return atomic_write(path, writer)


def write_detector_truth(truth: DetectorTruth, outdir: Path) -> tuple[Path, Path]:
    """Truth maps (one image extension each) and the defect table (ECSV).

    Returns (maps_path, defects_path).
    """
    outdir = Path(outdir)
    det = truth.geometry.detector
    maps_path = outdir / f"{det.lower()}_truth.fits"
    defects_path = outdir / f"{det.lower()}_defects.ecsv"
    units = {"bias": "DN", "read_noise": "DN (single frame)", "dark_current": "e-/s",
             "gain": "e-/DN", "qe": "", "nonlin_alpha": "1/DN", "saturation": "DN",
             "rc_amplitude": "DN", "rc_tau": "s", "telegraph_amplitude": "DN",
             "telegraph_dwell": "s", "low_pedestal": "DN", "open_neighbour_gain": ""}

    def writer(tmp):
        hdr = fits.Header()
        hdr["INSTRUME"] = truth.geometry.instrument
        hdr["DETECTOR"] = det
        hdr["SIMSEED"] = truth.seed
        hdr["IPCALPHA"] = (truth.parameters.ipc_alpha, "injected IPC coupling, side")
        hdr["IPCALPHD"] = (truth.parameters.ipc_alpha_diagonal, "injected IPC coupling, corner")
        hdr["ORIGIN"] = ORIGIN
        hdr["HIERARCH SIM PARAMETERS"] = json.dumps(asdict(truth.parameters))[:60]
        hdus = [fits.PrimaryHDU(header=hdr)]
        for name in truth.MAPS:
            h = fits.ImageHDU(getattr(truth, name), name=name.upper())
            h.header["BUNIT"] = units[name]
            hdus.append(h)
        coeffs = fits.ImageHDU(truth.linearity_coefficients(), name="LIN_COEFFS")
        coeffs.header["COMMENT"] = "linear = sum_k c_k * measured**k (measured above bias)"
        hdus.append(coeffs)
        hdus.append(fits.ImageHDU(truth.refpix.astype(np.uint8), name="REFPIX"))
        hdus.append(fits.BinTableHDU(truth.defects, name="DEFECTS"))
        fits.HDUList(hdus).writeto(tmp)

    atomic_write(maps_path, writer)
    defects = truth.defects.copy()
    defects.meta["parameters"] = asdict(truth.parameters)
    defects.meta["value_meaning"] = DEFECT_VALUE_MEANING
    atomic_write(defects_path, lambda tmp: defects.write(tmp, format="ascii.ecsv"))
    return maps_path, defects_path


def _mask_dq(truth: DetectorTruth) -> np.ndarray:
    dq = np.zeros(truth.geometry.shape, dtype=np.uint32)
    # REFERENCE_PIXEL only: jwst's refpix step ignores reference pixels that
    # are also DO_NOT_USE ("no valid reference pixels")
    dq[truth.refpix] = flag_value("REFERENCE_PIXEL")
    d = truth.defects
    for cls, flags in DEFECT_CLASSES.items():
        sel = d["defect"] == cls
        dq[d["y"][sel], d["x"][sel]] |= flag_value(flags)
    return dq


def dark_reference_ramp(truth: DetectorTruth, subarray: Subarray, ngroups: int,
                        tframe: float) -> np.ndarray:
    """Expected superbias-subtracted, linearised dark signal (ngroups, ny, nx), RAPID frames.

    Frame g is read at (g + 1) tframe: dark current plus reset decay (RC).
    """
    sl = subarray.slices()
    t = (np.arange(ngroups, dtype=np.float32) + 1) * tframe
    rate = (truth.dark_current[sl] / truth.gain[sl]).astype(np.float32)
    ramp = t[:, None, None] * rate[None]
    amp, tau = truth.rc_amplitude[sl], truth.rc_tau[sl]
    rc = amp > 0
    if rc.any():
        ramp[:, rc] += amp[rc][None, :] * (1 - np.exp(-t[:, None] / tau[rc][None, :]))
    return ramp.astype(np.float32)


def write_truth_reffiles(truth: DetectorTruth, outdir: Path,
                         darks: list[tuple[Subarray, int, float]] = (),
                         useafter: str = "2022-01-01T00:00:00") -> dict[str, Path]:
    """CRDS-formatted reference files made from the truth, standing in for CRDS.

    Full-frame mask, saturation, superbias, linearity, gain, readnoise, ipc
    (and reset for MIRI); one dark per ``(subarray, nframes_total, tframe)`` in
    ``darks`` (RAPID frames, enough to cover the exposures).  The pipeline cuts
    full-frame files down to a subarray itself.

    Conventions: the ipc file holds the 3x3 deconvolution kernel of the
    injected coupling (the jwst ipc step convolves with it); the readnoise file holds the CDS noise (sqrt(2) x single-frame
    noise, in DN), as the jwst ramp fitting expects; the saturation file holds
    the flagging threshold: the plateau minus five single-frame read noises, so
    that every saturated read is flagged; the superbias is the stable bias
    (low-pedestal pixels, whose reset level drops in each integration, are
    flagged UNRELIABLE_BIAS).

    Returns {reftype: path} (dark keys are ``dark_<SUBARRAY>``).
    """
    outdir = Path(outdir)
    geom = truth.geometry
    det = geom.detector
    full = Subarray("FULL", 1, 1, geom.nx, geom.ny, geom.n_amplifiers)
    common = dict(instrument=geom.instrument, detector=det, useafter=useafter,
                  pedigree="DUMMY", author="jwst_reffiles simulator",
                  channel=geom.channel, module=geom.module,
                  fastaxis=geom.fastaxis, slowaxis=geom.slowaxis,
                  history=[f"Made by {ORIGIN} {__version__} from the injected truth "
                           f"(seed {truth.seed})."])
    refpix = truth.refpix
    paths = {}

    def save(model, reftype, name=None, subarray=full, **extra):
        set_reference_meta(model, reftype=reftype, subarray=subarray,
                           description=f"Simulated truth {reftype} for {det}",
                           **{**common, **extra})
        model.validate()
        path = outdir / f"jwst_reffiles_sim_{det.lower()}_{name or reftype}.fits"
        atomic_save(model, path)
        paths[name or reftype] = path
        model.close()

    dq = _mask_dq(truth)
    save(dm.MaskModel(dq=dq, dq_def=dq_def_records(dq)), "mask")

    sat = (truth.saturation - 5 * truth.read_noise).astype(np.float32)
    sat_dq = np.zeros(geom.shape, np.uint32)
    sat_dq[refpix] = flag_value("NO_SAT_CHECK")
    save(dm.SaturationModel(data=sat, dq=sat_dq, dq_def=dq_def_records(sat_dq)), "saturation")

    # the stable bias: a low-pedestal pixel's drop is a per-exposure event that a
    # superbias (made at another time) does not contain, so it shows as a low
    # pedestal after superbias subtraction, as on the real detectors
    sb = truth.bias
    sb_dq = np.zeros(geom.shape, np.uint32)
    sb_dq[truth.low_pedestal != 0] = flag_value("UNRELIABLE_BIAS")
    sb_err = (truth.read_noise / np.sqrt(100.0)).astype(np.float32)
    if geom.instrument != "MIRI":
        save(dm.SuperBiasModel(data=sb.astype(np.float32), err=sb_err, dq=sb_dq,
                               dq_def=dq_def_records(sb_dq)), "superbias")

    coeffs = truth.linearity_coefficients()
    lin_dq = np.zeros(geom.shape, np.uint32)
    coeffs[:, refpix] = 0.0
    coeffs[1, refpix] = 1.0
    lin_dq[refpix] = flag_value("NO_LIN_CORR")
    save(dm.LinearityModel(coeffs=coeffs, dq=lin_dq, dq_def=dq_def_records(lin_dq)),
         "linearity")

    save(dm.GainModel(data=truth.gain.astype(np.float32)), "gain")
    save(dm.ReadnoiseModel(data=(np.sqrt(2.0) * truth.read_noise).astype(np.float32)),
         "readnoise")
    from ..ipc import deconvolution_kernel
    ipc = deconvolution_kernel(truth.ipc_kernel).astype(np.float32)
    save(dm.IPCModel(data=ipc), "ipc", subarray=None)   # a kernel: no subarray keywords

    if geom.instrument == "MIRI":
        # The simulator injects no reset anomaly: a zero correction.
        zero4 = np.zeros((1, 1) + geom.shape, np.float32)
        save(dm.ResetModel(data=zero4, err=zero4.copy(),
                           dq=np.zeros(geom.shape, np.uint32),
                           dq_def=dq_def_records(["DO_NOT_USE"])), "reset",
             readpatt="FAST")

    for subarray, nframes_total, tframe in darks:
        ramp = dark_reference_ramp(truth, subarray, nframes_total, tframe)
        sl = subarray.slices()
        if geom.instrument == "MIRI":
            data = np.repeat(ramp[None], 2, axis=0)
            dark = dm.DarkMIRIModel(data=data, err=np.zeros_like(data),
                                    dq=np.zeros(data.shape, np.uint32),
                                    dq_def=dq_def_records(["DO_NOT_USE"]))
            readpatt = "FAST"
        else:
            dark_dq = np.zeros(ramp.shape[1:], np.uint32)
            dark = dm.DarkModel(data=ramp, err=np.zeros_like(ramp), dq=dark_dq,
                                dq_def=dq_def_records(["DO_NOT_USE"]))
            readpatt = "RAPID"
        dark.meta.exposure.nframes = 1
        dark.meta.exposure.groupgap = 0
        dark.meta.exposure.ngroups = nframes_total
        dark.meta.exposure.noutputs = subarray.noutputs
        # the dark schema has no frame time; the dark is only valid for this one
        dark.extra_fits = {"PRIMARY": {"header": [
            ["TFRAME", float(tframe), "[s] frame time the dark was made for"]]}}
        # e-/s, used by the pipeline for the dark's Poisson variance.  jwst 3.0
        # applies a 2-D map only when the input ramp already carries one (a
        # Level-1b file never does), so the scalar is what takes effect.
        sci = ~truth.refpix[sl]
        dark.meta.exposure.average_dark_current = float(np.median(truth.dark_current[sl][sci]))
        save(dark, "dark", name=f"dark_{subarray.name.lower()}", subarray=subarray,
             readpatt=readpatt)
    return paths

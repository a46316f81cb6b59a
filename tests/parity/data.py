"""Small FITS files for the parity harness, written with astropy alone (no pipeline):
a NIRCam NRCA1 32x32 window with a 4-pixel reference border, as each documented
function expects its input (rate, rateints, fitopt, jump, uncal, flats, ramps of
biases), with a few defects of each kind."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

N = 32          # window size
REF = 4         # reference border
NINT, NGROUP = 3, 6
REFPIX_FLAG = 2 ** 31
JUMP_FLAG = 4
SAT_FLAG = 2


def header(name: str, **extra) -> fits.Header:
    hdr = fits.Header()
    cards = dict(TELESCOP="JWST", INSTRUME="NIRCAM", DETECTOR="NRCA1", CHANNEL="SHORT",
                 MODULE="A", SUBARRAY="FULL", READPATT="RAPID", NGROUPS=NGROUP, NINTS=NINT,
                 NFRAMES=1, GROUPGAP=0, TFRAME=10.73677, TGROUP=10.73677, EFFEXPTM=53.68,
                 FASTAXIS=-1, SLOWAXIS=2, SUBSTRT1=1, SUBSTRT2=1, SUBSIZE1=N, SUBSIZE2=N,
                 EXP_TYPE="NRC_DARK", FILENAME=name, S_DQINIT="COMPLETE")
    cards.update(extra)
    for key, value in cards.items():
        hdr[key] = value
    return hdr


def refpix_dq(shape=(N, N)) -> np.ndarray:
    dq = np.full(shape, REFPIX_FLAG, np.uint32)
    dq[REF:-REF, REF:-REF] = 0
    return dq


def write(path: Path, hdr: fits.Header, **extensions) -> None:
    hdus = [fits.PrimaryHDU(header=hdr)]
    for name, data in extensions.items():
        hdus.append(fits.ImageHDU(data, name=name))
    fits.HDUList(hdus).writeto(path, overwrite=True)


def make_data(outdir: Path) -> Path:
    rng = np.random.default_rng(7)
    outdir.mkdir(parents=True, exist_ok=True)
    dq2 = refpix_dq()
    # darks: rate, rateints, fitopt, jump, uncal
    for k, sub in enumerate(("FULL", "FULL", "SUB64P", "FULL", "FULL", "FULL", "FULL")):
        stem = f"dark{k + 1}"
        rates = rng.normal(0.01, 0.002, (NINT, N, N)).astype(np.float32)
        rates[:, 10, 12] = 5.0                                   # hot
        ped = rng.normal(12000.0, 5.0, (NINT, N, N)).astype(np.float32)
        ped[:, 20, 20] = 11000.0                                 # low pedestal
        ped[:, 15, 9] = 0.0                                      # saturated everywhere
        groups = np.cumsum(rng.normal(0, 5, (NINT, NGROUP, N, N)), axis=1) + 12000
        groupdq = np.zeros((NINT, NGROUP, N, N), np.uint8)
        groupdq[:, 1:3, 8, 8] = JUMP_FLAG                        # early jumps (RC-like)
        groupdq[:, :, 9, 14] = JUMP_FLAG                         # a jump in every group
        groupdq[1, 4, 25, 5] = JUMP_FLAG
        groupdq[:, :, 15, 9] = SAT_FLAG
        hdr = header(f"{stem}_uncal.fits", SUBARRAY=sub, S_RAMP="COMPLETE",
                     S_JUMP="COMPLETE", S_SATURA="COMPLETE")
        write(outdir / f"{stem}_rate.fits", hdr, SCI=rates.mean(0), DQ=dq2,
              ERR=np.full((N, N), 0.001, np.float32))
        write(outdir / f"{stem}_rateints.fits", hdr, SCI=rates,
              DQ=np.repeat(dq2[None], NINT, 0), ERR=np.full((NINT, N, N), 0.001, np.float32))
        write(outdir / f"{stem}_fitopt.fits", hdr, PEDESTAL=ped)
        jhdr = header(f"{stem}_uncal.fits", SUBARRAY=sub, S_JUMP="COMPLETE")
        write(outdir / f"{stem}_jump.fits", jhdr, SCI=groups.astype(np.float32), PIXELDQ=dq2,
              GROUPDQ=groupdq, ERR=np.zeros((NINT, NGROUP, N, N), np.float32))
        write(outdir / f"{stem}_uncal.fits", header(f"{stem}_uncal.fits", SUBARRAY=sub),
              SCI=np.clip(groups, 0, 65535).astype(np.uint16))
    # flats: rate images near 1 with dead, low-QE and open pixels; and one 12-group ramp
    for k in range(3):
        flat = rng.normal(1.0, 0.01, (N, N)).astype(np.float32)
        flat[12, 12] = 0.01                                      # dead
        flat[20, 8] = 0.3                                        # low QE
        flat[16, 22] = 0.3                                       # open ...
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            flat[16 + dy, 22 + dx] = 1.2                         # ... its neighbours bright
        hdr = header(f"flat{k + 1}_uncal.fits", EXP_TYPE="NRC_FLAT", S_RAMP="COMPLETE")
        write(outdir / f"flat{k + 1}_rate.fits", hdr, SCI=flat, DQ=dq2,
              ERR=np.full((N, N), 0.001, np.float32))
    ramp = (np.arange(1, 13)[None, :, None, None] * 1000.0
            + rng.normal(0, 3, (1, 12, N, N))).astype(np.float32)
    write(outdir / "flat_ramp.fits", header("flat_ramp.fits", EXP_TYPE="NRC_FLAT", NGROUPS=12,
                                            NINTS=1), SCI=ramp)
    # bias ramps for superbias and readnoise (refpix level: float32, PIXELDQ, GROUPDQ)
    for k in range(3):
        bias = rng.normal(12000.0, 10.0, (N, N))
        data = (bias[None, None] + rng.normal(0, 6.0, (2, 4, N, N))).astype(np.float32)
        data[:, :, 5, 7] += rng.normal(0, 80.0, (2, 4))          # a noisy pixel
        hdr = header(f"bias{k + 1}_uncal.fits", EXP_TYPE="NRC_DARK", NGROUPS=4, NINTS=2,
                     S_REFPIX="COMPLETE")
        write(outdir / f"bias{k + 1}_refpix.fits", hdr, SCI=data, PIXELDQ=dq2,
              GROUPDQ=np.zeros(data.shape, np.uint8))
    # a mask for the pipeline check: the window's reference pixels and one dead pixel
    mask = dq2.copy()
    mask[12, 12] = 1024 + 1
    from stdatamodels.jwst import datamodels as dm
    with dm.MaskModel(dq=mask) as model:
        model.meta.instrument.name, model.meta.instrument.detector = "NIRCAM", "NRCA1"
        model.meta.subarray.name, model.meta.reftype = "FULL", "MASK"
        model.meta.subarray.xstart = model.meta.subarray.ystart = 1
        model.meta.subarray.xsize = model.meta.subarray.ysize = N
        model.meta.description, model.meta.author, model.meta.pedigree = "test", "me", "GROUND"
        model.meta.useafter = "2019-04-01T00:00:00"
        model.save(str(outdir / "a_mask.fits"))
    ramp = fits.getdata(outdir / "dark1_uncal.fits", "SCI")
    with dm.RampModel(data=ramp.astype(np.float32)) as model:     # a datamodel exposure
        model.meta.instrument.name, model.meta.instrument.detector = "NIRCAM", "NRCA1"
        model.meta.instrument.channel, model.meta.instrument.module = "SHORT", "A"
        model.meta.instrument.filter, model.meta.instrument.pupil = "F212N", "CLEAR"
        model.meta.exposure.type, model.meta.exposure.readpatt = "NRC_DARK", "RAPID"
        model.meta.exposure.ngroups, model.meta.exposure.nints = NGROUP, NINT
        model.meta.exposure.nframes, model.meta.exposure.groupgap = 1, 0
        model.meta.subarray.name = "FULL"
        model.meta.subarray.xstart = model.meta.subarray.ystart = 1
        model.meta.subarray.xsize = model.meta.subarray.ysize = N
        model.meta.subarray.fastaxis, model.meta.subarray.slowaxis = -1, 2
        model.meta.observation.date, model.meta.observation.time = "2022-06-01", "00:00:00"
        model.save(str(outdir / "model_uncal.fits"))
    (outdir / "manual_flags.txt").write_text(
        "# x y flag\nx     y     flag\n3     5     DEAD\n10:12 7     HOT\n20    :     RC\n")
    return outdir

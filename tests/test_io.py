"""Block reading of ramps (jwst_reffiles.io.RampFile) against astropy's whole-file read."""

import gzip
import shutil

import numpy as np
import pytest
from astropy.io import fits

from jwst_reffiles.io import RampFile


def _write(path, rng, shape=(2, 5, 12, 7)):
    """A file like a Level-1b/jump product: uint16 SCI (BZERO 32768), float32
    ERR, uint8 GROUPDQ, and a 3-D float64 extension."""
    raw = rng.integers(0, 65536, shape).astype(np.uint16)
    hdul = fits.HDUList([fits.PrimaryHDU(),
                         fits.ImageHDU(raw, name="SCI"),
                         fits.ImageHDU(rng.normal(size=shape).astype(np.float32), name="ERR"),
                         fits.ImageHDU(rng.integers(0, 256, shape).astype(np.uint8),
                                       name="GROUPDQ"),
                         fits.ImageHDU(rng.normal(size=shape[1:]), name="THREED")])
    hdul.writeto(path)
    with fits.open(path) as h:
        return {e: np.asarray(h[e].data) for e in ("SCI", "ERR", "GROUPDQ", "THREED")}


@pytest.mark.parametrize("compressed", [False, True])
def test_ramp_file_blocks_equal_astropy(tmp_path, compressed):
    rng = np.random.default_rng(4)
    path = tmp_path / "ramp.fits"
    truth = _write(path, rng)
    if compressed:                       # read through astropy's section instead
        with open(path, "rb") as src, gzip.open(tmp_path / "ramp.fits.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        path = tmp_path / "ramp.fits.gz"
    cases = [dict(), dict(y0=3, y1=9), dict(y0=0, y1=1, ints=slice(1, 2)),
             dict(y0=5, y1=12, groups=slice(1, None, 2)), dict(y0=2, y1=4, ints=slice(None, None, -1))]
    for ext, dtypes in (("SCI", (np.float64, np.float32, np.uint32, np.int64)),
                        ("ERR", (np.float32, np.float64)), ("GROUPDQ", (np.uint8, np.uint32)),
                        ("THREED", (np.float64,))):
        with RampFile(path, ext) as f:
            assert (f._raw is None) == compressed
            full = truth[ext] if truth[ext].ndim == 4 else truth[ext][None]
            assert f.shape == full.shape
            for kw in cases:
                y0, y1 = kw.get("y0", 0), kw.get("y1", full.shape[2])
                want = full[kw.get("ints", slice(None)), kw.get("groups", slice(None)), y0:y1]
                for dtype in dtypes:
                    got = f.read(dtype=dtype, **kw)
                    assert got.dtype == dtype and got.dtype.isnative
                    np.testing.assert_array_equal(got, want.astype(dtype), err_msg=f"{ext} {kw}")
                # float32, and the values' own type (stored bytes read straight into
                # ``out`` and swapped there where the block is contiguous)
                for out_type in (np.float32, want.dtype.newbyteorder("=")):
                    out = np.full(want.shape, 7, out_type)
                    assert f.read(out=out, **kw) is out
                    np.testing.assert_array_equal(out, want.astype(out_type),
                                                  err_msg=f"{ext} {kw} {out_type}")


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_ramp_file_errors_name_the_file(tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "ramp.fits"
    _write(path, rng)
    with fits.open(path, mode="update") as h:
        h["ERR"].header["BSCALE"] = 2.0
    with RampFile(path, "ERR") as f, pytest.raises(ValueError, match="ramp.fits: ERR: scaled data"):
        f.read(dtype=np.int32)
    with RampFile(path, "ERR") as f:
        np.testing.assert_allclose(f.read(0, 2, dtype=np.float64),
                                   fits.getdata(path, "ERR")[:, :, 0:2])
    # a file cut short inside the data
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size - 2880)          # the last of the 3-D data's two blocks
    with RampFile(path, "THREED") as f, pytest.raises(ValueError, match="ramp.fits.*end early"):
        f.read()
    with pytest.raises(ValueError, match="ramp.fits.*NOPE"):
        RampFile(path, "NOPE")


@pytest.mark.parametrize("diff_type", ["independent", "consecutive"])
def test_stack_sources_read_blocks_of_every_file(tmp_path, diff_type):
    """CDSSource and GroupSource stack every file's integrations (files of 2
    and 1 integrations, 5 groups) a row block at a time, into one reused
    buffer: each block equals the whole files' differences / group."""
    from jwst_reffiles.io import CDSSource, GroupSource, cds_differences
    rng = np.random.default_rng(6)
    paths, data = [], []
    for k, nints in enumerate((2, 1)):
        raw = rng.integers(0, 65536, (nints, 5, 12, 7)).astype(np.uint16)
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(raw, name="SCI")]).writeto(
            tmp_path / f"f{k}.fits")
        paths.append(tmp_path / f"f{k}.fits")
        data.append(raw.astype(np.float64))
    diffs = np.concatenate([cds_differences(d, diff_type) for d in data])
    zeroth = np.concatenate([d[:, 0] for d in data])
    with CDSSource(paths, diff_type) as cds, GroupSource(paths, 0) as group:
        assert cds.shape == diffs.shape and group.shape == zeroth.shape
        for y0, y1 in ((0, 5), (5, 10), (10, 12), (3, 4)):
            np.testing.assert_array_equal(cds.read(y0, y1), diffs[:, y0:y1])
            np.testing.assert_array_equal(group.read(y0, y1), zeroth[:, y0:y1])

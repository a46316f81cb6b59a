"""Stale products: a pipeline product is reused only while the raw exposure it was made
from, and the reference files it was made with, are the ones it records."""

import shutil
import textwrap

import pytest
from astropy.io import fits

from jwst_reffiles import cli
from jwst_reffiles.pipeline.plan import JRINSUM
from jwst_reffiles.simulate import simulate_dataset


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate_dataset(tmp_path_factory.mktemp("stale") / "sim", subarray="SUB64P",
                            ngroups=3, nints=1, ndarks=2, nflats=0, seed=9)


def root_of(path):
    return path.name[: -len("_uncal.fits")]


def _edit_in_place(path, keep_mtime=True):
    """Change one raw value of an exposure, keeping its size (and mtime)."""
    import os
    st = os.stat(path)
    with fits.open(path, mode="update") as hdul:
        hdul["SCI"].data[0, 1, 7, 7] += 5
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_shared_ssbdir_product_of_an_edited_raw_file_is_made_again(sim, tmp_path, capsys):
    work = tmp_path / "sim"
    shutil.copytree(sim.outdir, work)
    files = sorted(work.glob("*_uncal.fits"))
    cfg = tmp_path / "shared.cfg"
    cfg.write_text(textwrap.dedent(f"""
        output: {{outrootdir: {tmp_path / 'out'}, runID: AUTO, skip_runID_ssbdir: True}}
        reffile4ssb: {{default: '{work / 'reffiles'}/*.fits'}}
        """))
    base = ["--cfgfile", str(cfg), "--no-quality-check", "superbias"]
    assert cli.main(base + [str(f) for f in files]) == 0
    product = next((tmp_path / "out" / "ssb").glob(f"{root_of(files[0])}_dq_init*.fits"))
    assert fits.getheader(product)[JRINSUM]
    # a new run (no state of its own) reuses the shared products of unchanged inputs...
    capsys.readouterr()
    assert cli.main(["--new-run"] + base + [str(f) for f in files]) == 0
    assert "0 run(s) done" in capsys.readouterr().out
    # ...but not those of an input edited since, even with its size and mtime kept,
    # and with the run state deleted
    _edit_in_place(files[0])
    shutil.rmtree(tmp_path / "out" / "002")
    assert cli.main(["--new-run"] + base + [str(f) for f in files]) == 0
    out = capsys.readouterr().out
    assert "1 run(s) done" in out and "is not reused: its raw exposure changed" in out
    # in a run whose state knows the file, --verify-inputs sees an edit that kept size,
    # mtime and inode (the state's cache alone does not)
    _edit_in_place(files[0])
    assert cli.main(["-p", "output.runID", "2"] + base + [str(f) for f in files]) == 0
    assert "0 run(s) done" in capsys.readouterr().out
    assert cli.main(["-p", "output.runID", "2", "--verify-inputs"] + base +
                    [str(f) for f in files]) == 0
    assert "1 run(s) done" in capsys.readouterr().out

"""Provenance keywords in a final file (on a small model; the run's
provenance.json is checked on a whole campaign in test_shipped_modules)."""

import numpy as np
from astropy.io import fits
from stdatamodels.jwst import datamodels as dm

from jwst_reffiles.io import file_checksum
from jwst_reffiles.provenance import KEYWORDS, digest, read_keywords, software_versions, stamp
from jwst_reffiles.reffile import atomic_save, set_reference_meta
from jwst_reffiles.stage2 import check_reference_file


def test_digest_is_of_names_and_checksums_in_any_order():
    a = digest({"b.fits": "2", "a.fits": "1"})
    assert a == digest({"a.fits": "1", "b.fits": "2"})
    assert a != digest({"a.fits": "1", "b.fits": "3"})
    assert a != digest({"a.fits": "2", "b.fits": "1"})


def test_stamp_writes_keywords_and_history_and_the_file_stays_valid(tmp_path):
    model = dm.SuperBiasModel(data=np.ones((8, 8), np.float32))
    set_reference_meta(model, reftype="SUPERBIAS", instrument="NIRCAM", detector="NRCA1")
    path = atomic_save(model, tmp_path / "final" / "superbias.fits")
    raw = tmp_path / "raw_uncal.fits"
    raw.write_bytes(b"raw exposure")
    ssb = tmp_path / "mask.fits"           # made by this run (SELF): no checksum yet
    prov = {"entry": {"inputs": [{"file": str(raw), "sha256": file_checksum(raw)}],
                      "reference_files": [{"reftype": "mask", "file": str(ssb),
                                           "sha256": None}]},
            "software": software_versions(), "command_line": "mkrefs superbias raw_uncal.fits",
            "config_sha256": "c" * 64}
    ssb.write_bytes(b"mask made first")
    stamp(path, prov)
    check_reference_file(path, "superbias")
    assert sorted(p.name for p in path.parent.iterdir()) == ["superbias.fits"]  # no temp left
    kw = read_keywords(path)
    assert set(kw) == set(KEYWORDS)
    assert kw["JRCFGSUM"] == "c" * 64 and kw["JRJWST"] == software_versions()["jwst"]
    assert kw["JRINPSUM"] == digest({str(raw): file_checksum(raw)})
    assert kw["JRSSBSUM"] == digest({str(ssb): file_checksum(ssb)})     # filled when stamped
    history = "".join(str(h) for h in fits.getheader(path)["HISTORY"]).replace(" ", "")
    assert f"DATAUSED:raw_uncal.fitssha256{file_checksum(raw)}" in history
    assert f"CALIBRATEDWITH:maskmask.fitssha256{file_checksum(ssb)}" in history
    with dm.open(str(path)) as m:          # the data are the model's
        assert np.all(m.data == 1) and m.meta.reftype == "SUPERBIAS"

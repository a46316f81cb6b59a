"""Call documented functions and record what they return: run by the parity harness in
our environment and in the predecessor's virtualenv (``jwst_reffiles`` there is the
predecessor), on the same inputs.

Usage: ``python worker.py CASES.pkl RESULTS.pkl DATADIR WORKDIR``.  CASES is a list of
``(case_id, dotted_function, args, kwargs)`` made of builtins and numpy arrays;
``("__data__", name)`` anywhere in the arguments stands for ``DATADIR/name``, and
``("__hdulist__", name)`` for that file opened with astropy.  Each case runs in
``WORKDIR/case_id`` (files it writes land there).  RESULTS maps each case id to
``("returned", value, files)`` or ``("raised", exception type, message, files)``, with
values reduced to builtins and numpy arrays (:func:`reduce`) and ``files`` the FITS
files the call wrote, reduced likewise.

This file imports nothing of jwst_reffiles at module level: it must run under both.
"""
import contextlib
import importlib
import io
import os
import pickle
import sys
import warnings

import numpy as np

# header keywords that differ from run to run or package to package by nature
VOLATILE = {"DATE", "CHECKSUM", "DATASUM", "FILENAME", "HISTORY", "COMMENT", "CAL_VER",
            "CAL_VCS", "CRDS_VER", "CRDS_CTX", "DATAMODL", "JRVERS", ""}


def reduce(value, depth=0):
    """``value`` as builtins and numpy arrays, tagged with what it was."""
    from astropy.io import fits
    if depth > 6:
        return ("object", type(value).__name__)
    if isinstance(value, np.ma.MaskedArray):
        return ("masked", np.ma.getdata(value).copy(), np.ma.getmaskarray(value).copy())
    if isinstance(value, np.ndarray):
        return ("array", value.copy())
    if isinstance(value, np.generic):
        return ("scalar", value.dtype.str, value.item())
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return ("builtin", type(value).__name__, value)
    if isinstance(value, fits.HDUList):              # (a list too)
        return ("hdulist", [reduce_hdu(h) for h in value])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [reduce(v, depth + 1) for v in value])
    if isinstance(value, dict):
        return ("dict", {str(k): reduce(v, depth + 1) for k, v in value.items()})
    if isinstance(value, fits.Header):
        return ("header", header_cards(value))
    return ("object", type(value).__name__)


def header_cards(header):
    return {k: header[k] for k in header if k not in VOLATILE and not k.startswith("NAXIS")}


def reduce_hdu(hdu):
    from astropy.io import fits
    data = hdu.data
    if isinstance(hdu, fits.BinTableHDU) and data is not None:
        data = {name: np.asarray(data[name]).copy() for name in data.names}
    elif data is not None:
        data = np.asarray(data).copy()
    return (hdu.name, data, header_cards(hdu.header))


def written_files(directory):
    from astropy.io import fits
    found = {}
    for root, _, names in os.walk(directory):
        for name in sorted(names):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, directory)
            if name.endswith(".fits"):
                try:
                    with fits.open(path) as hdul:
                        found[rel] = [reduce_hdu(h) for h in hdul]
                except Exception as exc:              # noqa: BLE001 - recorded
                    found[rel] = ("unreadable", repr(exc))
            else:
                found[rel] = ("file", os.path.getsize(path))
    return found


def resolve(value, datadir):
    from astropy.io import fits
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        if value[0] == "__data__":
            return os.path.join(datadir, value[1])
        if value[0] == "__hdulist__":
            return fits.open(os.path.join(datadir, value[1]))
    if isinstance(value, list):
        return [resolve(v, datadir) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve(v, datadir) for v in value)
    if isinstance(value, dict):
        return {k: resolve(v, datadir) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.copy()                       # a call may change its inputs in place
    return value


def call(dotted, args, kwargs, datadir):
    module, name = dotted.rsplit(".", 1)
    func = getattr(importlib.import_module(module), name)
    return func(*resolve(args, datadir), **resolve(kwargs, datadir))


def main(cases_path, results_path, datadir, workdir):
    import matplotlib
    matplotlib.use("Agg")
    with open(cases_path, "rb") as fh:
        cases = pickle.load(fh)
    results = {}
    home = os.getcwd()
    for case_id, dotted, args, kwargs in cases:
        where = os.path.join(workdir, case_id)
        os.makedirs(where, exist_ok=True)
        os.chdir(where)
        log = io.StringIO()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(log):
                warnings.simplefilter("ignore")
                value = call(dotted, args, kwargs, datadir)
            results[case_id] = ("returned", reduce(value), written_files(where))
        except (Exception, SystemExit) as exc:        # noqa: BLE001 - the result to compare
            # (SystemExit: CRDS exits when no server answers)
            results[case_id] = ("raised", type(exc).__name__, str(exc)[:500],
                                written_files(where))
        finally:
            os.chdir(home)
    with open(results_path, "wb") as fh:
        pickle.dump(results, fh)


if __name__ == "__main__":
    main(*sys.argv[1:5])

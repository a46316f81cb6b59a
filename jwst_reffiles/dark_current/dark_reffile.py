"""Dark current reference file from calibrated dark ramps.

Inputs: dark ramps calibrated up to (not including) the dark current step
(NIR: dq_init, saturation, superbias, refpix, linearity; MIRI: dq_init,
saturation, linearity, rscd), with cosmic-ray flags from the jump step: either
the jump products themselves (their GROUPDQ has JUMP_DET) or, next to each
input, the ``<exposure>_jump.fits`` product.

For every pixel and group, the values of all integrations of all files are
combined, leaving out every group from the first cosmic-ray hit of its
integration onwards and groups flagged SATURATED: the dark is
the sigma-clipped mean, its error the sigma-clipped standard deviation, and the
number of values used per pixel and group is kept (``num_good``).

Memory: the files are read a block of rows (all groups) at a time;
``max_equivalent_groups`` is the budget, in full-frame (2048 x 2048) float32
groups, whatever the subarray and the number of files.

NIR detectors give a DarkModel (ngroups, ny, nx); MIRI a DarkMIRIModel with
the first integration separate from the later ones (the reset anomaly makes
them differ), shape (2, ngroups, ny, nx) when the inputs have 2 or more
integrations.  The NIR inputs have had the superbias subtracted; MIRI ramps keep
their pedestal (the pipeline subtracts no bias from them), so the MIRI dark has
each pixel's pedestal taken off (:func:`remove_pedestal`): like CRDS darks and the
simulator's truth, it holds the dark signal, 0 at the reset.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from astropy.io import fits
from stdatamodels.jwst import datamodels as dm

from ..dq import dq_def_records, flag_value
from ..io import RampFile, check_consistent, read_dtype
from ..reffile import crds_info_from_file, save_reference
from ..stats import stack_stats

log = logging.getLogger(__name__)

__all__ = ["Dark", "first_hit_mask", "remove_pedestal"]

FULL_FRAME_GROUP_BYTES = 2048 * 2048 * 4


def first_hit_mask(groupdq: np.ndarray, bad_flags: int | None = None) -> np.ndarray:
    """True where a value must not be used: from an integration's first jump on.

    ``groupdq`` is (nints, ngroups, ...).  Also masks groups with any of
    ``bad_flags`` (SATURATED by default).  DO_NOT_USE is not masked: the
    pipeline copies the bad pixel mask's DO_NOT_USE into every group, and the
    dark of a hot or dead pixel is still needed.
    """
    jump = flag_value("JUMP_DET")
    bad = flag_value("SATURATED") if bad_flags is None else bad_flags
    groupdq = np.asarray(groupdq)
    hit = (groupdq & jump) != 0
    # a running OR over groups, one image at a time (np.logical_or.accumulate
    # along a middle axis is several times slower)
    for g in range(1, hit.shape[1]):
        np.logical_or(hit[:, g - 1], hit[:, g], out=hit[:, g])
    hit |= (groupdq & bad) != 0
    return hit


def _set(int_sets, k):
    return int_sets[k] if k < len(int_sets) else []


def _jump_file_for(path: Path) -> Path | None:
    """The GROUPDQ source of an input: itself when it has JUMP_DET, else <exposure>_jump.fits."""
    with fits.open(path) as hdul:
        if "GROUPDQ" in hdul and str(hdul[0].header.get("S_JUMP", "")).upper() == "COMPLETE":
            return path
    stem = path.name[:-5] if path.name.endswith(".fits") else path.name
    root = stem.rsplit("_", 1)[0]
    candidate = path.with_name(f"{root}_jump.fits")
    return candidate if candidate.exists() else None


def _count_quantiles(counts, percents):
    """np.percentile's (linear) ``percents`` of an image of small non-negative
    integers (values used per pixel), from their histogram: no sort of the frame."""
    cum = np.cumsum(np.bincount(np.ravel(counts)))
    n = int(cum[-1])

    def order_stat(j):                   # the j-th smallest value (0-based)
        return float(np.searchsorted(cum, j, side="right"))
    out = []
    for pc in percents:
        pos = pc / 100.0 * (n - 1)
        lo = int(np.floor(pos))
        a = order_stat(lo)
        b = order_stat(min(lo + 1, n - 1))
        out.append(a + (b - a) * (pos - lo))
    return out



def remove_pedestal(dark: np.ndarray) -> np.ndarray:
    """Take each pixel's pedestal off a mean dark ramp, in place, and return it.

    ``dark``: (nout, ngroups, ny, nx).  The pedestal is the value at the reset
    (time 0, group ``-1`` when group ``g`` is read at ``(g + 1)`` group times) of
    the least-squares line through the pixel's groups (non-finite ones left
    out): what remains is the dark signal with its non-linear structure.
    """
    ngroups = dark.shape[1]
    x = np.arange(1, ngroups + 1, dtype=np.float64)[:, None, None]
    for k in range(dark.shape[0]):
        y = dark[k].astype(np.float64)
        good = np.isfinite(y)
        n = good.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            xm = (x * good).sum(axis=0) / n
            ym = np.where(good, y, 0.0).sum(axis=0) / n
            dx = np.where(good, x - xm, 0.0)
            slope = (dx * np.where(good, y - ym, 0.0)).sum(axis=0) / (dx ** 2).sum(axis=0)
        pedestal = np.where(n >= 2, ym - np.nan_to_num(slope) * xm, np.where(n == 1, ym, 0.0))
        dark[k] -= np.nan_to_num(pedestal).astype(dark.dtype)
    return dark

class Dark:
    """Make a dark current reference file (the predecessor's interface).

    Parameters
    ----------
    file_list : list of str
        Calibrated dark ramps (see the module docstring).
    max_equivalent_groups : int
        Memory budget in full-frame float32 groups (60 = 1 GB).
    sigma_threshold : float
        Clipping threshold for the mean and standard deviation.
    pedigree, descrip, author, use_after, history : str
        CRDS metadata of the output (DESCRIP is always written).
    output_file : str
        Where to save the reference file (required).
    contribution_file : str or None
        Plot of the number of values used per group; a relative name goes next
        to ``output_file``, never into the current directory.
    max_clipping_iters : int
        Clipping iterations of the mean and standard deviation.
    create : bool
        Make the reference file now, as the predecessor's constructor did (its
        users' scripts call ``Dark(...)`` alone); ``False`` leaves it to
        :meth:`create_reffile`.  The output's path is then in ``self.path``.
    """

    def __init__(self, file_list=(), max_equivalent_groups=60, sigma_threshold=3, pedigree=None,
                 descrip=None, author=None, use_after=None, history=None, output_file=None,
                 contribution_file="good_signals_per_group.pdf", max_clipping_iters=3,
                 create=True):
        self.file_list = [Path(f) for f in file_list]
        if not self.file_list:
            raise ValueError("Dark: no input files")
        if output_file is None:
            raise ValueError("Dark: output_file must be given")
        if max_equivalent_groups <= 0:
            raise ValueError(f"max_equivalent_groups must be > 0, got {max_equivalent_groups}")
        self.max_equivalent_groups = max_equivalent_groups
        self.sigma_threshold = sigma_threshold
        self.max_clipping_iters = max_clipping_iters
        self.pedigree = pedigree or "GROUND"
        self.descrip = descrip or "Dark current reference file"
        self.author = author or "jwst_reffiles"
        self.use_after = use_after or "2022-01-01T00:00:00"
        self.history = history or ""
        self.output_file = Path(output_file)
        if contribution_file and not Path(contribution_file).is_absolute():
            contribution_file = self.output_file.parent / contribution_file
        self.contribution_file = contribution_file
        self.headers = {f: fits.getheader(f, 0) for f in self.file_list}
        first = self.headers[self.file_list[0]]
        self.instrument = str(first.get("INSTRUME", "")).upper()
        self.memory_bytes = int(max_equivalent_groups * FULL_FRAME_GROUP_BYTES)
        self.path = None
        if create:
            self.create_reffile()

    def consistency_check(self) -> None:
        """All inputs must share instrument, detector, subarray, readout and shape."""
        check_consistent(self.file_list, what="dark inputs")
        ref = self.headers[self.file_list[0]]
        if str(ref.get("NFRAMES", 1)) != "1" or str(ref.get("GROUPGAP", 0)) != "0":
            raise ValueError(f"{self.file_list[0]}: NFRAMES={ref.get('NFRAMES')}, GROUPGAP="
                             f"{ref.get('GROUPGAP')}: a dark reference file needs NFRAMES=1 "
                             f"and GROUPGAP=0 (the pipeline rebuilds other patterns from it)")

    def prepare_cr_maps(self) -> dict:
        """The file giving each input's cosmic-ray flags (GROUPDQ with JUMP_DET)."""
        out, missing = {}, []
        for f in self.file_list:
            j = _jump_file_for(f)
            if j is None:
                missing.append(str(f))
            out[f] = j
        if missing:
            raise FileNotFoundError(
                "no cosmic-ray flags for: " + ", ".join(missing) + " (give jump-step products, "
                "or put the <exposure>_jump.fits product next to each input)")
        return out

    def _groups_of(self, nints: int) -> list[list[int]]:
        """Integrations combined into each output integration (MIRI: first vs the rest)."""
        if self.instrument == "MIRI" and nints > 1:
            return [[0], list(range(1, nints))]
        return [list(range(nints))]

    def create_reffile(self) -> Path:
        """Compute the dark and save it; returns the output path."""
        self.consistency_check()
        jump_files = self.prepare_cr_maps()
        ramps = [RampFile(f) for f in self.file_list]
        # read a row block at a time, not mapped: a mapped file's pages count
        # towards the process's memory until it is closed (40 files: +0.2 GiB)
        dqs = {f: RampFile(j, "GROUPDQ") for f, j in jump_files.items()}
        try:
            nints, ngroups, ny, nx = ramps[0].shape
            # output integrations (MIRI: the first, and the rest where files have more)
            nout = max(len(self._groups_of(r.shape[0])) for r in ramps)
            dark = np.empty((nout, ngroups, ny, nx), np.float32)
            err = np.empty_like(dark)
            num_good = np.empty((nout, ngroups, ny, nx), np.int32)
            nstack = sum(r.shape[0] for r in ramps)
            row_bytes = max(1, nstack) * ngroups * nx * 8 * 2
            rows = int(max(1, min(ny, self.memory_bytes // row_bytes)))
            log.info("dark: %d files, %d integrations x %d groups, %d rows per block",
                     len(ramps), nstack, ngroups, rows)
            dtype = read_dtype(ramps)
            # one block buffer for all (a new one per block pays its page faults again)
            buf = np.empty(nstack * ngroups * min(rows, ny) * nx, dtype)
            for y0 in range(0, ny, rows):
                y1 = min(ny, y0 + rows)
                # every file's integrations into one block, NaN from the first hit on
                stack = buf[:nstack * ngroups * (y1 - y0) * nx].reshape(nstack, ngroups,
                                                                        y1 - y0, nx)
                firsts, i = [], 0
                for r, f in zip(ramps, self.file_list):
                    part = stack[i:i + r.shape[0]]
                    r.read(y0, y1, out=part)
                    gdq = dqs[f].read(y0, y1, dtype=dqs[f].flag_dtype)
                    np.copyto(part, np.nan, where=first_hit_mask(gdq))
                    firsts.append(i)
                    i += r.shape[0]
                for k in range(nout):
                    if nout == 1:
                        block = stack               # every integration of every file
                    else:                           # each file's integrations of set k
                        block = stack[[f0 + j for f0, r in zip(firsts, ramps)
                                       for j in _set(self._groups_of(r.shape[0]), k)]]
                    # all groups in one call: (n, ngroups * rows, nx)
                    st = stack_stats(block.reshape(block.shape[0], -1, nx),
                                     sigma=self.sigma_threshold,
                                     maxiters=self.max_clipping_iters,
                                     memory_bytes=self.memory_bytes, dtype=np.float32)
                    shape = (ngroups, y1 - y0, nx)
                    dark[k, :, y0:y1] = st.mean.reshape(shape)
                    err[k, :, y0:y1] = st.std.reshape(shape)
                    num_good[k, :, y0:y1] = st.count.reshape(shape)
        finally:
            for r in ramps:
                r.close()
            for h in dqs.values():
                h.close()
        if self.instrument == "MIRI":
            remove_pedestal(dark)
        # pixels with no usable value in some group (saturated throughout): a
        # zero dark, flagged, rather than NaN that would spread into science data
        dq = np.zeros((ny, nx), np.uint32)
        dq[(num_good < 2).any(axis=(0, 1))] = flag_value(["UNRELIABLE_DARK"])
        empty = ~np.isfinite(dark)
        dark[empty] = 0.0
        err[empty] = 0.0
        self.dark, self.err, self.num_good = dark, err, num_good
        self.path = self.save_reffile(dark, err, dq)
        self._save_contributions(num_good)
        return self.path

    def save_reffile(self, data, uncertainty, dq) -> Path:
        """Save the dark in the CRDS format (DarkModel, or DarkMIRIModel for MIRI)."""
        info = crds_info_from_file(self.file_list[0])
        hdr = self.headers[self.file_list[0]]
        data = np.asarray(data, np.float32)
        if self.instrument == "MIRI":
            dq4 = np.repeat(np.asarray(dq, np.uint32)[None, None], data.shape[0], axis=0)
            model = dm.DarkMIRIModel(data=data, err=np.asarray(uncertainty, np.float32), dq=dq4,
                                     dq_def=dq_def_records(dq4))
        else:
            data, uncertainty = data[0], np.asarray(uncertainty, np.float32)[0]
            model = dm.DarkModel(data=data, err=uncertainty, dq=np.asarray(dq, np.uint32),
                                 dq_def=dq_def_records(dq))
        model.meta.exposure.nframes = 1
        model.meta.exposure.groupgap = 0
        model.meta.exposure.ngroups = int(data.shape[-3])
        if "NOUTPUTS" in hdr:
            model.meta.exposure.noutputs = int(hdr["NOUTPUTS"])
        if "TFRAME" in hdr:
            model.extra_fits = {"PRIMARY": {"header": [
                ["TFRAME", float(hdr["TFRAME"]), "[s] frame time of the input darks"]]}}
        return save_reference(model, self.output_file, reftype="DARK",
                              input_files=self.file_list, info=info, author=self.author,
                              description=self.descrip, pedigree=self.pedigree,
                              useafter=self.use_after, history=self.history)

    def _save_contributions(self, num_good) -> None:
        from ..reffile import atomic_write
        stem = self.output_file.with_name(self.output_file.stem + "_num_good.fits")
        atomic_write(stem, lambda tmp: fits.PrimaryHDU(num_good.astype(np.int16)).writeto(tmp))
        if not self.contribution_file:
            return
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        for k in range(num_good.shape[0]):
            med, low = np.array([_count_quantiles(num_good[k, g], (50, 1))
                                 for g in range(num_good.shape[1])]).T
            label = "" if num_good.shape[0] == 1 else f" (integration set {k + 1})"
            ax.plot(med, "o-", label="median" + label)
            ax.plot(low, "s--", label="1st percentile" + label)
        ax.set_xlabel("group")
        ax.set_ylabel("values used per pixel")
        ax.legend()
        atomic_write(Path(self.contribution_file),
                     lambda tmp: fig.savefig(tmp, format=Path(self.contribution_file).suffix[1:]
                                             or "pdf"))
        plt.close(fig)

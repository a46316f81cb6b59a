"""The spec's example module: a readnoise map smoothed over boxes.

The CDS noise of every pixel (sigma-clipped at ``sigma_threshold``, through
the shared kernel and the readnoise module's bias corrections), then each
``boxsize`` x ``boxsize`` box set to the median of its pixels.
"""

from __future__ import annotations

import numpy as np

from ..readnoise import readnoise as rn


def make_readnoise_boxes(files, outfile, boxsize=128, sigma_threshold=4, verbose=0):
    """Save a box-smoothed readnoise reference file; return the image."""
    files = [str(f) for f in files]
    image = rn.readnoise_by_slice(files, "independent", sigma_threshold, 3, 0, 10**9)
    ny, nx = image.shape
    out = np.empty_like(image, dtype=np.float32)
    b = max(1, int(boxsize))
    for y0 in range(0, ny, b):
        for x0 in range(0, nx, b):
            out[y0:y0 + b, x0:x0 + b] = np.nanmedian(image[y0:y0 + b, x0:x0 + b])
    info = rn.get_crds_info(files[0], None, None)
    rn.save_readnoise(out, *info[:4], outfile=outfile, fastaxis=info[4], slowaxis=info[5],
                      substrt1=info[6], substrt2=info[7], filenames=files,
                      description=f"CDS noise, {b}x{b} box medians")
    return out

"""IPC reference files: the inter-pixel capacitance kernel (jwst_reffiles.ipc.ipc)."""

from .ipc import (coupling_kernel, deconvolution_kernel, fit_kernel, header_cards,
                  hot_pixel_couplings, hot_pixel_stamps, kernel_ratios, lag_ratios, make_ipc,
                  variance_factor)

__all__ = ["coupling_kernel", "deconvolution_kernel", "fit_kernel", "header_cards",
           "hot_pixel_couplings", "hot_pixel_stamps", "kernel_ratios", "lag_ratios", "make_ipc",
           "variance_factor"]

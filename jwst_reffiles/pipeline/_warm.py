"""Imported by the forkserver of :mod:`jwst_reffiles.pipeline.launch` before it forks:
the pipeline and the modules whose functions its children run, the schemas of
the data models the steps open (each child would otherwise parse them again on
its first step: 0.5 s), then the collector's freeze
(:func:`jwst_reffiles.pipeline.offline.prepare_pipeline_process`)."""

from stdatamodels.jwst import datamodels as _dm

from .. import validation, verify
from . import worker
from .offline import prepare_pipeline_process

__all__ = ["validation", "verify", "worker"]

for _name in ("RampModel", "MaskModel", "SaturationModel", "SuperBiasModel", "LinearityModel",
              "DarkModel", "ReadnoiseModel", "GainModel", "IPCModel"):
    try:                # a warm-up only: what fails here the child does again, and says
        with getattr(_dm, _name)():
            pass
    except Exception:
        pass
prepare_pipeline_process()

"""What running jwst's calwebb_detector1 with no CRDS server takes.

Even with every reference file overridden, each step records the CRDS context
it used, which reads ``$CRDS_PATH/config/jwst/server_config``.  This module
makes a private CRDS cache holding only that file and sets the environment the
pipeline process needs (local mode, a server URL that refuses at once, no
parameter reference files from CRDS).  A user's real CRDS cache is never
touched.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from pathlib import Path

__all__ = ["OFFLINE_CONTEXT", "make_offline_crds_cache", "offline_environment",
           "offline_crds", "crds_unreachable", "DEFAULT_CRDS_SERVER", "prepare_pipeline_process"]

#: Where the CRDS client goes when CRDS_SERVER_URL is not set.
DEFAULT_CRDS_SERVER = "https://jwst-crds.stsci.edu"

#: Name recorded as CRDS_CTX in the products of an offline run.
OFFLINE_CONTEXT = "jwst_offline.pmap"


def make_offline_crds_cache(path) -> Path:
    """Create (if needed) a CRDS cache directory with just a server_config."""
    path = Path(path)
    cfg = path / "config" / "jwst" / "server_config"
    if not cfg.exists():
        cfg.parent.mkdir(parents=True, exist_ok=True)
        text = repr({
            "observatory": "jwst", "operational_context": OFFLINE_CONTEXT,
            "edit_context": OFFLINE_CONTEXT, "force_remote_mode": False,
            "bad_files": "", "bad_files_list": [], "crds_version": {"str": "14.0.3"},
            "download_metadata": {}, "last_synced": "2026-01-01 00:00:00",
        })
        fd, tmp = tempfile.mkstemp(prefix=".server_config.", dir=cfg.parent)
        with os.fdopen(fd, "w") as fh:
            fh.write(text + "\n")
        os.replace(tmp, cfg)
    return path


def _refusing_url() -> str:
    """An http URL on a loopback port where nothing listens (connections refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"https://127.0.0.1:{port}"


def prepare_pipeline_process() -> None:
    """Set up a process that runs pipeline steps and then ends (a pipeline run, a
    quality check, a verification): import the pipeline, then freeze the objects
    made so far out of the garbage collector's reach.  stpipe collects garbage
    after every step (skipped ones too) and each collection otherwise walks every
    object of the imports: on a SUB160 ramp half of Detector1's time (a warm call
    0.62 s instead of 1.9 s).  The objects a run makes are collected as before; the
    frozen ones live as long as the process, which they would anyway."""
    import gc

    from jwst.pipeline import Detector1Pipeline
    del Detector1Pipeline          # imported to be frozen with the rest
    gc.collect()
    gc.freeze()


def offline_environment(cache_dir) -> dict[str, str]:
    """Environment variables for a pipeline process that must not reach CRDS."""
    return {
        "CRDS_PATH": str(make_offline_crds_cache(cache_dir)),
        "CRDS_MODE": "local",
        "CRDS_SERVER_URL": _refusing_url(),
        "STPIPE_DISABLE_CRDS_STEPPARS": "True",
    }


@contextlib.contextmanager
def offline_crds(cache_dir):
    """Set the offline environment in this process for the duration of a block."""
    env = offline_environment(cache_dir)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def crds_unreachable(environ=None, timeout: float = 3.0) -> str | None:
    """Why reference files cannot come from CRDS here, or None when they may.

    CRDS can serve them from its server (CRDS_SERVER_URL, else the JWST server;
    tried with a connection of at most ``timeout`` seconds) or from a local cache
    with mappings (CRDS_PATH).  Checked once, before any pipeline run, so that an
    offline run that needs CRDS says so at once instead of failing every run.
    """
    from urllib.parse import urlparse
    env = os.environ if environ is None else environ
    url = env.get("CRDS_SERVER_URL") or DEFAULT_CRDS_SERVER
    parsed = urlparse(url)
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except (OSError, ValueError) as exc:
        server = f"the CRDS server {url} cannot be reached ({exc})"
    cache = env.get("CRDS_PATH")
    if cache and any(Path(cache, "mappings", "jwst").glob("*.pmap")):
        return None
    where = f"CRDS_PATH {cache} has no CRDS mappings" if cache else "no CRDS cache (CRDS_PATH)"
    return f"{server}, and {where}"

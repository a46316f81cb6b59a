"""Fresh processes for pipeline work, started warm.

Every pipeline run, quality check and verification runs in a process of its
own (a crash in compiled code, a leak or a hang stays there; a timeout kills
it).  Started as ``python -m ...`` such a process pays the interpreter, the
jwst import and the garbage collector's walks over that import before any work
(2-3 s, more than a SUB160 run itself).  Here each one is forked from a
forkserver (:mod:`multiprocessing`) that has imported the pipeline once and
frozen those objects out of the collector's reach
(:func:`jwst_reffiles.pipeline.offline.prepare_pipeline_process`): the child
is still a new process, run once and discarded, but starts with the imports
done.

:func:`run_function` runs ``"module:function"`` (called with the argument list,
returning the exit status) that way, with its stdout and stderr in files or
captured, the environment given, and a time limit; where a forkserver cannot
be used (not Linux, a daemonic process such as a dask worker, a main script
without an ``if __name__ == "__main__"`` guard, which every child would run
again, or ``JWST_REFFILES_FORKSERVER=0``) the same function runs in
``python -c``.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["run_function", "forkserver_usable", "PRELOAD", "probe"]

#: What the forkserver imports (and freezes) before it forks the first child.
PRELOAD = ["jwst_reffiles.pipeline._warm"]

_CONTEXT = None

#: The cold start: this process's sys.path first, then the call.
_COLD = ("import json, sys; sys.path[:0] = [p for p in json.loads(sys.argv[1]) if p not in "
         "sys.path]; from jwst_reffiles.pipeline.launch import _call; "
         "sys.exit(_call(sys.argv[2], sys.argv[3:]))")


def forkserver_usable() -> bool:
    """Whether this process can fork its pipeline processes from a warm forkserver."""
    if os.environ.get("JWST_REFFILES_FORKSERVER", "1") == "0":
        return False
    if sys.platform != "linux" or "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    if multiprocessing.current_process().daemon:             # daemons may not have children
        return False
    return _main_is_safe()


def _main_is_safe() -> bool:
    """Whether a forked child may import this process's main script again, as
    multiprocessing does: a module run by name (``python -m``), an interactive
    session, or a script that keeps its work under ``if __name__ == "__main__"``
    (an unguarded script would run again in every child)."""
    main = sys.modules.get("__main__")
    if main is None or getattr(getattr(main, "__spec__", None), "name", None):
        return True
    path = getattr(main, "__file__", None)
    if not path:
        return True
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return False
    return "__name__" in text and "__main__" in text


def _refuse(exc) -> None:
    import logging
    logging.getLogger(__name__).warning("no forkserver for the pipeline processes (%s): "
                                        "each starts as a new interpreter", exc)
    os.environ["JWST_REFFILES_FORKSERVER"] = "0"


def _context():
    global _CONTEXT
    if _CONTEXT is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _CONTEXT = ctx
    return _CONTEXT


def _call(target: str, args: list[str]) -> int:
    module, name = target.split(":")
    code = getattr(importlib.import_module(module), name)(list(args))
    return int(code or 0)


def _child(target: str, args: list[str], out: str, err: str, env: dict) -> None:
    """In the forked process: the environment, the output files, then the call."""
    import signal
    import threading

    def die_with_parent():
        # the forkserver is this process's parent and outlives the process that asked
        # for it (this one holds its lifeline); that process's sentinel closes when it
        # dies (kill -9 included), and then this one must not go on writing products
        multiprocessing.parent_process().join()
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=die_with_parent, daemon=True).start()
    os.environ.clear()
    os.environ.update(env)
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY),
                            (1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        new = os.open(path, flags, 0o644)
        os.dup2(new, fd)
        os.close(new)
    sys.argv = [target, *args]
    code = 1
    try:
        code = _call(target, args)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    sys.exit(code)


def run_function(target: str, args=(), *, stdout=None, stderr=None, env: dict | None = None,
                 timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``target`` ("module:function", called with ``args``, returning the exit
    status) in a new process; ``stdout``/``stderr``: paths of the files its output
    goes to (None: captured into the result's ``stdout``/``stderr``).  Raises
    :class:`subprocess.TimeoutExpired` (the process killed) past ``timeout``."""
    args = [str(a) for a in args]
    env = dict(os.environ if env is None else env)
    with tempfile.TemporaryDirectory(prefix="jwst_reffiles-launch-") as tmp:
        out = str(stdout) if stdout is not None else os.path.join(tmp, "stdout")
        err = str(stderr) if stderr is not None else os.path.join(tmp, "stderr")
        proc = None
        if forkserver_usable():
            proc = _context().Process(target=_child, args=(target, args, out, err, env))
            try:
                proc.start()
            except (OSError, EOFError) as exc:    # no forkserver: started the plain way
                _refuse(exc)
                proc = None
        if proc is not None:
            try:
                proc.join(timeout)
            except BaseException:             # interrupted: the run does not go on alone
                proc.kill()
                proc.join()
                raise
            if proc.exitcode is None:
                proc.kill()
                proc.join()
                raise subprocess.TimeoutExpired([target, *args], timeout)
            code = proc.exitcode
        else:
            from ..execution.executors import die_with_parent
            with open(out, "w") as fo, open(err, "w") as fe:
                code = subprocess.run(           # with this process's sys.path, as forked
                    [sys.executable, "-c", _COLD, json.dumps(sys.path), target, *args],
                    stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=env,
                    preexec_fn=die_with_parent, timeout=timeout).returncode
        text = {}
        for key, path, given in (("stdout", out, stdout), ("stderr", err, stderr)):
            text[key] = None if given is not None else Path(path).read_text(errors="replace")
    return subprocess.CompletedProcess([target, *args], code, text["stdout"], text["stderr"])


def probe(argv) -> int:
    """What a pipeline process does before its first step -- open ``argv[0]`` as a
    data model, build a Detector1Pipeline -- for the start-up benchmark."""
    from jwst.pipeline import Detector1Pipeline
    from stdatamodels.jwst import datamodels as dm
    with dm.open(argv[0]):
        pass
    Detector1Pipeline()
    return 0

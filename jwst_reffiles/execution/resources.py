"""What a task cost its process: the peak resident memory while it ran.

Linux keeps a high-water mark of each process's resident set (``VmHWM`` in
``/proc/self/status``); writing ``5`` to ``/proc/self/clear_refs`` resets it to
the current resident set, so that a worker process reused across tasks reports
each task's own peak.  Elsewhere the peak since the process started is what
``getrusage`` knows (an upper bound).  Executors run one task at a time per
process (the dask workers have one thread each), so the mark is the task's.
"""

from __future__ import annotations

import resource
import sys

__all__ = ["reset_peak_memory", "peak_memory_gib"]


def reset_peak_memory() -> bool:
    """Start a new high-water mark for this process; False where that cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_memory_gib() -> float:
    """This process's peak resident memory [GiB] since the last reset (or its start)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20   # bytes on macOS

"""A process's resident memory, now and at its peak: Linux's /proc counts for this process alone;
elsewhere getrusage's peak stands in for both.

Not getrusage on Linux: its peak (ru_maxrss) carries over through exec, so a worker started by a
process that held 1 GB reports at least 1 GB. Standard library only: LightFM's worker runs in
another Python.
"""

from __future__ import annotations

import resource
import sys


def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def peak_rss() -> int:
    """The most resident memory this process has held, in bytes."""
    peak = _status("VmHWM")
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return peak


def current_rss() -> int:
    """The resident memory this process holds now, in bytes."""
    now = _status("VmRSS")
    return peak_rss() if now is None else now

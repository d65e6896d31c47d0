"""CPU time of processes, read from ``/proc/PID/stat`` (Linux only)."""

from __future__ import annotations

import os
from collections.abc import Iterable

# /proc reports CPU times in clock ticks (USER_HZ).
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """Return the user plus system CPU seconds of ``pid``, or None if it is gone.

    The resolution is one clock tick, 10 ms with the usual USER_HZ of 100.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may contain spaces, so count fields after its ")".
    fields = text.rpartition(")")[2].split()
    # fields[0] is field 3 (state), so utime (14) and stime (15) are 11 and 12.
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def total_cpu_seconds(pids: Iterable[int]) -> float:
    """Return the summed CPU seconds of ``pids``, counting exited ones as 0."""
    return sum(cpu_seconds(pid) or 0.0 for pid in pids)

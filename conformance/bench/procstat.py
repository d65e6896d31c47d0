"""CPU time of processes, read from ``/proc`` (Linux only)."""

from __future__ import annotations

import os
from collections.abc import Iterable

# /proc/PID/stat reports CPU times in clock ticks (USER_HZ).
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _schedstat_seconds(pid: int) -> float | None:
    # The first field of /proc/PID/task/TID/schedstat is the thread's time on
    # a CPU in nanoseconds. Threads that already exited are not counted.
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    total = 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as stat:
                total += int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def _stat_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            text = stat.read()
    except OSError:
        return None
    # The command name may contain spaces, so count fields after its ")".
    fields = text.rpartition(")")[2].split()
    # fields[0] is field 3 (state), so utime (14) and stime (15) are 11 and 12.
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def cpu_seconds(pid: int) -> float | None:
    """Return the CPU seconds that ``pid`` used so far, or None if it is gone.

    Sums the nanosecond counters of its threads in ``schedstat``. Where the
    kernel has no schedstat, falls back to utime plus stime from ``stat``,
    which counts in clock ticks (10 ms with the usual USER_HZ of 100).
    """
    precise = _schedstat_seconds(pid)
    if precise is not None and precise > 0:
        return precise
    return _stat_seconds(pid)


def total_cpu_seconds(pids: Iterable[int]) -> float:
    """Return the summed CPU seconds of ``pids``, counting exited ones as 0."""
    return sum(cpu_seconds(pid) or 0.0 for pid in pids)

"""A description of the machine and toolchains a benchmark ran on."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _command_output(*command: str) -> str | None:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def describe_machine() -> dict[str, Any]:
    """Return the CPU, core count, memory, load, Python and rustc versions."""
    load = os.getloadavg()
    return {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "load_average_at_start": [round(value, 2) for value in load],
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "rustc": _command_output("rustc", "--version"),
        "kernel": platform.release(),
    }


def load_average() -> list[float]:
    """Return the 1, 5 and 15 minute load averages, rounded."""
    return [round(value, 2) for value in os.getloadavg()]

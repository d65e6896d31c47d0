"""Timed loops and rust_peer tool calls shared by the benchmark sections."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def run_timed(seconds: float, one_pass: Callable[[], int]) -> dict[str, Any]:
    """Repeat ``one_pass`` until ``seconds`` of wall time passed.

    ``one_pass`` returns how many items it handled. The result has the item
    count, the CPU and wall seconds, and items per CPU second. CPU time is
    this process's (``time.process_time``), so other load on the machine
    changes it less than the wall time.
    """
    items = 0
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    while True:
        items += one_pass()
        if time.perf_counter() - wall_start >= seconds:
            break
    cpu = time.process_time() - cpu_start
    wall = time.perf_counter() - wall_start
    return {
        "items": items,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "per_cpu_second": items / cpu if cpu > 0 else 0.0,
    }


def run_rust_tool(
    binary: Path, arguments: Sequence[str], timeout: float
) -> dict[str, Any]:
    """Run ``rust_peer tool ARGUMENTS`` and return the JSON object it prints.

    Raises RuntimeError with its stderr when it fails or prints no JSON.
    """
    command = [str(binary), "tool", *arguments]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(
            f"{' '.join(command)} timed out after {timeout:g} s"
        ) from exc
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed with status {result.returncode}:"
            f" {result.stderr.strip()[-2000:]}"
        )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"{' '.join(command)} printed no result")
    value: dict[str, Any] = json.loads(lines[-1])
    return value

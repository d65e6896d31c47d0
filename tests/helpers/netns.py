"""Commands in another process's network namespace, for the Docker fault tests."""

from __future__ import annotations

import subprocess


def in_netns(pid: int, *command: str) -> str:
    """Return the output of ``command`` run in the network namespace of ``pid``."""
    completed = subprocess.run(
        ["nsenter", "-t", str(pid), "-n", *command],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return completed.stdout

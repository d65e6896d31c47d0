"""Node processes: start, signal and reap them.

Each node runs in its own session (process group), so SIGKILL reaches a
wrapper script and the program it started, and Ctrl-C in the terminal goes
to the harness alone, which then ends the nodes itself.

A node paused with SIGSTOP keeps SIGTERM pending and cannot read its closed
control connection, so ``terminate`` sends SIGCONT first. SIGKILL ends
a stopped process as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conformance.errors import NodeStartError

# Every node process started and not yet reaped, by pid. kill_all_sync uses
# it as a last resort when the event loop is gone.
_LIVE: dict[int, NodeProcess] = {}


class NodeProcess:
    """One operating-system process of a node; stdout and stderr go to ``log_path``."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        command: Sequence[str],
        log_path: Path,
    ):
        self._process = process
        self.command = tuple(command)
        self.log_path = log_path
        self.pid = process.pid
        self.killed = False
        self.paused = False

    @classmethod
    async def spawn(
        cls,
        command: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> NodeProcess:
        """Start ``command``; raise NodeStartError if the program cannot be run."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **(env or {})}
        with log_path.open("ab") as log:
            try:
                process = await asyncio.create_subprocess_exec(
                    *command,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=full_env,
                    start_new_session=True,
                )
            except OSError as error:
                raise NodeStartError(
                    f"cannot run {' '.join(command)}: {error.strerror or error}"
                ) from None
        node = cls(process, command, log_path)
        _LIVE[node.pid] = node
        return node

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def running(self) -> bool:
        return self._process.returncode is None

    def _signal_group(self, signum: signal.Signals) -> None:
        if self._process.returncode is not None:
            return
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError:
            # Fall back to the child alone when its group cannot be signalled.
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signum)

    async def pause(self) -> None:
        """Send SIGSTOP to the node's process group, unless it has exited."""
        if self.running():
            self._signal_group(signal.SIGSTOP)
            self.paused = True

    async def resume(self) -> None:
        """Send SIGCONT to the node's process group if it is paused."""
        self._continue()

    def _continue(self) -> None:
        if self.paused:
            self._signal_group(signal.SIGCONT)
            self.paused = False

    async def kill(self) -> None:
        """Send SIGKILL to the node's process group and reap the process."""
        self.killed = True
        self._signal_group(signal.SIGKILL)
        self.paused = False
        await self.wait()

    async def wait(self, timeout: float | None = None) -> int | None:
        """Wait for exit; return the status, or None if ``timeout`` passed first."""
        try:
            code = await asyncio.wait_for(self._process.wait(), timeout)
        except TimeoutError:
            return None
        _LIVE.pop(self.pid, None)
        return code

    async def terminate(self, grace: float) -> int | None:
        """Send SIGTERM, and SIGKILL if the node outlives ``grace`` seconds.

        A paused node is resumed first, because it cannot act on SIGTERM.
        """
        self._continue()
        self._signal_group(signal.SIGTERM)
        code = await self.wait(grace)
        if code is None:
            await self.kill()
            code = self.returncode
        return code

    def details(self) -> dict[str, Any]:
        return {}

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the node's log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def kill_all_sync() -> None:
    """Send SIGKILL to every node process that was started and not reaped."""
    for node in list(_LIVE.values()):
        if node.returncode is not None:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(node.pid, signal.SIGKILL)
    _LIVE.clear()

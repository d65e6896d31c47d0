"""The harness side of a node's TCP control connection.

In the process runtime each node process gets its own ControlListener on
127.0.0.1 with an OS-chosen port, so the harness can tell which process a
connection belongs to without trusting the ``pid`` in the ready line (a
wrapper script or a container would report a different one). In the docker
runtime the node listens and the harness connects (see docker_runtime.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from conformance.errors import (
    ClosedBeforeReady,
    CommandError,
    CommandTimeout,
    ContractError,
    NodeExitedError,
)

logger = logging.getLogger(__name__)

# Maximum length of one control line. A members reply for a 64-node cluster
# is under 10 KB by estimate (about 100 bytes per member), so 16 MiB leaves
# ample room.
LINE_LIMIT = 16 * 1024 * 1024


class ControlListener:
    """A TCP listener that accepts exactly one control connection."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._accepted: asyncio.Queue[
            tuple[asyncio.StreamReader, asyncio.StreamWriter]
        ] = asyncio.Queue()
        self._taken = False
        self.address = ""

    async def open(self) -> str:
        """Listen on 127.0.0.1 with an OS-chosen port and return ``IP:PORT``."""
        self._server = await asyncio.start_server(
            self._on_connect, host="127.0.0.1", port=0, limit=LINE_LIMIT
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = f"{host}:{port}"
        return self.address

    async def _on_connect(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._taken:
            logger.warning("closing an extra control connection on %s", self.address)
            writer.close()
            return
        self._taken = True
        await self._accepted.put((reader, writer))

    async def accept(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Wait for the node to connect; the caller applies the deadline."""
        return await self._accepted.get()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None


class ControlConnection:
    """One node's control connection: the event stream and request/reply.

    ``on_event`` gets every event line as a parsed JSON object. Lines that
    are not valid JSON objects, replies to unknown requests and lines of an
    unknown type go to ``protocol_errors``. The harness reports them as
    contract violations.
    """

    def __init__(
        self,
        name: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_event: Callable[[dict[str, Any], float], None],
    ) -> None:
        self.name = name
        self._reader = reader
        self._writer = writer
        self._on_event = on_event
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_req = 1
        self._read_task: asyncio.Task[None] | None = None
        self.protocol_errors: list[str] = []
        self.closed = asyncio.Event()

    async def read_ready(self) -> dict[str, Any]:
        """Read the first line; the caller applies the deadline.

        Raises ClosedBeforeReady when the connection ends first.
        """
        try:
            line = await self._reader.readline()
        except ConnectionError as error:
            raise ClosedBeforeReady(
                f"control connection failed before the ready line: {error}"
            ) from None
        if not line:
            raise ClosedBeforeReady("control connection closed before the ready line")
        return self._decode(line)

    def start(self) -> None:
        """Start reading event and reply lines in the background."""
        self._read_task = asyncio.create_task(
            self._read_loop(), name=f"control-{self.name}"
        )

    def _decode(self, line: bytes) -> dict[str, Any]:
        try:
            obj = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ContractError(f"invalid JSON line {line[:200]!r}: {error}") from None
        if not isinstance(obj, dict):
            raise ContractError(f"line is not a JSON object: {line[:200]!r}")
        return obj

    async def _read_loop(self) -> None:
        try:
            while True:
                try:
                    line = await self._reader.readline()
                except (ConnectionError, ValueError) as error:
                    # ValueError: a line longer than LINE_LIMIT.
                    self.protocol_errors.append(f"control read failed: {error}")
                    break
                if not line:
                    break
                received_at = time.time()
                try:
                    obj = self._decode(line)
                except ContractError as error:
                    self.protocol_errors.append(str(error))
                    continue
                self._dispatch(obj, received_at)
        finally:
            self.closed.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(
                        NodeExitedError(f"{self.name}: control connection closed")
                    )
            self._pending.clear()

    def _dispatch(self, obj: dict[str, Any], received_at: float) -> None:
        kind = obj.get("type")
        if kind == "event":
            try:
                self._on_event(obj, received_at)
            except ContractError as error:
                self.protocol_errors.append(f"invalid event line: {error}")
        elif kind == "reply":
            req = obj.get("req")
            future = self._pending.pop(req, None) if isinstance(req, int) else None
            if future is None:
                self.protocol_errors.append(
                    f"reply to an unknown request: {json.dumps(obj)[:200]}"
                )
            elif not future.done():
                future.set_result(obj)
        else:
            self.protocol_errors.append(
                f"line of unknown type {kind!r}: {json.dumps(obj)[:200]}"
            )

    async def request(
        self, cmd: str, timeout: float, **arguments: Any
    ) -> dict[str, Any]:
        """Send a command and return its reply.

        Raises CommandTimeout after ``timeout`` seconds, CommandError when
        the reply has ``ok: false`` and NodeExitedError when the connection
        closes first.
        """
        if self.closed.is_set():
            raise NodeExitedError(f"{self.name}: control connection is closed")
        req = self._next_req
        self._next_req += 1
        future: asyncio.Future[dict[str, Any]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[req] = future
        line = json.dumps({"cmd": cmd, "req": req, **arguments}) + "\n"
        try:
            self._writer.write(line.encode())
            await self._writer.drain()
        except ConnectionError as error:
            self._pending.pop(req, None)
            raise NodeExitedError(
                f"{self.name}: sending {cmd!r} failed: {error}"
            ) from None
        try:
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self._pending.pop(req, None)
            raise CommandTimeout(
                f"{self.name}: no reply to {cmd!r} (req {req}) within {timeout:.1f} s"
            ) from None
        if reply.get("ok") is not True:
            raise CommandError(
                f"{self.name}: {cmd!r} failed: {reply.get('error', reply)}"
            )
        return reply

    async def close(self) -> None:
        """Close the connection and stop the reader task."""
        with contextlib.suppress(Exception):
            self._writer.close()
        if self._read_task is not None:
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._read_task
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

"""A cluster of nodes in one runtime and the merged timeline of their events.

The runtime (runtime.py) decides where the nodes run: local processes on
127.0.0.1 by default, or containers (docker_runtime.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.config import SwimConfig, config_mismatches, format_field_value
from conformance.contract import (
    Event,
    Identity,
    MembersReply,
    ReadyLine,
    StatsReply,
    parse_event,
)
from conformance.control import ControlConnection
from conformance.errors import (
    ClosedBeforeReady,
    ContractError,
    HarnessError,
    NodeExitedError,
    NodeStartError,
)
from conformance.impls import Implementation
from conformance.runtime import Launch, NodeHandle, ProcessRuntime, Runtime

logger = logging.getLogger(__name__)

# Seconds between attempts to open a control connection that the runtime
# lets the harness retry (see Launch.reconnect).
RECONNECT_DELAY = 0.1


@dataclass(frozen=True)
class Timing:
    """Deadlines for process handling, in seconds.

    These do not depend on the SWIM config: ``startup`` covers interpreter
    start and imports (and a container's start), ``reply`` a local command
    round trip on a loaded machine, ``stop_grace`` the time a node gets to
    exit before SIGKILL.
    """

    startup: float = 30.0
    reply: float = 10.0
    stop_grace: float = 5.0


@dataclass
class Node:
    """One generation of a named node; a restart makes a new Node.

    ``process`` is the runtime's handle: a local process or a container.
    """

    name: str
    generation: int
    implementation: Implementation
    process: NodeHandle
    connection: ControlConnection
    ready: ReadyLine
    identity: Identity
    events: list[Event] = field(default_factory=list)
    exit_expected: bool = False
    exit_status: int | None = None
    disconnected: bool = False

    @property
    def bind(self) -> str:
        return self.ready.bind

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def running(self) -> bool:
        return self.process.running() and not self.exit_expected

    def describe(self) -> dict[str, Any]:
        return {
            "node": self.name,
            "generation": self.generation,
            "impl": self.implementation.name,
            "version": self.ready.version,
            "identity": self.identity.to_json(),
            "bind": self.bind,
            "pid": self.process.pid,
            "command": list(self.process.command),
            "log": str(self.log_path),
            "killed": self.process.killed,
            "exit_status": self.exit_status,
            **self.process.details(),
        }


def node_id_hex(name: str) -> str:
    """Return the hex identity id the harness gives node ``name``: its UTF-8 bytes."""
    return name.encode().hex()


class Cluster:
    """The nodes of one scenario run, their control connections and events.

    ``nodes`` maps each name to its latest generation; ``history`` keeps
    every generation in start order. ``timeline`` contains every event of every
    node in arrival order; ``merged_timeline()`` sorts it by the nodes'
    timestamps.
    """

    def __init__(
        self,
        run_dir: Path,
        preset: str,
        overrides: Sequence[tuple[str, Any]],
        config: SwimConfig,
        timing: Timing,
        seed: str,
        runtime: Runtime | None = None,
    ) -> None:
        self.runtime: Runtime = runtime or ProcessRuntime()
        self._runtime_open = False
        self.run_dir = run_dir
        self.preset = preset
        self.overrides = tuple(overrides)
        self.config = config
        self.timing = timing
        self.seed = seed
        self.nodes: dict[str, Node] = {}
        self.history: list[Node] = []
        self.timeline: list[Event] = []
        self.impl_by_addr: dict[str, Implementation] = {}
        self.problems: list[str] = []

    def _arguments(
        self,
        *,
        bind: str,
        node_id: str,
        renewal: int,
        seeds: Sequence[str],
        rng_seed: int,
    ) -> list[str]:
        # The contract flags; the runtime adds the program and --control.
        command = [
            "--bind",
            bind,
            "--id",
            node_id,
            "--renewal",
            str(renewal),
            "--config",
            self.preset,
        ]
        for name, value in self.overrides:
            command += ["--set", f"{name}={format_field_value(value)}"]
        for seed in seeds:
            command += ["--seed", seed]
        command += ["--rng-seed", str(rng_seed)]
        return command

    def _rng_seed(self, name: str, generation: int) -> int:
        return random.Random(f"{self.seed}/{name}/{generation}").getrandbits(63)

    async def start_node(
        self,
        name: str,
        implementation: Implementation,
        *,
        seeds: Sequence[str] = (),
        bind: str | None = None,
        renewal: int = 0,
    ) -> Node:
        """Start a node and wait for its ready line.

        ``bind`` defaults to the runtime's address for ``name``. Raises
        NodeStartError, naming the command and the end of its log, when the
        node cannot run, exits early, sends no ready line within
        ``timing.startup`` or sends one that breaks the contract.
        """
        if not self._runtime_open:
            await self.runtime.open()
            self._runtime_open = True
        generation = sum(1 for node in self.history if node.name == name)
        node_id = node_id_hex(name)
        bind = bind or self.runtime.bind_address(name)
        advertise = await self.runtime.advertise_address(name)
        arguments = self._arguments(
            bind=bind,
            node_id=node_id,
            renewal=renewal,
            seeds=seeds,
            rng_seed=self._rng_seed(name, generation),
        )
        if advertise is not None:
            arguments += ["--advertise", advertise]
        log_path = self.run_dir / f"{name}.{generation}.log"
        try:
            launch = await self.runtime.launch(
                name, generation, implementation, arguments, log_path
            )
        except NodeStartError as error:
            raise NodeStartError(f"{name} ({implementation.name}): {error}") from None
        process = launch.handle
        try:
            node = await self._handshake(name, generation, implementation, launch)
        except BaseException:
            await process.kill()
            raise
        finally:
            await launch.release()
        try:
            self._check_ready(node, node_id, renewal, bind, advertise)
        except NodeStartError:
            await node.connection.close()
            await process.kill()
            raise
        self.runtime.node_started(name, node.bind)
        self.nodes[name] = node
        self.history.append(node)
        self.impl_by_addr[node.bind] = implementation
        self.impl_by_addr[node.identity.addr] = implementation
        node.connection.start()
        logger.info(
            "started %s (%s) at %s pid %d",
            name,
            implementation.name,
            node.bind,
            process.pid,
        )
        return node

    def _start_failure(
        self, name: str, implementation: Implementation, process: NodeHandle, why: str
    ) -> NodeStartError:
        tail = process.log_tail()
        return NodeStartError(
            f"{name} ({implementation.name}) {why}\n"
            f"  command: {shlex.join(process.command)}\n"
            f"  log: {process.log_path}\n"
            + (f"  end of log:\n{_indent(tail)}" if tail else "  the log is empty")
        )

    async def _handshake(
        self,
        name: str,
        generation: int,
        implementation: Implementation,
        launch: Launch,
    ) -> Node:
        process = launch.handle
        deadline = time.monotonic() + self.timing.startup
        exited = asyncio.ensure_future(process.wait())
        try:
            while True:
                connection = await self._open_connection(
                    name, generation, implementation, launch, exited, deadline
                )
                first = asyncio.ensure_future(connection.read_ready())
                try:
                    raw = await self._race(first, exited, deadline)
                except ClosedBeforeReady as error:
                    await connection.close()
                    # A connection through Docker's port proxy is accepted
                    # before the node listens, and then closed at once.
                    if launch.reconnect and not exited.done():
                        await asyncio.sleep(RECONNECT_DELAY)
                        continue
                    raise self._start_failure(
                        name,
                        implementation,
                        process,
                        f"sent an invalid ready line: {error}",
                    ) from None
                except ContractError as error:
                    await connection.close()
                    raise self._start_failure(
                        name,
                        implementation,
                        process,
                        f"sent an invalid ready line: {error}",
                    ) from None
                break
            if raw is None:
                await connection.close()
                raise self._handshake_failure(
                    name, implementation, process, exited, "send its ready line"
                )
            try:
                ready = ReadyLine.from_json(raw)
            except ContractError as error:
                await connection.close()
                raise self._start_failure(
                    name,
                    implementation,
                    process,
                    f"sent an invalid ready line: {error}",
                ) from None
        finally:
            exited.cancel()
        return Node(
            name=name,
            generation=generation,
            implementation=implementation,
            process=process,
            connection=connection,
            ready=ready,
            identity=ready.identity,
        )

    async def _open_connection(
        self,
        name: str,
        generation: int,
        implementation: Implementation,
        launch: Launch,
        exited: asyncio.Future[int | None],
        deadline: float,
    ) -> ControlConnection:
        accepted = asyncio.ensure_future(launch.connect())
        streams = await self._race(accepted, exited, deadline)
        if streams is None:
            raise self._handshake_failure(
                name, implementation, launch.handle, exited, "connect"
            )
        reader, writer = streams
        return ControlConnection(
            name,
            reader,
            writer,
            lambda obj, at: self._record_event(name, generation, obj, at),
        )

    def _handshake_failure(
        self,
        name: str,
        implementation: Implementation,
        process: NodeHandle,
        exited: asyncio.Future[int | None],
        what: str,
    ) -> NodeStartError:
        if exited.done():
            why = f"exited with status {process.returncode} before it could {what}"
        else:
            why = f"did not {what} within {self.timing.startup:.0f} s"
        return self._start_failure(name, implementation, process, why)

    @staticmethod
    async def _race(
        task: asyncio.Future[Any], exited: asyncio.Future[int | None], deadline: float
    ) -> Any:
        # Return the task's result, or None when the process exits or the
        # deadline passes first. A finished task wins over a simultaneous exit.
        timeout = max(0.0, deadline - time.monotonic())
        await asyncio.wait(
            {task, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None

    def _check_ready(
        self,
        node: Node,
        node_id: str,
        renewal: int,
        bind: str,
        advertise: str | None,
    ) -> None:
        problems = []
        identity = node.ready.identity
        if identity.id != node_id:
            problems.append(
                f"identity id is {identity.id!r}, expected {node_id!r} from --id"
            )
        if identity.renewal != renewal:
            problems.append(
                f"identity renewal is {identity.renewal}, "
                f"expected {renewal} from --renewal"
            )
        if not bind.endswith(":0") and node.ready.bind != bind:
            problems.append(f"bind is {node.ready.bind}, expected {bind} from --bind")
        if advertise is not None:
            if identity.addr != advertise:
                problems.append(
                    f"identity addr {identity.addr} differs from {advertise} "
                    "from --advertise"
                )
        elif identity.addr != node.ready.bind:
            problems.append(
                f"identity addr {identity.addr} differs from bind {node.ready.bind}"
            )
        problems += [
            f"config: {problem}"
            for problem in config_mismatches(self.config, node.ready.config)
        ]
        if problems:
            raise self._start_failure(
                node.name,
                node.implementation,
                node.process,
                "sent a ready line that does not match its command line:\n"
                + "\n".join(f"  - {problem}" for problem in problems),
            )

    def _record_event(
        self, name: str, generation: int, obj: dict[str, Any], received_at: float
    ) -> None:
        # The reader task starts after the node is registered, so the lookup succeeds.
        event = parse_event(obj, name, generation, received_at)
        self.timeline.append(event)
        node = self.nodes.get(name)
        if node is not None and node.generation == generation:
            node.events.append(event)
            if event.kind == "rejoin":
                node.identity = event.identity_field("identity")

    def merged_timeline(self) -> list[Event]:
        return sorted(self.timeline, key=lambda event: (event.ts, event.node))

    def events_of(self, name: str, since: float = 0.0) -> list[Event]:
        """Return the events of every generation of ``name`` with ``ts >= since``."""
        return [
            event for event in self.timeline if event.node == name and event.ts >= since
        ]

    def running(self) -> list[Node]:
        return [node for node in self.nodes.values() if node.running()]

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise HarnessError(f"node {name} was never started") from None

    async def request(self, name: str, cmd: str, **arguments: Any) -> dict[str, Any]:
        """Send a command and return its reply.

        Raises HarnessError at once for a paused node, which could not reply
        before it is resumed.
        """
        node = self.node(name)
        if node.process.paused:
            raise HarnessError(
                f"cannot send {cmd!r} to {name}: it is paused; resume it first"
            )
        return await node.connection.request(cmd, self.timing.reply, **arguments)

    async def members(self, name: str) -> MembersReply:
        reply = await self.request(name, "members")
        try:
            members = MembersReply.from_json(reply)
        except ContractError as error:
            raise ContractError(f"{name}: invalid members reply: {error}") from None
        self.nodes[name].identity = members.identity
        return members

    async def stats(self, name: str) -> StatsReply:
        reply = await self.request(name, "stats")
        try:
            return StatsReply.from_json(reply)
        except ContractError as error:
            raise ContractError(f"{name}: invalid stats reply: {error}") from None

    def check_health(self) -> None:
        """Raise if a node exited on its own or broke the contract on its connection."""
        for node in self.nodes.values():
            if node.exit_expected:
                continue
            if not node.process.running():
                raise NodeExitedError(
                    f"{node.name} ({node.implementation.name}) exited unexpectedly "
                    f"with status {node.process.returncode}; log: {node.log_path}\n"
                    f"{_indent(node.process.log_tail())}"
                )
            if node.connection.protocol_errors:
                raise ContractError(
                    f"{node.name} ({node.implementation.name}) broke the control "
                    "contract: " + "; ".join(node.connection.protocol_errors[:5])
                )
            if node.connection.closed.is_set():
                raise NodeExitedError(f"{node.name} closed its control connection")

    async def pause(self, name: str) -> float:
        """Freeze a node (SIGSTOP, or a container's freezer) and return the
        wall-clock time just before."""
        node = self.node(name)
        paused_at = time.time()
        await node.process.pause()
        logger.info("paused %s pid %d", name, node.process.pid)
        return paused_at

    async def resume(self, name: str) -> float:
        """Continue a paused node and return the wall-clock time just before."""
        node = self.node(name)
        resumed_at = time.time()
        await node.process.resume()
        logger.info("resumed %s pid %d", name, node.process.pid)
        return resumed_at

    def paused(self) -> list[Node]:
        return [node for node in self.nodes.values() if node.process.paused]

    async def resume_all(self) -> None:
        """Continue every paused node."""
        for node in self.paused():
            await self.resume(node.name)

    async def disconnect(self, name: str) -> float:
        """Cut a node off the nodes' network and return the wall-clock time
        just before. Its control connection stays up."""
        node = self.node(name)
        cut_at = time.time()
        await self.runtime.disconnect(name)
        node.disconnected = True
        logger.info("disconnected %s", name)
        return cut_at

    async def connect(self, name: str) -> float:
        """Attach a disconnected node again and return the wall-clock time
        just before."""
        node = self.node(name)
        connected_at = time.time()
        await self.runtime.connect(name)
        node.disconnected = False
        logger.info("connected %s", name)
        return connected_at

    async def kill(self, name: str) -> float:
        """SIGKILL a node and return the wall-clock time of the signal."""
        node = self.node(name)
        node.exit_expected = True
        killed_at = time.time()
        await node.process.kill()
        node.exit_status = node.process.returncode
        await node.connection.close()
        logger.info("killed %s pid %d", name, node.process.pid)
        return killed_at

    async def stop(self, name: str) -> float:
        """Send ``stop``, wait for the exit, and return the wall-clock time of
        the command. A paused node is resumed first, so that it can reply."""
        node = self.node(name)
        node.exit_expected = True
        await node.process.resume()
        stopped_at = time.time()
        await node.connection.request("stop", self.timing.reply)
        code = await node.process.wait(self.timing.stop_grace)
        if code is None:
            self.problems.append(
                f"{name} did not exit within {self.timing.stop_grace} s of stop"
            )
            code = await node.process.terminate(self.timing.stop_grace)
        elif code != 0:
            self.problems.append(
                f"{name} exited with status {code} after stop, expected 0"
            )
        node.exit_status = code
        await node.connection.close()
        return stopped_at

    async def restart(self, name: str, *, renewed: bool, seeds: Sequence[str]) -> Node:
        """Start a stopped node again on its old address, with the same id.

        The renewal is the one the node last had, plus one if ``renewed``.
        """
        old = self.node(name)
        if old.running():
            raise HarnessError(f"cannot restart {name}: it is still running")
        renewal = old.identity.renewal + (1 if renewed else 0)
        return await self.start_node(
            name, old.implementation, seeds=seeds, bind=old.bind, renewal=renewal
        )

    async def close(self) -> None:
        """End every node: close its connection, then SIGTERM, then SIGKILL.

        A paused node is resumed first, so that it can read the closed
        connection and exit. Then the runtime removes what it created.
        """
        try:
            outcomes = await asyncio.gather(
                *(self._close_node(node) for node in self.history),
                return_exceptions=True,
            )
            for node, outcome in zip(self.history, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    logger.warning("could not end %s: %s", node.name, outcome)
        finally:
            await self.runtime.close()

    async def _close_node(self, node: Node) -> None:
        if node.process.running():
            node.exit_expected = True
            await node.process.resume()
            await node.connection.close()
            code = await node.process.wait(self.timing.stop_grace)
            if code is None:
                code = await node.process.terminate(self.timing.stop_grace)
            node.exit_status = code
        else:
            await node.connection.close()
            if node.exit_status is None:
                node.exit_status = node.process.returncode


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())

"""Runtimes, which decide where nodes run: the interface, and the process runtime.

A runtime starts the nodes of one scenario run and injects the faults that
act on a node from outside. The cluster hands it each node's contract flags;
the runtime adds the control flag it needs, starts the node and returns a
``Launch``: a ``NodeHandle`` to signal the node with and a coroutine that
opens the control connection.

``process`` (this module) runs each node as a local process on 127.0.0.1
and listens for its control connection. Each node advertises a socket of
the runtime's FaultRelay (faults.py), which forwards its datagrams and
applies the scenario's link faults. ``docker`` (docker_runtime.py) runs
each node in a container and connects to it. A ``RuntimeKind`` stands for a
runtime across a whole suite. It names the scenario steps the runtime cannot
run, so that the harness reports those scenarios as unavailable instead of
running them.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from conformance.control import ControlListener
from conformance.datagrams import DatagramSender
from conformance.errors import HarnessError, NodeStartError
from conformance.faults import FaultRelay, Link, LinkFault
from conformance.impls import Implementation
from conformance.process import NodeProcess

StreamPair = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class FaultUnavailable(HarnessError):
    """The runtime cannot inject this fault."""


class NodeHandle(Protocol):
    """A running node as the cluster controls it: a process or a container."""

    command: tuple[str, ...]
    log_path: Path
    pid: int
    killed: bool
    paused: bool

    @property
    def returncode(self) -> int | None: ...

    def running(self) -> bool: ...

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...

    async def kill(self) -> None: ...

    async def wait(self, timeout: float | None = None) -> int | None: ...

    async def terminate(self, grace: float) -> int | None: ...

    def log_tail(self, lines: int = 20) -> str: ...

    def details(self) -> dict[str, Any]:
        """Return runtime-specific fields for the node's entry in the report."""
        ...


@dataclass(frozen=True)
class Launch:
    """A started node: its handle and how to reach its control channel.

    ``connect`` returns the control connection's streams; the caller applies
    the start-up deadline. With ``reconnect``, a connection that closes
    before the ready line is retried with a new ``connect`` until the
    deadline. ``release`` frees what ``connect`` needed, such as a listener;
    the cluster calls it once the handshake is over.
    """

    handle: NodeHandle
    connect: Callable[[], Awaitable[StreamPair]]
    release: Callable[[], Awaitable[None]]
    reconnect: bool = False


class Runtime(Protocol):
    """Starts the nodes of one scenario run and injects faults into them."""

    name: str

    async def open(self) -> None:
        """Create what the nodes need, such as networks, before the first launch."""
        ...

    def bind_address(self, name: str) -> str:
        """Return the ``--bind`` value for a new node ``name``."""
        ...

    async def advertise_address(self, name: str) -> str | None:
        """Return the ``--advertise`` value for node ``name``, or None for its bind."""
        ...

    def node_started(self, name: str, bind: str) -> None:
        """Record the address that a started node bound, from its ready line."""
        ...

    async def set_links(self, faults: Mapping[Link, LinkFault]) -> None:
        """Make ``faults`` the fault of every listed link, and clear every other.

        Raises FaultUnavailable when the runtime cannot apply one of them.
        """
        ...

    def traffic(self) -> dict[str, dict[str, int]] | None:
        """Return datagrams and bytes sent per node, or None if not counted."""
        ...

    async def launch(
        self,
        name: str,
        generation: int,
        implementation: Implementation,
        arguments: Sequence[str],
        log_path: Path,
    ) -> Launch:
        """Start a node with the contract flags ``arguments``.

        Raises NodeStartError when the node cannot be started at all.
        """
        ...

    async def disconnect(self, name: str) -> None:
        """Cut node ``name`` off the network that the nodes share."""
        ...

    async def connect(self, name: str) -> None:
        """Attach a node cut off by ``disconnect`` again, at its old address."""
        ...

    def datagram_sender(self) -> DatagramSender:
        """Return a socket that can send hand-made datagrams to the nodes."""
        ...

    async def close(self) -> None:
        """Remove everything the runtime created, after every node has ended."""
        ...


class RuntimeKind(Protocol):
    """A runtime across a suite: its name, its limits and a factory."""

    name: str

    @property
    def unavailable_steps(self) -> Mapping[str, str]:
        """Map each scenario step kind this runtime cannot run to the reason."""
        ...

    def fault_unavailable(self, fault: LinkFault) -> str | None:
        """Return why this runtime cannot apply ``fault`` to a link, or None."""
        ...

    def new_runtime(self, run_name: str) -> Runtime:
        """Return the runtime for one scenario run, named ``SCENARIO-MIX``."""
        ...


class ProcessRuntime:
    """Nodes as local processes on 127.0.0.1, each connecting to its own listener.

    ``seed`` seeds the relay's random choices (which datagrams it drops,
    duplicates or delays).
    """

    name = "process"

    def __init__(self, seed: str = "") -> None:
        self.relay = FaultRelay(random.Random(f"relay/{seed}"))

    async def open(self) -> None:
        return None

    def bind_address(self, name: str) -> str:
        # The relay must know the port before the node sends its first
        # announce, so the harness picks it instead of the node.
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", 0))
            bind = f"127.0.0.1:{probe.getsockname()[1]}"
        finally:
            probe.close()
        self.relay.set_target(name, bind)
        return bind

    async def advertise_address(self, name: str) -> str | None:
        return await self.relay.add_node(name)

    def node_started(self, name: str, bind: str) -> None:
        self.relay.set_target(name, bind)

    async def set_links(self, faults: Mapping[Link, LinkFault]) -> None:
        self.relay.set_faults(faults)

    def traffic(self) -> dict[str, dict[str, int]] | None:
        return self.relay.counters_json()

    async def launch(
        self,
        name: str,
        generation: int,
        implementation: Implementation,
        arguments: Sequence[str],
        log_path: Path,
    ) -> Launch:
        # One listener per process, so a connection belongs to the process
        # whose command line names the port.
        listener = ControlListener()
        control = await listener.open()
        command = [*implementation.command, *arguments, "--control", control]
        try:
            process = await NodeProcess.spawn(
                command, log_path, dict(implementation.env)
            )
        except NodeStartError:
            await listener.close()
            raise
        return Launch(process, listener.accept, listener.close)

    async def disconnect(self, name: str) -> None:
        # The relay drops every datagram from and to the node.
        self.relay.isolate(name)

    async def connect(self, name: str) -> None:
        self.relay.reattach(name)

    def datagram_sender(self) -> DatagramSender:
        return DatagramSender()

    async def close(self) -> None:
        self.relay.close()


class ProcessRuntimeKind:
    """The default runtime: every node a local process."""

    name = "process"

    @property
    def unavailable_steps(self) -> Mapping[str, str]:
        return {}

    def fault_unavailable(self, fault: LinkFault) -> str | None:
        return None

    def new_runtime(self, run_name: str) -> Runtime:
        return ProcessRuntime(run_name)


PROCESS_RUNTIME = ProcessRuntimeKind()

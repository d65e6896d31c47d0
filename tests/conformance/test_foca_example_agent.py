"""A mixed cluster of swim_py nodes and foca's unmodified example agent.

Three in-process ``Swim`` nodes and two ``foca_insecure_udp_agent``
processes share 127.0.0.1. Both sides use ``Config.new_lan(10)``, bincode
with the agent's ``ID { addr, bump }`` identity, and a bump of the Unix time
in seconds at start. The agent reports its view only through its members
file, which it rewrites on every MemberUp and MemberDown.

The agent is built from the foca 1.0.0 crate source in cargo's registry.
Without cargo or that source the tests skip, except under ``CI=true``, where
they fail.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conformance.errors import BuildError
from conformance.foca_example import (
    ExampleAgent,
    ExampleAgentBroadcastHandler,
    encode_agent_broadcast,
    ensure_foca_example,
)
from swim_py import AsyncIoUdpTransport, Config, Identity, Swim
from swim_py.codec import BincodeCodec
from swim_py.identity import Address
from swim_py.payload import Member, State

pytestmark = [pytest.mark.integration, pytest.mark.mixed]

# The example agent hard-codes Config::new_lan(10).
CONFIG = Config.new_lan(10)
CODEC = BincodeCodec("addr-bump")
SWIM_NODES = 3
AGENTS = 2
CLUSTER_SIZE = SWIM_NODES + AGENTS
# Extra probe periods on every deadline, for a loaded machine.
SLACK_PERIODS = 10
POLL_INTERVAL = CONFIG.probe_period / 10
# Errors in an agent's log that would mean the two sides disagree on bytes.
WIRE_ERRORS = ("Decode", "MalformedPacket", "CustomBroadcast", "DataFromOurselves")

# Joining takes one Announce and Feed round trip, and each member learns the
# joiner from updates piggybacked on probes and gossip. Every member has
# heard of everyone within a few probe periods.
CONVERGENCE_TIMEOUT = CONFIG.probe_period * (CLUSTER_SIZE + SLACK_PERIODS)
# Each live member probes every other within two shuffled rounds of
# CLUSTER_SIZE - 1 probes. The first prober that gets no reply suspects the
# crashed member after probe_rtt and the rest of the period, declares it Down
# suspect_to_down_after later, and gossip spreads the Down update.
DETECTION_TIMEOUT = (
    CONFIG.probe_period * (2 * (CLUSTER_SIZE - 1) + 1 + SLACK_PERIODS)
    + CONFIG.probe_rtt
    + CONFIG.suspect_to_down_after
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def agent_binary() -> Path:
    """Build foca's example agent if needed; skip when that fails, except in CI."""
    try:
        return ensure_foca_example()
    except BuildError as error:
        if in_ci():
            pytest.fail(f"foca's example agent is required under CI=true: {error}")
        pytest.skip(f"foca's example agent is not available: {error}")


def free_udp_port() -> int:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
    finally:
        probe.close()


@dataclass
class SwimNode:
    swim: Swim
    transport: AsyncIoUdpTransport
    handler: ExampleAgentBroadcastHandler
    task: asyncio.Task[None]

    @property
    def addr(self) -> Address:
        return self.swim.identity.addr

    def active(self) -> set[Address]:
        return {member.id.addr for member in self.swim.members()}

    def state_of(self, addr: Address) -> Member | None:
        for member in self.swim.membership_state():
            if member.id.addr == addr:
                return member
        return None

    async def crash(self) -> None:
        """Stop without leaving and close the socket, as a killed process would."""
        self.swim.stop()
        await self.task
        self.transport.close()


@dataclass
class MixedCluster:
    binary: Path
    workdir: Path
    nodes: list[SwimNode] = field(default_factory=list)
    agents: list[ExampleAgent] = field(default_factory=list)

    async def start_node(self) -> SwimNode:
        transport = AsyncIoUdpTransport("127.0.0.1:0")
        await transport.start()
        handler = ExampleAgentBroadcastHandler()
        swim = Swim(
            identity=Identity(transport.local_address, b"", int(time.time())),
            config=CONFIG,
            codec=CODEC,
            transport=transport,
            broadcast_handler=handler,
        )
        node = SwimNode(swim, transport, handler, asyncio.create_task(swim.run()))
        self.nodes.append(node)
        await self.wait_until(lambda: swim.running, 5.0, f"{node.addr} to start")
        return node

    def start_agent(self, announce: Address) -> ExampleAgent:
        index = len(self.agents)
        agent = ExampleAgent(
            self.binary,
            Address.parse(f"127.0.0.1:{free_udp_port()}"),
            self.workdir / f"agent{index}.members",
            self.workdir / f"agent{index}.log",
            announce=announce,
        )
        self.agents.append(agent)
        agent.start()
        return agent

    async def start(self) -> None:
        """Start the nodes, then the agents; the last node joins through an agent."""
        for _ in range(SWIM_NODES):
            await self.start_node()
        first, second, *rest = self.nodes
        second.swim.announce(first.addr)
        for index in range(AGENTS):
            agent = self.start_agent(announce=self.nodes[index % 2].addr)
            await self.wait_until(agent.is_bound, 10.0, f"agent {agent.bind} to bind")
        for node in rest:
            node.swim.announce(self.agents[0].bind)

    async def close(self) -> None:
        for agent in self.agents:
            agent.kill()
        for node in self.nodes:
            if node.swim.running:
                await node.crash()

    def live_addrs(self) -> set[Address]:
        addrs = {node.addr for node in self.nodes if node.swim.running}
        return addrs | {agent.bind for agent in self.agents if agent.running}

    def views(self) -> dict[str, set[Address]]:
        """Return each live member's active set: swim_py's list or the agent's file."""
        views = {
            f"swim_py {node.addr}": node.active()
            for node in self.nodes
            if node.swim.running
        }
        for agent in self.agents:
            if agent.running:
                views[f"agent {agent.bind}"] = agent.members()
        return views

    def converged(self) -> bool:
        live = self.live_addrs()
        for name, view in self.views().items():
            own = Address.parse(name.split(" ", 1)[1])
            if view != live - {own}:
                return False
        return True

    def describe(self) -> str:
        lines = [f"live members: {sorted(map(str, self.live_addrs()))}"]
        for name, view in self.views().items():
            lines.append(f"{name} sees {sorted(map(str, view))}")
        for node in self.nodes:
            lines.append(f"swim_py {node.addr} errors: {dict(node.swim.error_counts)}")
        for agent in self.agents:
            lines.append(f"--- end of agent {agent.bind} log ---\n{agent.log_tail(15)}")
        return "\n".join(lines)

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float, what: str
    ) -> float:
        """Poll ``predicate`` and return the seconds it took; fail with the state."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while not predicate():
            if loop.time() - start > timeout:
                raise AssertionError(
                    f"timed out after {timeout:.1f} s waiting for {what}\n"
                    + self.describe()
                )
            await asyncio.sleep(POLL_INTERVAL)
        return loop.time() - start

    def agent_wire_errors(self) -> list[str]:
        return [
            line
            for agent in self.agents
            for line in agent.log_lines()
            if "ERROR" in line and any(word in line for word in WIRE_ERRORS)
        ]


@pytest.fixture
def cluster(agent_binary: Path, tmp_path: Path) -> Iterator[MixedCluster]:
    mixed = MixedCluster(agent_binary, tmp_path)
    yield mixed
    # Normally close() runs inside the scenario; this catches early exits.
    for agent in mixed.agents:
        agent.kill()


def run(cluster: MixedCluster, scenario: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        try:
            await cluster.start()
            await scenario()
        finally:
            await cluster.close()

    timeout = 2 * CONVERGENCE_TIMEOUT + 3 * DETECTION_TIMEOUT
    asyncio.run(asyncio.wait_for(main(), timeout=timeout))


def test_mixed_cluster_converges(cluster: MixedCluster) -> None:
    async def scenario() -> None:
        await cluster.wait_until(
            cluster.converged, CONVERGENCE_TIMEOUT, "every member to see all others"
        )
        agents = {agent.bind for agent in cluster.agents}
        await cluster.wait_until(
            lambda: all(agents <= set(n.handler.messages) for n in cluster.nodes),
            CONVERGENCE_TIMEOUT,
            "every swim_py node to receive both agents' broadcasts",
        )
        sender = cluster.nodes[0]
        text = f"hello from swim_py {sender.addr}"
        assert sender.swim.add_broadcast(encode_agent_broadcast(sender.addr, 1, text))
        await cluster.wait_until(
            lambda: all(
                any(f'payload="{text}"' in line for line in agent.log_lines())
                for agent in cluster.agents
            ),
            CONVERGENCE_TIMEOUT,
            "both agents to log the swim_py broadcast",
        )

        assert cluster.agent_wire_errors() == []
        for node in cluster.nodes:
            assert dict(node.swim.error_counts) == {}

    run(cluster, scenario)


def test_killed_agent_reported_down(cluster: MixedCluster) -> None:
    async def scenario() -> None:
        await cluster.wait_until(
            cluster.converged, CONVERGENCE_TIMEOUT, "every member to see all others"
        )
        victim = cluster.agents[0]

        victim.kill()

        def all_report_down() -> bool:
            for node in cluster.nodes:
                member = node.state_of(victim.bind)
                if member is None or member.state is not State.DOWN:
                    return False
            return True

        await cluster.wait_until(
            all_report_down, DETECTION_TIMEOUT, f"swim_py to mark {victim.bind} down"
        )
        await cluster.wait_until(
            cluster.converged,
            CONVERGENCE_TIMEOUT,
            f"the surviving agent to drop {victim.bind}",
        )
        assert cluster.agent_wire_errors() == []

    run(cluster, scenario)


def test_crashed_swim_node_dropped_by_agents(cluster: MixedCluster) -> None:
    async def scenario() -> None:
        await cluster.wait_until(
            cluster.converged, CONVERGENCE_TIMEOUT, "every member to see all others"
        )
        victim = cluster.nodes[-1]

        await victim.crash()

        await cluster.wait_until(
            lambda: all(victim.addr not in agent.members() for agent in cluster.agents),
            DETECTION_TIMEOUT,
            f"both agents to drop {victim.addr} from their members files",
        )
        await cluster.wait_until(
            cluster.converged, CONVERGENCE_TIMEOUT, f"everyone to drop {victim.addr}"
        )
        for node in cluster.nodes[:-1]:
            member = node.state_of(victim.addr)
            assert member is not None
            assert member.state is State.DOWN
        assert cluster.agent_wire_errors() == []

    run(cluster, scenario)


def test_restarted_agent_rejoins(cluster: MixedCluster) -> None:
    async def scenario() -> None:
        await cluster.wait_until(
            cluster.converged, CONVERGENCE_TIMEOUT, "every member to see all others"
        )
        victim = cluster.agents[0]
        old = cluster.nodes[0].state_of(victim.bind)
        assert old is not None
        victim.kill()
        await cluster.wait_until(
            lambda: all(victim.bind not in node.active() for node in cluster.nodes),
            DETECTION_TIMEOUT,
            f"swim_py to mark {victim.bind} down",
        )

        # Same address, new process: its bump is the current Unix time, which
        # is later than the old bump, so the new identity wins the conflict.
        victim.announce = cluster.nodes[0].addr
        victim.start()
        await cluster.wait_until(
            cluster.converged, CONVERGENCE_TIMEOUT, f"{victim.bind} to rejoin"
        )

        for node in cluster.nodes:
            member = node.state_of(victim.bind)
            assert member is not None
            assert member.state is State.ALIVE
            assert member.id.renewal > old.id.renewal
        assert cluster.agent_wire_errors() == []

    run(cluster, scenario)

"""The asyncio driver on real UDP sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from swim_py import (
    AsyncIoUdpTransport,
    Config,
    EventKind,
    Identity,
    KeyedBroadcastHandler,
    KeyedItem,
    StaticDiscovery,
    Swim,
)
from swim_py.errors import ConfigError
from swim_py.events import ConnectionState
from swim_py.payload import State

pytestmark = pytest.mark.integration

FAST = replace(
    Config.simple(), probe_period=0.3, probe_rtt=0.1, suspect_to_down_after=0.9
)
# A loaded 2-core machine may run a probe period late, so every wait allows
# several protocol periods beyond the protocol's own bound.
SLACK_PERIODS = 10


def detection_bound(config: Config) -> float:
    """Return the time within which every member should see a crash as Down."""
    return (
        config.probe_period * (2 + SLACK_PERIODS)
        + config.suspect_to_down_after
        + config.probe_rtt
    )


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        await asyncio.sleep(FAST.probe_period / 10)


class Node:
    def __init__(self, swim: Swim, transport: AsyncIoUdpTransport) -> None:
        self.swim = swim
        self.transport = transport
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.swim.run())

    async def stop(self) -> None:
        self.swim.stop()
        if self.task is not None:
            await self.task

    def alive_addrs(self) -> set[str]:
        return {
            str(member.id.addr)
            for member in self.swim.membership_state()
            if member.state is State.ALIVE
        }


async def start_cluster(
    size: int,
    config: Config = FAST,
    handlers: list[KeyedBroadcastHandler] | None = None,
) -> list[Node]:
    nodes: list[Node] = []
    seed_addr: str | None = None
    for index in range(size):
        transport = AsyncIoUdpTransport("127.0.0.1:0")
        await transport.start()
        discovery = StaticDiscovery([seed_addr] if seed_addr else [])
        swim = Swim(
            identity=f"node-{index}",
            config=config,
            transport=transport,
            discovery=discovery,
            broadcast_handler=handlers[index] if handlers else None,
            rng=random.Random(index),
        )
        node = Node(swim, transport)
        node.start()
        nodes.append(node)
        seed_addr = seed_addr or str(transport.local_address)
    return nodes


async def converged(nodes: list[Node]) -> None:
    def check() -> bool:
        for node in nodes:
            others = {str(n.transport.local_address) for n in nodes if n is not node}
            if node.alive_addrs() != others:
                return False
        return True

    await wait_until(check, detection_bound(FAST), "the cluster to converge")


async def shutdown(nodes: list[Node]) -> None:
    for node in nodes:
        await node.stop()
        node.transport.close()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), timeout=60))


def test_cluster_converges_from_cold_start() -> None:
    async def scenario() -> None:
        nodes = await start_cluster(4)
        try:
            await converged(nodes)
            for node in nodes:
                assert node.swim.connection_state is ConnectionState.CONNECTED
        finally:
            await shutdown(nodes)

    run(scenario)


def test_stopped_node_is_detected_down() -> None:
    async def scenario() -> None:
        nodes = await start_cluster(4)
        try:
            await converged(nodes)
            victim = nodes.pop()
            await victim.stop()
            victim.transport.close()
            gone = str(victim.transport.local_address)

            def all_see_down() -> bool:
                return all(
                    any(
                        str(m.id.addr) == gone and m.state is State.DOWN
                        for m in node.swim.membership_state()
                    )
                    for node in nodes
                )

            await wait_until(all_see_down, detection_bound(FAST), "the crash detection")
        finally:
            await shutdown(nodes)

    run(scenario)


def test_event_stream_reports_member_up() -> None:
    async def scenario() -> None:
        nodes = await start_cluster(2)
        seen: list[EventKind] = []

        async def consume() -> None:
            async for event in nodes[0].swim.events:
                seen.append(event.kind)
                if event.kind is EventKind.MEMBER_UP:
                    return

        try:
            await asyncio.wait_for(consume(), detection_bound(FAST))
            assert EventKind.MEMBER_UP in seen
        finally:
            await shutdown(nodes)

    run(scenario)


def test_run_stop_run_rejoins_on_one_instance() -> None:
    async def scenario() -> None:
        nodes = await start_cluster(3)
        try:
            await converged(nodes)
            await nodes[2].stop()
            nodes[2].swim.stop()  # a second stop does nothing
            assert not nodes[2].swim.running
            nodes[2].start()
            await converged(nodes)
        finally:
            await shutdown(nodes)

    run(scenario)


def test_simultaneous_renew_reconnects_through_announce() -> None:
    # Both nodes renew before either's gossip arrives, so each gossip names
    # the other's old identity and is dropped. Only the driver's re-announce
    # to its discovery peer, which is accepted by address, reconnects them.
    async def scenario() -> None:
        nodes = await start_cluster(2)
        try:
            await converged(nodes)
            # Three probe periods connected outlast the start-up re-announce,
            # which stops at its first tick after the node connected.
            await wait_until(
                lambda: all(
                    sum(c["ping"] for c in node.swim.received_counts.values()) >= 3
                    for node in nodes
                ),
                detection_bound(FAST),
                "three pings at each node",
            )
            renewed = [node.swim.renew() for node in nodes]
            for node in nodes:
                assert node.swim.connection_state is ConnectionState.DISCONNECTED

            def reconnected() -> bool:
                return all(
                    node.swim.connection_state is ConnectionState.CONNECTED
                    and other_id in {m.id for m in node.swim.members()}
                    for node, other_id in zip(nodes, reversed(renewed), strict=True)
                )

            await wait_until(
                reconnected, detection_bound(FAST), "both renewed nodes to reconnect"
            )
        finally:
            await shutdown(nodes)

    run(scenario)


def test_malformed_datagram_is_counted_not_fatal() -> None:
    async def scenario() -> None:
        nodes = await start_cluster(3)
        try:
            await converged(nodes)
            target = nodes[0]
            before = len(target.swim.membership_state())
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for payload in (b"\xff" * 40, b"\x01", b"\x05\x0a"):
                    sock.sendto(payload, target.transport.local_address.to_sockaddr())
            await wait_until(
                lambda: target.swim.error_counts["decode"] >= 3,
                detection_bound(FAST),
                "the decode errors to be counted",
            )
            assert len(target.swim.membership_state()) == before
            await converged(nodes)
        finally:
            await shutdown(nodes)

    run(scenario)


def test_rejected_datagrams_logged_rate_limited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        nodes = await start_cluster(1)
        target = nodes[0]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                for _ in range(12):
                    sock.sendto(
                        b"\xff" * 40, target.transport.local_address.to_sockaddr()
                    )
            await wait_until(
                lambda: target.swim.error_counts["decode"] >= 12,
                detection_bound(FAST),
                "twelve decode errors to be counted",
            )
        finally:
            await shutdown(nodes)

    with caplog.at_level(logging.WARNING, logger="swim_py.aio"):
        run(scenario)

    warnings = [
        r.getMessage() for r in caplog.records if "class=decode" in r.getMessage()
    ]
    assert len(warnings) == 2
    assert "count=1 " in warnings[0]
    assert "count=10 " in warnings[1]


def test_keyed_broadcast_reaches_every_node() -> None:
    async def scenario() -> None:
        received: list[list[KeyedItem]] = [[], [], []]
        handlers = [
            KeyedBroadcastHandler(lambda item, _sender, box=box: box.append(item))
            for box in received
        ]
        nodes = await start_cluster(3, handlers=handlers)
        try:
            await converged(nodes)
            item = KeyedItem("config", 1, b"hello")
            assert nodes[0].swim.add_broadcast(item.encode())
            nodes[0].swim.send_broadcast()
            await wait_until(
                lambda: all(item in box for box in received[1:]),
                detection_bound(FAST),
                "the broadcast to reach every node",
            )
        finally:
            await shutdown(nodes)

    run(scenario)


def test_wildcard_bind_needs_advertised_address() -> None:
    async def scenario() -> None:
        transport = AsyncIoUdpTransport("0.0.0.0:0")
        await transport.start()
        try:
            swim = Swim(identity=b"x", transport=transport)
            with pytest.raises(ValueError, match="local_addr"):
                await swim.run()
            advertised = Swim(
                identity=b"x",
                transport=transport,
                local_addr=f"127.0.0.1:{transport.local_address.port}",
            )
            assert advertised.identity == Identity(advertised.identity.addr, b"x", 0)
        finally:
            transport.close()

    run(scenario)


def test_identity_longer_than_packet_rejected() -> None:
    async def scenario() -> None:
        transport = AsyncIoUdpTransport("127.0.0.1:0")
        await transport.start()
        try:
            config = replace(Config.simple(), max_packet_size=200)
            swim = Swim(identity=b"b" * 150, config=config, transport=transport)
            with pytest.raises(ConfigError) as caught:
                await swim.run()
            assert "max_packet_size (200)" in str(caught.value)
            assert not swim.running
            fitting = Swim(identity=b"b" * 40, config=config, transport=transport)
            task = asyncio.create_task(fitting.run())
            await wait_until(lambda: fitting.running, 5, "the node to start")
            fitting.stop()
            await task
        finally:
            transport.close()

    run(scenario)

"""The fault model and the process runtime's UDP relay, on 127.0.0.1."""

from __future__ import annotations

import asyncio
import functools
import random
import socket
from collections.abc import Awaitable, Callable

import pytest

from conformance.faults import (
    OUTSIDER,
    FaultRelay,
    LinkFault,
    LinkFaults,
    links_between,
)


class _Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait((data, addr))


async def _endpoint() -> tuple[asyncio.DatagramTransport, _Sink, int]:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    transport, sink = await loop.create_datagram_endpoint(_Sink, sock=sock)
    return transport, sink, sock.getsockname()[1]


def _run(body: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """Turn an async test body into a test that runs it in a new event loop."""

    @functools.wraps(body)
    def test() -> None:
        asyncio.run(body())  # type: ignore[arg-type]

    return test


def _port(address: str) -> int:
    return int(address.rpartition(":")[2])


async def _two_nodes(
    relay: FaultRelay,
) -> tuple[
    asyncio.DatagramTransport, _Sink, int, asyncio.DatagramTransport, _Sink, int
]:
    a_transport, a_sink, a_port = await _endpoint()
    b_transport, b_sink, b_port = await _endpoint()
    a_advertised = await relay.add_node("a")
    b_advertised = await relay.add_node("b")
    relay.set_target("a", f"127.0.0.1:{a_port}")
    relay.set_target("b", f"127.0.0.1:{b_port}")
    return (
        a_transport,
        a_sink,
        _port(a_advertised),
        b_transport,
        b_sink,
        _port(b_advertised),
    )


async def _drain(sink: _Sink, timeout: float = 0.3) -> list[bytes]:
    got = []
    while True:
        try:
            data, _ = await asyncio.wait_for(sink.received.get(), timeout)
        except TimeoutError:
            return got
        got.append(data)


@_run
async def test_relay_forwards_and_counts_by_sender() -> None:
    relay = FaultRelay(random.Random(1))
    a, a_sink, a_relay, b, b_sink, b_relay = await _two_nodes(relay)
    try:
        assert await relay.add_node("a") == f"127.0.0.1:{a_relay}"
        a.sendto(b"hello", ("127.0.0.1", b_relay))
        data, source = await asyncio.wait_for(b_sink.received.get(), 5)
        assert data == b"hello"
        # The copy comes from a's relay socket, the address a advertises.
        assert source[1] == a_relay
        b.sendto(b"back", ("127.0.0.1", a_relay))
        data, _ = await asyncio.wait_for(a_sink.received.get(), 5)
        assert data == b"back"
        counters = relay.counters_json()
        assert counters["a"]["datagrams"] == 1
        assert counters["a"]["bytes"] == 5
        assert counters["b"]["bytes"] == 4
    finally:
        relay.close()
        a.close()
        b.close()


@_run
async def test_cut_link_is_one_way() -> None:
    relay = FaultRelay(random.Random(1))
    a, a_sink, a_relay, b, b_sink, b_relay = await _two_nodes(relay)
    try:
        faults = LinkFaults()
        faults.cut([("a", "b")])
        relay.set_faults(faults.snapshot())
        for _ in range(5):
            a.sendto(b"lost", ("127.0.0.1", b_relay))
        b.sendto(b"arrives", ("127.0.0.1", a_relay))
        assert await _drain(a_sink) == [b"arrives"]
        assert await _drain(b_sink) == []
        assert relay.counters_json()["a"]["dropped"] == 5
        faults.heal()
        relay.set_faults(faults.snapshot())
        a.sendto(b"healed", ("127.0.0.1", b_relay))
        assert await _drain(b_sink) == [b"healed"]
    finally:
        relay.close()
        a.close()
        b.close()


@_run
async def test_loss_duplicate_and_delay_follow_the_probabilities() -> None:
    relay = FaultRelay(random.Random(7))
    a, _, _, b, b_sink, b_relay = await _two_nodes(relay)
    try:
        relay.set_faults(
            {("a", "b"): LinkFault(loss=0.3, duplicate=0.2, delay_ms=5, jitter_ms=2)}
        )
        for index in range(400):
            a.sendto(index.to_bytes(2, "big"), ("127.0.0.1", b_relay))
            if index % 50 == 0:
                await asyncio.sleep(0.01)
        got = await _drain(b_sink, 0.5)
        counters = relay.counters_json()["a"]
        assert counters["datagrams"] == 400
        assert 80 <= counters["dropped"] <= 160
        assert len(got) == (400 - counters["dropped"]) + counters["duplicated"]
        assert counters["duplicated"] > 20
    finally:
        relay.close()
        a.close()
        b.close()


@_run
async def test_reorder_lets_later_datagrams_overtake() -> None:
    relay = FaultRelay(random.Random(3))
    a, _, _, b, b_sink, b_relay = await _two_nodes(relay)
    try:
        relay.set_faults({("a", "b"): LinkFault(reorder=0.5, reorder_gap_ms=50)})
        for index in range(40):
            a.sendto(bytes([index]), ("127.0.0.1", b_relay))
        got = [data[0] for data in await _drain(b_sink, 0.5)]
        assert sorted(got) == list(range(40))
        assert got != sorted(got)
    finally:
        relay.close()
        a.close()
        b.close()


@_run
async def test_datagrams_from_an_unknown_port_count_as_outsider() -> None:
    relay = FaultRelay(random.Random(1))
    a, _, _, b, b_sink, b_relay = await _two_nodes(relay)
    stranger, _, _ = await _endpoint()
    try:
        stranger.sendto(b"x", ("127.0.0.1", b_relay))
        assert await _drain(b_sink) == [b"x"]
        assert relay.counters_json()[OUTSIDER]["datagrams"] == 1
    finally:
        relay.close()
        a.close()
        b.close()
        stranger.close()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"loss": 1.5}, "loss must be a probability from 0 to 1, got 1.5"),
        ({"duplicate": -0.1}, "duplicate must be a probability"),
        ({"delay_ms": float("inf")}, "delay_ms must be a finite number"),
        ({"delay_ms": 5, "jitter_ms": 10}, "jitter_ms (10) must not exceed delay_ms"),
    ],
)
def test_bad_fault_values_name_the_field(arguments: dict, message: str) -> None:
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        LinkFault(**arguments)


def test_link_faults_set_cut_and_clear() -> None:
    faults = LinkFaults()
    faults.set(links_between(["n0"], ["n1", "n2"], both_ways=True), LinkFault(loss=0.1))
    assert sorted(faults.links) == [
        ("n0", "n1"),
        ("n0", "n2"),
        ("n1", "n0"),
        ("n2", "n0"),
    ]
    faults.cut([("n0", "n1")])
    assert faults.is_cut("n0", "n1")
    assert not faults.is_cut("n1", "n0")
    assert faults.describe() == ["cut on n0->n1", "loss 10% on n0->n2, n1->n0, n2->n0"]
    faults.set([("n0", "n2")], LinkFault())
    assert ("n0", "n2") not in faults.links
    faults.heal()
    assert faults.links == {}

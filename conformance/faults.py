"""Network faults between nodes: the per-link model and the process runtime's relay.

A fault acts on a directed link, from one named node to another: the
datagrams that the first sends to the second. ``LinkFault`` describes what
happens to them (loss, delay and jitter, duplication, reordering), and a
loss of 1 cuts the link. ``LinkFaults`` is the fault state of a whole run,
changed by the scenario's ``link_fault``, ``partition`` and ``heal`` steps
and handed to the runtime in full after each change.

In the process runtime every node binds a port of its own and advertises
the address of a ``FaultRelay`` socket instead, so every datagram that a
node sends to another passes through the harness. The relay identifies the
sender by the source port (the sender's bound port), applies the link's
fault and forwards the datagram from the sender's relay socket to the
receiver's bound port. So datagrams reach each node from the other
nodes' advertised addresses, unchanged apart from the faults.
A disconnected node is isolated: the relay drops all its datagrams both
ways. The docker runtime applies the same model inside the containers'
network namespaces (docker_runtime.py and netem.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import socket
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from conformance.errors import HarnessError

logger = logging.getLogger(__name__)

# Extra delay of a reordered datagram when the link has no delay of its own,
# in milliseconds: long enough for the next datagrams on the link to overtake
# it on a loaded machine, short against every probe_rtt the scenarios use.
DEFAULT_REORDER_GAP_MS = 30.0

# Name under which the relay counts datagrams from a source that is no node,
# such as the harness's datagram injector.
OUTSIDER = "outsider"


@dataclass(frozen=True)
class LinkFault:
    """The fault on one directed link: what happens to each datagram sent on it.

    ``loss``, ``duplicate`` and ``reorder`` are probabilities per datagram.
    A duplicated datagram is delivered twice, each copy with its own delay.
    A reordered datagram gets ``reorder_gap_ms`` of extra delay, so that
    later datagrams overtake it. ``delay_ms`` plus or minus a uniform
    ``jitter_ms`` is the one-way delay added to every datagram.
    """

    loss: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_gap_ms: float = DEFAULT_REORDER_GAP_MS

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise ValueError(
                    f"{name} must be a probability from 0 to 1, got {value!r}"
                )
        for name in ("delay_ms", "jitter_ms", "reorder_gap_ms"):
            value = getattr(self, name)
            if not (
                isinstance(value, int | float) and math.isfinite(value) and value >= 0
            ):
                raise ValueError(
                    f"{name} must be a finite number of milliseconds >= 0, "
                    f"got {value!r}"
                )
        if self.jitter_ms > self.delay_ms:
            raise ValueError(
                f"jitter_ms ({self.jitter_ms}) must not exceed delay_ms "
                f"({self.delay_ms}): a datagram cannot arrive before it was sent"
            )

    @property
    def cut(self) -> bool:
        return self.loss >= 1.0

    @property
    def clear(self) -> bool:
        return (
            self.loss == 0
            and self.delay_ms == 0
            and self.duplicate == 0
            and self.reorder == 0
        )

    def describe(self) -> str:
        if self.cut:
            return "cut"
        parts = []
        if self.loss:
            parts.append(f"loss {self.loss:.0%}")
        if self.delay_ms:
            jitter = f" +-{self.jitter_ms:g}" if self.jitter_ms else ""
            parts.append(f"delay {self.delay_ms:g}{jitter} ms")
        if self.duplicate:
            parts.append(f"duplicate {self.duplicate:.0%}")
        if self.reorder:
            parts.append(f"reorder {self.reorder:.0%}")
        return ", ".join(parts) or "clear"

    def delays(self, rng: random.Random) -> list[float]:
        """Return the delay in seconds of each copy to deliver: none if lost."""
        if self.loss and rng.random() < self.loss:
            return []
        copies = 2 if self.duplicate and rng.random() < self.duplicate else 1
        delays = []
        for _ in range(copies):
            delay = self.delay_ms
            if self.jitter_ms:
                delay += rng.uniform(-self.jitter_ms, self.jitter_ms)
            if self.reorder and rng.random() < self.reorder:
                delay += self.reorder_gap_ms
            delays.append(max(0.0, delay) / 1000)
        return delays


Link = tuple[str, str]


@dataclass
class LinkFaults:
    """The fault on every directed link between named nodes; absent means clear."""

    links: dict[Link, LinkFault] = field(default_factory=dict)

    def set(self, links: Iterable[Link], fault: LinkFault) -> None:
        for link in links:
            if link[0] == link[1]:
                continue
            if fault.clear:
                self.links.pop(link, None)
            else:
                self.links[link] = fault

    def cut(self, links: Iterable[Link]) -> None:
        for link in links:
            current = self.links.get(link, LinkFault())
            self.set([link], replace(current, loss=1.0))

    def heal(self) -> None:
        self.links.clear()

    def get(self, src: str, dst: str) -> LinkFault | None:
        return self.links.get((src, dst))

    def is_cut(self, src: str, dst: str) -> bool:
        fault = self.links.get((src, dst))
        return fault is not None and fault.cut

    def snapshot(self) -> dict[Link, LinkFault]:
        return dict(self.links)

    def describe(self) -> list[str]:
        """Return one line per distinct fault, naming its links (or their count)."""
        groups: dict[LinkFault, list[Link]] = {}
        for link, fault in sorted(self.links.items()):
            groups.setdefault(fault, []).append(link)
        lines = []
        for fault, links in groups.items():
            named = ", ".join(f"{src}->{dst}" for src, dst in links[:6])
            more = f" and {len(links) - 6} more" if len(links) > 6 else ""
            lines.append(f"{fault.describe()} on {named}{more}")
        return lines


def links_between(
    sources: Iterable[str], destinations: Iterable[str], both_ways: bool
) -> Iterator[Link]:
    destinations = list(destinations)
    for src in sources:
        for dst in destinations:
            if src != dst:
                yield (src, dst)
                if both_ways:
                    yield (dst, src)


@dataclass
class LinkCounters:
    """Datagrams and bytes that one node sent through the relay, per outcome."""

    datagrams: int = 0
    bytes: int = 0
    dropped: int = 0
    duplicated: int = 0
    delayed: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "datagrams": self.datagrams,
            "bytes": self.bytes,
            "dropped": self.dropped,
            "duplicated": self.duplicated,
            "delayed": self.delayed,
        }


def _parse_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise HarnessError(f"expected an IP:PORT address, got {address!r}")
    return host.strip("[]"), int(port)


class _RelayProtocol(asyncio.DatagramProtocol):
    def __init__(self, relay: FaultRelay, name: str) -> None:
        self.relay = relay
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.relay.forward(self.name, data, addr[1])

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a killed node's old port: the datagram
        # is lost, as it would be on a network.
        logger.debug("relay socket of %s: %s", self.name, exc)


class FaultRelay:
    """One UDP socket per node on 127.0.0.1 that forwards datagrams with faults.

    ``add_node`` opens the socket that the node advertises; ``set_target``
    records the node's bound address once it runs. Datagrams for a
    node whose target is unknown, and datagrams to a port that no node owns
    anymore, are lost.
    """

    def __init__(self, rng: random.Random, host: str = "127.0.0.1") -> None:
        self._rng = rng
        self._host = host
        self._protocols: dict[str, _RelayProtocol] = {}
        self._advertised: dict[str, str] = {}
        self._targets: dict[str, tuple[str, int]] = {}
        self._name_by_port: dict[int, str] = {}
        self._faults: dict[Link, LinkFault] = {}
        # Nodes cut off from every other node, on top of the link faults.
        self._isolated: set[str] = set()
        self.counters: dict[str, LinkCounters] = {}
        self._closed = False

    async def add_node(self, name: str) -> str:
        """Return the address that node ``name`` advertises, opening it once."""
        if name in self._advertised:
            return self._advertised[name]
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.bind((self._host, 0))
        _, protocol = await loop.create_datagram_endpoint(
            lambda: _RelayProtocol(self, name), sock=sock
        )
        self._protocols[name] = protocol
        port = sock.getsockname()[1]
        self._advertised[name] = f"{self._host}:{port}"
        return self._advertised[name]

    def set_target(self, name: str, bind: str) -> None:
        host, port = _parse_port(bind)
        old = self._targets.get(name)
        if old is not None:
            self._name_by_port.pop(old[1], None)
        self._targets[name] = (host, port)
        self._name_by_port[port] = name

    def set_faults(self, faults: Mapping[Link, LinkFault]) -> None:
        self._faults = dict(faults)

    def isolate(self, name: str) -> None:
        """Drop every datagram from and to node ``name`` until ``reattach``."""
        self._isolated.add(name)

    def reattach(self, name: str) -> None:
        self._isolated.discard(name)

    def forward(self, dst: str, data: bytes, src_port: int) -> None:
        src = self._name_by_port.get(src_port, OUTSIDER)
        counters = self.counters.get(src)
        if counters is None:
            counters = self.counters[src] = LinkCounters()
        counters.datagrams += 1
        counters.bytes += len(data)

        target = self._targets.get(dst)
        if target is None or src in self._isolated or dst in self._isolated:
            counters.dropped += 1
            return
        # The copy leaves from the sender's own relay socket, so it reaches the
        # receiver from the address that the sender advertises.
        via = src if src in self._protocols else dst
        fault = self._faults.get((src, dst))
        if fault is None:
            self._send(via, data, target)
            return

        delays = fault.delays(self._rng)
        if not delays:
            counters.dropped += 1
            return
        if len(delays) > 1:
            counters.duplicated += 1
        loop = asyncio.get_running_loop()
        for delay in delays:
            if delay <= 0:
                self._send(via, data, target)
            else:
                counters.delayed += 1
                # After close, _send drops what is still on its way.
                loop.call_later(delay, self._send, via, data, target)

    def _send(self, via: str, data: bytes, target: tuple[str, int]) -> None:
        protocol = self._protocols.get(via)
        if self._closed or protocol is None or protocol.transport is None:
            return
        protocol.transport.sendto(data, target)

    def counters_json(self) -> dict[str, dict[str, int]]:
        return {
            name: counters.to_json() for name, counters in sorted(self.counters.items())
        }

    def close(self) -> None:
        self._closed = True
        for protocol in self._protocols.values():
            if protocol.transport is not None:
                protocol.transport.close()
        self._protocols.clear()

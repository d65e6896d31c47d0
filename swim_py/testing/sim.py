"""A deterministic in-memory simulation of SwimCore clusters.

Nothing here touches a socket or the wall clock. A ``SimCluster`` runs N
cores on a virtual clock. A ``FakeNetwork`` carries their datagrams with a
latency and can drop, delay and partition them. Each node has its own timer
heap keyed by (deadline, foca's timer kind order, sequence), so timers that
fall due together fire in foca's order. Every random choice (core, network)
comes from generators seeded from the cluster's seed, so a seed reproduces a
run exactly.

``tests/`` uses it for the core's cluster tests, and ``swim-conformance
bench`` for its simulation figures.
"""

from __future__ import annotations

import functools
import heapq
import ipaddress
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from swim_py.broadcast import BroadcastHandler
from swim_py.codec import Codec, ProtobufCodec
from swim_py.config import Config
from swim_py.core import SwimCore
from swim_py.errors import SwimError
from swim_py.events import ConnectionState, Notification, Timer, timer_sort_key
from swim_py.identity import Address, Identity
from swim_py.payload import Member, State

__all__ = [
    "FakeNetwork",
    "SimCluster",
    "SimNode",
    "TimerQueue",
    "VirtualClock",
    "sim_address",
]

T = TypeVar("T")

BASE_PORT = 7000
LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


def sim_address(index: int) -> Address:
    """Return the address of the simulated node ``index``."""
    return Address(LOOPBACK, BASE_PORT + index)


class VirtualClock:
    """Virtual time in seconds, moved forward only by the simulation."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def advance_to(self, when: float) -> None:
        if when < self.now:
            raise ValueError(f"cannot move the clock back from {self.now} to {when}")
        self.now = when


class TimerQueue:
    """One node's pending timers, ordered by (deadline, kind order, sequence)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Timer]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, deadline: float, timer: Timer) -> None:
        heapq.heappush(self._heap, (deadline, timer_sort_key(timer), self._seq, timer))
        self._seq += 1

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> Timer | None:
        """Remove and return the first timer due at or before ``now``, if any."""
        if not self._heap or self._heap[0][0] > now:
            return None
        return heapq.heappop(self._heap)[3]

    def pending(self) -> list[tuple[float, Timer]]:
        """Return ``(deadline, timer)`` pairs in firing order."""
        return [(entry[0], entry[3]) for entry in sorted(self._heap)]

    def clear(self) -> None:
        self._heap.clear()


@dataclass(slots=True)
class NetworkStats:
    sent: int = 0
    delivered: int = 0
    dropped_loss: int = 0
    dropped_partition: int = 0
    dropped_filter: int = 0
    dropped_no_node: int = 0


class FakeNetwork:
    """Datagram delivery between addresses with latency, loss and partitions.

    ``latency`` plus a uniform random ``jitter`` is each datagram's delay, so
    datagrams may be reordered when jitter is non-zero. ``loss`` is the
    probability of dropping each datagram. A partition splits addresses
    into groups that cannot reach each other. Addresses left out of every
    group form one more group.
    """

    def __init__(
        self,
        rng: random.Random,
        *,
        latency: float = 0.002,
        jitter: float = 0.001,
        loss: float = 0.0,
    ) -> None:
        if latency < 0 or jitter < 0:
            raise ValueError(
                f"invalid latency {latency} or jitter {jitter}: expected >= 0"
            )
        self._rng = rng
        self.latency = latency
        self.jitter = jitter
        self.loss = loss
        self.stats = NetworkStats()
        self._groups: dict[Address, int] = {}
        self._blocked: set[tuple[Address, Address]] = set()
        self._extra_delay: dict[tuple[Address, Address], float] = {}
        # Returns True for a datagram to drop: (src, dst, data).
        self.drop_filter: Callable[[Address, Address, bytes], bool] | None = None
        self._in_flight: list[tuple[float, int, Address, Address, bytes]] = []
        self._seq = 0

    @property
    def loss(self) -> float:
        return self._loss

    @loss.setter
    def loss(self, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"invalid loss rate {rate}: expected 0.0 to 1.0")
        self._loss = rate

    def partition(self, *groups: Iterable[Address]) -> None:
        """Split the network: only addresses in the same group reach each other."""
        self._groups = {}
        for number, group in enumerate(groups, start=1):
            for addr in group:
                self._groups[addr] = number

    def heal(self) -> None:
        """Remove the partition, the blocked links and the extra delays."""
        self._groups = {}
        self._blocked.clear()
        self._extra_delay.clear()

    def block(self, src: Address, dst: Address) -> None:
        """Drop every datagram from ``src`` to ``dst`` (one direction only)."""
        self._blocked.add((src, dst))

    def unblock(self, src: Address, dst: Address) -> None:
        self._blocked.discard((src, dst))

    def delay(self, src: Address, dst: Address, extra: float) -> None:
        """Add ``extra`` seconds to every datagram from ``src`` to ``dst``."""
        self._extra_delay[(src, dst)] = extra

    def can_reach(self, src: Address, dst: Address) -> bool:
        if (src, dst) in self._blocked:
            return False
        return self._groups.get(src, 0) == self._groups.get(dst, 0)

    def send(self, src: Address, dst: Address, data: bytes, now: float) -> None:
        """Queue ``data`` for delivery to ``dst``, or drop it."""
        self.stats.sent += 1
        if not self.can_reach(src, dst):
            self.stats.dropped_partition += 1
            return
        if self._loss and self._rng.random() < self._loss:
            self.stats.dropped_loss += 1
            return
        if self.drop_filter is not None and self.drop_filter(src, dst, data):
            self.stats.dropped_filter += 1
            return
        delay = self.latency + self._extra_delay.get((src, dst), 0.0)
        if self.jitter:
            delay += self._rng.uniform(0.0, self.jitter)
        heapq.heappush(self._in_flight, (now + delay, self._seq, src, dst, data))
        self._seq += 1

    def next_delivery(self) -> float | None:
        return self._in_flight[0][0] if self._in_flight else None

    def pop_due(self, now: float) -> tuple[Address, Address, bytes] | None:
        """Remove and return the first datagram due at or before ``now``."""
        if not self._in_flight or self._in_flight[0][0] > now:
            return None
        _, _, src, dst, data = heapq.heappop(self._in_flight)
        return src, dst, data

    def in_flight(self) -> int:
        return len(self._in_flight)


@dataclass(slots=True)
class SimNode:
    """One simulated member: its core, timers and what it reported."""

    index: int
    core: SwimCore
    timers: TimerQueue = field(default_factory=TimerQueue)
    notifications: list[tuple[float, Notification]] = field(default_factory=list)
    errors: list[tuple[float, SwimError]] = field(default_factory=list)
    running: bool = True

    @property
    def identity(self) -> Identity:
        return self.core.identity

    @property
    def addr(self) -> Address:
        return self.core.identity.addr

    def member_ids(self) -> set[Identity]:
        """Return the identities that this node lists as active."""
        return {member.id for member in self.core.iter_members()}

    def notifications_of(self, kind: type[Any]) -> list[Any]:
        return [n for _, n in self.notifications if isinstance(n, kind)]

    def error_classes(self) -> list[str]:
        return [error.error_class for _, error in self.errors]


def _apply_quietly(updates: list[Member], core: SwimCore) -> None:
    core.apply_many(updates, do_broadcast=False)


class SimCluster:
    """N SwimCore nodes on a FakeNetwork and a virtual clock.

    Node ``i`` listens on ``sim_address(i)`` with the identity
    ``Identity(sim_address(i))``. Errors raised by a core are recorded on its
    node, as a real driver would log them, and the run goes on.

    With ``record_notifications`` False, nodes keep no notification list,
    which large clusters need to stay within memory. ``on_notification``,
    if given, sees every notification with the node that emitted it.
    """

    def __init__(
        self,
        size: int,
        *,
        seed: int,
        config: Config | None = None,
        codec: Codec | None = None,
        handler_factory: Callable[[int], BroadcastHandler[Any]] | None = None,
        latency: float = 0.002,
        jitter: float = 0.001,
        loss: float = 0.0,
        record_notifications: bool = True,
        on_notification: Callable[[SimNode, Notification], None] | None = None,
    ) -> None:
        self.seed = seed
        self.record_notifications = record_notifications
        self.on_notification = on_notification
        self.config = config if config is not None else Config.simple()
        self.codec = codec if codec is not None else ProtobufCodec()
        self.clock = VirtualClock()
        self._seed_rng = random.Random(seed)
        self.network = FakeNetwork(
            random.Random(self._seed_rng.getrandbits(64)),
            latency=latency,
            jitter=jitter,
            loss=loss,
        )
        self._handler_factory = handler_factory
        self._by_addr: dict[Address, SimNode] = {}
        # Global wake-up heap: (deadline, sequence, address). Entries may be
        # stale, which is harmless: a wake-up fires only the timers now due.
        self._wakeups: list[tuple[float, int, Address]] = []
        self._seq = 0
        self.nodes: list[SimNode] = []
        for index in range(size):
            self.nodes.append(self._make_node(index, Identity(sim_address(index))))

    def __repr__(self) -> str:
        size = len(self.nodes)
        return f"SimCluster(seed={self.seed}, size={size}, now={self.now:.3f})"

    @property
    def now(self) -> float:
        return self.clock.now

    def _make_node(self, index: int, identity: Identity) -> SimNode:
        factory = self._handler_factory
        handler = None if factory is None else factory(index)
        rng = random.Random(self._seed_rng.getrandbits(64))
        core = SwimCore(identity, self.config, self.codec, rng, handler)
        node = SimNode(index, core)
        self._by_addr[identity.addr] = node
        return node

    # Driving nodes

    def call(self, index: int, action: Callable[[SwimCore], T]) -> T | None:
        """Run ``action`` on node ``index``'s core and route its outputs.

        Returns the action's result, or None when it raised a SwimError,
        which is recorded on the node.
        """
        node = self.nodes[index]
        return self._run(node, action)

    def _run(self, node: SimNode, action: Callable[[SwimCore], T]) -> T | None:
        result: T | None = None
        try:
            result = action(node.core)
        except SwimError as error:
            node.errors.append((self.clock.now, error))
        self._route_outputs(node)
        return result

    def _route_outputs(self, node: SimNode) -> None:
        outputs = node.core.take_outputs()
        now = self.clock.now
        src = node.addr
        for send in outputs.sends:
            self.network.send(src, send.dst.addr, send.data, now)
        for schedule in outputs.schedules:
            deadline = now + schedule.delay
            node.timers.push(deadline, schedule.timer)
            heapq.heappush(self._wakeups, (deadline, self._seq, src))
            self._seq += 1
        if self.record_notifications:
            for notification in outputs.notifications:
                node.notifications.append((now, notification))
        listener = self.on_notification
        if listener is not None:
            for notification in outputs.notifications:
                listener(node, notification)

    def announce(self, index: int, to: int) -> None:
        """Make node ``index`` announce to node ``to``'s address."""
        target = Identity(self.nodes[to].addr)
        self.call(index, lambda core: core.announce(target))

    def start(self, seed_node: int = 0) -> None:
        """Make every node other than ``seed_node`` announce to it."""
        for index in range(len(self.nodes)):
            if index != seed_node:
                self.announce(index, seed_node)

    def add_node(self, identity: Identity | None = None) -> SimNode:
        """Add a node with the next index, by default at ``sim_address(index)``.

        The new node knows no member, so call ``announce`` to join.
        """
        index = len(self.nodes)
        if identity is None:
            identity = Identity(sim_address(index))
        node = self._make_node(index, identity)
        self.nodes.append(node)
        return node

    def bootstrap_full_membership(self) -> None:
        """Make every running node know every other one, without any datagram.

        Each node applies the others as Alive at incarnation 0 through
        ``apply_many`` with ``do_broadcast`` False, as a node restored from a
        saved member list would. All nodes share the same Member objects.
        """
        running = self.running_nodes()
        members = [Member(node.identity, 0, State.ALIVE) for node in running]
        for position, node in enumerate(running):
            others = members[:position] + members[position + 1 :]
            self._run(node, functools.partial(_apply_quietly, others))

    def kill(self, index: int) -> None:
        """Stop node ``index``: it drops datagrams and its timers never fire."""
        node = self.nodes[index]
        node.running = False
        node.timers.clear()

    def restart(self, index: int, identity: Identity | None = None) -> SimNode:
        """Replace node ``index`` with a fresh core, by default with its old identity.

        The fresh core has no members, so call ``announce`` to rejoin.
        """
        old = self.nodes[index]
        old.running = False
        old.timers.clear()
        if identity is None:
            identity = old.identity
        node = self._make_node(index, identity)
        self.nodes[index] = node
        return node

    # Running

    def _process_until(self, when: float) -> None:
        # Handle every event due at or before ``when``, in time order.
        network = self.network
        wakeups = self._wakeups
        while True:
            delivery = network.next_delivery()
            wakeup = wakeups[0][0] if wakeups else None
            if (
                delivery is not None
                and delivery <= when
                and (wakeup is None or delivery <= wakeup)
            ):
                self.clock.advance_to(delivery)
                datagram = network.pop_due(delivery)
                if datagram is not None:
                    self._deliver(*datagram)
            elif wakeup is not None and wakeup <= when:
                self.clock.advance_to(wakeup)
                _, _, addr = heapq.heappop(wakeups)
                self._fire_timers(addr)
            else:
                return

    def _deliver(self, src: Address, dst: Address, data: bytes) -> None:
        node = self._by_addr.get(dst)
        if node is None or not node.running:
            self.network.stats.dropped_no_node += 1
            return
        self.network.stats.delivered += 1
        try:
            node.core.handle_data(data)
        except SwimError as error:
            node.errors.append((self.clock.now, error))
        self._route_outputs(node)

    def _fire_timers(self, addr: Address) -> None:
        node = self._by_addr.get(addr)
        if node is None or not node.running:
            return
        now = self.clock.now
        while (timer := node.timers.pop_due(now)) is not None:
            try:
                node.core.handle_timer(timer)
            except SwimError as error:
                node.errors.append((now, error))
            self._route_outputs(node)

    def run_for(self, seconds: float) -> None:
        """Advance virtual time by ``seconds``, handling every event on the way."""
        self.run_until(lambda: False, seconds)

    def run_until(
        self, predicate: Callable[[], bool], timeout: float, poll: float = 0.05
    ) -> bool:
        """Run until ``predicate()`` is true or ``timeout`` virtual seconds pass.

        The predicate is checked every ``poll`` virtual seconds. Returns
        whether it became true, with the clock stopped at that poll tick.
        """
        deadline = self.clock.now + timeout
        while True:
            if predicate():
                return True
            if self.clock.now >= deadline:
                return False
            tick = min(self.clock.now + poll, deadline)
            self._process_until(tick)
            self.clock.advance_to(tick)

    # Queries

    def running_nodes(self) -> list[SimNode]:
        return [node for node in self.nodes if node.running]

    def is_converged(self) -> bool:
        """Return whether each running node lists exactly the other running nodes."""
        running = self.running_nodes()
        # Counts first: they are cheap, and usually enough to say no.
        for node in running:
            if node.core.connection_state is not ConnectionState.CONNECTED:
                return False
            if node.core.num_members() != len(running) - 1:
                return False
        expected = {node.identity for node in running}
        return all(node.member_ids() == expected - {node.identity} for node in running)

    def describe(self) -> str:
        """Return a summary for assertion messages: seed, time and each node's view."""
        lines = [repr(self)]
        for node in self.nodes:
            state = node.core.connection_state.value
            lines.append(
                f"  node {node.index} {node.identity} running={node.running}"
                f" {state} members={node.core.num_members()}"
                f" errors={sorted(set(node.error_classes()))}"
            )
        return "\n".join(lines)

"""The asyncio driver: runs a ``SwimCore`` on a transport, a clock and a timer queue.

``Swim`` owns one core at a time. Every input (a datagram, a due timer, an
API call) goes into the core synchronously on the event loop thread, and the
core's outputs are drained right after it in a fixed order: datagrams are
sent, timers are queued, then notifications become events. One heap keyed by
(deadline, sequence) holds every timer, so timers that fall due together fire
in the order they were scheduled, and one ``call_at`` handle is armed for the
earliest of them.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from swim_py.broadcast import BroadcastHandler
from swim_py.codec import Codec, ProtobufCodec
from swim_py.config import Config
from swim_py.core import COUNT_SIZE, SwimCore
from swim_py.discovery import Discovery
from swim_py.errors import ConfigError, SwimError
from swim_py.events import (
    Active,
    ConnectionState,
    DataReceived,
    Defunct,
    Idle,
    MemberDown,
    MemberSuspect,
    MemberUp,
    Notification,
    Rejoin,
    Rename,
    Timer,
)
from swim_py.identity import Address, Identity
from swim_py.payload import MESSAGE_NAMES, Header, Member, Ping
from swim_py.transport import Transport

logger = logging.getLogger(__name__)

# Bootstrap announces start at this delay and double up to the cap while the
# node is not connected.
_FIRST_REANNOUNCE_DELAY = 0.25
_MAX_REANNOUNCE_DELAY = 5.0

# Events buffered for a consumer that is not reading; older ones are dropped
# past this, and the drop is logged and counted.
_EVENT_BUFFER = 10_000

# str(Address) of recent senders, shared by every node of the process:
# formatting an ipaddress runs Python code, and received_counts needs it for
# every datagram. A full cache is emptied.
_MAX_ADDR_TEXTS = 4096
_addr_texts: dict[Address, str] = {}


class EventKind(enum.Enum):
    """The kind of change an ``Event`` reports."""

    MEMBER_UP = "member_up"
    MEMBER_SUSPECT = "member_suspect"
    MEMBER_DOWN = "member_down"
    MEMBER_RENAMED = "member_renamed"
    ACTIVE = "active"
    IDLE = "idle"
    DEFUNCT = "defunct"
    REJOIN = "rejoin"


@dataclass(frozen=True, slots=True)
class Event:
    """One membership or connection change, stamped with Unix time in seconds.

    ``member`` is the member concerned (the new identity for a rename, our
    own new identity for REJOIN) and ``previous`` the old identity of a rename.
    """

    kind: EventKind
    ts: float
    member: Identity | None = None
    previous: Identity | None = None


# A pending timer: (deadline, sequence, timer). Plain tuples, because the
# heap compares them often; the unique sequence keeps timers out of it.
_QueuedTimer = tuple[float, int, "Timer | _Reannounce"]


@dataclass(frozen=True, slots=True)
class _Reannounce:
    """The driver's own timer: announce to discovery peers while disconnected."""

    delay: float
    generation: int


class _EventStream:
    """The async iterable behind ``Swim.events``.

    Iteration ends once the node has stopped and every buffered event was read.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Event | None] | None = None
        self.dropped = 0

    def _ensure_queue(self) -> asyncio.Queue[Event | None]:
        if self._queue is None:
            self._queue = asyncio.Queue()
        return self._queue

    def publish(self, event: Event | None) -> None:
        queue = self._ensure_queue()
        if event is not None and queue.qsize() >= _EVENT_BUFFER:
            queue.get_nowait()
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                logger.warning(
                    "event buffer full, dropped the oldest event dropped_total=%d",
                    self.dropped,
                )
        queue.put_nowait(event)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        queue = self._ensure_queue()
        while True:
            event = await queue.get()
            if event is None:
                return
            yield event


class Swim:
    """A SWIM member on an asyncio UDP transport, wire-compatible with foca 1.0.

    ``identity`` is either a full ``Identity`` or the opaque id (bytes or
    text) of one whose address is ``local_addr``, the address the other
    members send to. ``local_addr`` defaults to the transport's bound
    address, which only works when the transport is bound to a specific IP;
    behind NAT or a relay, pass the advertised address here and bind the
    transport to another one.
    """

    def __init__(
        self,
        *,
        identity: Identity | bytes | str = b"",
        config: Config | None = None,
        codec: Codec | None = None,
        transport: Transport,
        discovery: Discovery | None = None,
        local_addr: Address | str | None = None,
        broadcast_handler: BroadcastHandler[Any] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config if config is not None else Config()
        self._codec = codec if codec is not None else ProtobufCodec()
        self._transport = transport
        self._discovery = discovery
        self._broadcast_handler = broadcast_handler
        self._rng = rng if rng is not None else random.Random()
        self._requested_identity = identity
        self._local_addr = (
            Address.parse(local_addr) if isinstance(local_addr, str) else local_addr
        )
        self._identity: Identity | None = (
            identity if isinstance(identity, Identity) else None
        )
        if self._identity is not None and self._local_addr is not None:
            if self._local_addr != self._identity.addr:
                raise ValueError(
                    f"local_addr {self._local_addr} differs from identity address"
                    f" {self._identity.addr}: pass one or make them equal"
                )
        self._core: SwimCore | None = None
        self._timers: list[_QueuedTimer] = []
        self._sequence = 0
        self._timer_handle: asyncio.TimerHandle | None = None
        self._stopped: asyncio.Event | None = None
        self._running = False
        self._reannounce_generation = 0
        # The core's connection state after the last _drain, to notice when
        # the node falls back to disconnected.
        self._last_connection_state = ConnectionState.DISCONNECTED
        self._events = _EventStream()
        self._tasks: set[asyncio.Task[None]] = set()
        self.error_counts: Counter[str] = Counter()
        self.received_counts: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.notification_listeners: list[Callable[[Notification], None]] = []

    # -- public state ---------------------------------------------------------

    @property
    def events(self) -> AsyncIterator[Event]:
        """Membership and connection events, for ``async for``."""
        return self._events.__aiter__()

    @property
    def identity(self) -> Identity:
        """Our current identity; it changes on renewal and rejoin."""
        if self._core is not None:
            return self._core.identity
        return self._resolve_identity()

    @property
    def config(self) -> Config:
        return self._config

    @property
    def running(self) -> bool:
        return self._running

    @property
    def connection_state(self) -> ConnectionState:
        if self._core is None:
            return ConnectionState.DISCONNECTED
        return self._core.connection_state

    @property
    def incarnation(self) -> int:
        return 0 if self._core is None else self._core.incarnation

    def members(self) -> list[Member]:
        """Return the active members (Alive or Suspect), ourselves excluded."""
        return [] if self._core is None else list(self._core.iter_members())

    def membership_state(self) -> list[Member]:
        """Return every known member, Down ones included."""
        return [] if self._core is None else list(self._core.iter_membership_state())

    # -- lifecycle ------------------------------------------------------------

    async def run(self) -> None:
        """Join through discovery and serve until ``stop()`` is called.

        Each run starts from an empty member list under the current identity,
        so ``run`` after ``stop`` rejoins the cluster. Raises RuntimeError if
        the node is already running, and ConfigError if the identity is too
        long for ``max_packet_size``.
        """
        if self._running:
            raise RuntimeError("Swim.run() called while the node is already running")
        identity = self._resolve_identity()
        self._check_identity_fits(identity)
        self._identity = identity
        self._running = True
        self._stopped = asyncio.Event()
        self._core = SwimCore(
            identity,
            self._config,
            self._codec,
            self._rng,
            broadcast_handler=self._broadcast_handler,
        )
        self._last_connection_state = self._core.connection_state
        self._transport.set_receiver(self._on_datagram)
        logger.info("swim node starting identity=%s", identity)
        try:
            await self._bootstrap()
            await self._stopped.wait()
        finally:
            self._shutdown()

    def stop(self) -> None:
        """Stop a running node without leaving; calling it again does nothing."""
        if self._stopped is not None and not self._stopped.is_set():
            self._stopped.set()

    def _shutdown(self) -> None:
        self._transport.set_receiver(None)
        if self._timer_handle is not None:
            self._timer_handle.cancel()
            self._timer_handle = None
        self._timers.clear()
        if self._core is not None:
            self._identity = self._core.identity
        self._running = False
        self._events.publish(None)
        logger.info("swim node stopped identity=%s", self._identity)

    def _check_identity_fits(self, identity: Identity) -> None:
        # Every datagram starts with a header naming us and the receiver.
        # With the receiver's identity as long as ours, a header that leaves
        # no room for COUNT means every send would fail with EncodeError.
        header = self._codec.encode_header(Header(identity, 0, identity, Ping(0)))
        needed = len(header) + COUNT_SIZE
        limit = self._config.max_packet_size
        if needed > limit:
            raise ConfigError(
                f"identity {identity} needs {needed} bytes for a Ping header and"
                f" its update count, more than max_packet_size ({limit}): use a"
                " shorter identity id or a larger max_packet_size"
            )

    def _resolve_identity(self) -> Identity:
        if self._identity is not None:
            return self._identity
        requested = self._requested_identity
        opaque = requested.encode() if isinstance(requested, str) else requested
        assert not isinstance(opaque, Identity)
        addr = self._local_addr or self._transport.local_address
        if addr.ip.is_unspecified:
            raise ValueError(
                f"cannot advertise the wildcard address {addr}: pass local_addr="
                " with the address other members should send to"
            )
        return Identity(addr, opaque, 0)

    async def _bootstrap(self) -> None:
        # Announce at once so a joiner learns the cluster within one round
        # trip, then again on a doubling delay until some member replies.
        # foca accepts an Announce addressed to any identity with its
        # address, so the peers' full identities are not needed here.
        if self._discovery is None:
            return
        await self._announce_to_discovered()
        self._restart_reannounce()
        self._arm_timer()

    def _restart_reannounce(self) -> None:
        # Start the doubling re-announce over; a cadence already queued
        # stops at its next tick because its generation is stale.
        if self._discovery is None:
            return
        self._reannounce_generation += 1
        self._push_timer(
            _Reannounce(_FIRST_REANNOUNCE_DELAY, self._reannounce_generation),
            _FIRST_REANNOUNCE_DELAY,
        )

    async def _announce_to_discovered(self) -> None:
        if self._discovery is None or self._core is None:
            return
        try:
            peers = await self._discovery.peers()
        except Exception:
            logger.exception("discovery failed, will retry")
            return
        own = self.identity.addr
        for addr in peers:
            if addr != own and self._core is not None:
                self.announce(addr)

    # -- API calls that feed the core ----------------------------------------

    def announce(self, addr: Address | str) -> None:
        """Send an Announce to the member listening on ``addr``."""
        target = Address.parse(addr) if isinstance(addr, str) else addr
        self._call(lambda core: core.announce(Identity(target)))

    def gossip(self) -> None:
        """Send Gossip to ``num_indirect_probes`` random active members."""
        self._call(lambda core: core.gossip())

    def add_broadcast(self, data: bytes) -> bool:
        """Queue a custom broadcast item; return whether the handler found it new."""
        return bool(self._call(lambda core: core.add_broadcast(data), reraise=True))

    def send_broadcast(self) -> None:
        """Send Broadcast messages with the pending custom broadcasts now."""
        self._call(lambda core: core.broadcast())

    def apply_many(self, updates: Iterable[Member], do_broadcast: bool = True) -> None:
        """Apply member updates from outside the protocol, such as a saved list.

        See ``SwimCore.apply_many``. With ``do_broadcast`` False the updates
        are not gossiped, which suits a list that the other members already
        have.
        """
        self._call(lambda core: core.apply_many(updates, do_broadcast))

    def leave(self) -> None:
        """Gossip our departure, then stop taking part: the node becomes undead."""
        self._call(lambda core: core.leave_cluster())

    def renew(self) -> Identity:
        """Switch to the renewed identity and return it."""
        core = self._require_core()
        renewed = core.identity.renew()
        if renewed is None:
            raise SwimError(f"identity {core.identity} cannot be renewed any further")
        self._call(lambda c: c.change_identity(renewed), reraise=True)
        return renewed

    def _require_core(self) -> SwimCore:
        if self._core is None or not self._running:
            raise RuntimeError("the node is not running: await swim.run() first")
        return self._core

    def _call(
        self, action: Callable[[SwimCore], object], reraise: bool = False
    ) -> object:
        core = self._require_core()
        try:
            return action(core)
        except SwimError as exc:
            self.error_counts[exc.error_class] += 1
            if reraise:
                raise
            logger.debug("core call failed error=%s", exc)
            return None
        finally:
            self._drain()

    # -- inputs ---------------------------------------------------------------

    def _on_datagram(self, data: bytes, source: Address) -> None:
        core = self._core
        if core is None:
            return
        try:
            core.handle_data(data)
        except SwimError as exc:
            self._count_error(exc, f"datagram from {source}")
        except Exception:
            # A bug in the core must not take the node down with it.
            self.error_counts["other"] += 1
            logger.exception("unexpected error on datagram from=%s", source)
        self._drain()

    def _on_timer_due(self) -> None:
        self._timer_handle = None
        now = asyncio.get_running_loop().time()
        while self._timers and self._timers[0][0] <= now:
            timer = heapq.heappop(self._timers)[2]
            if isinstance(timer, _Reannounce):
                self._on_reannounce(timer)
                continue
            self._fire(timer)
        self._arm_timer()

    def _fire(self, timer: Timer) -> None:
        core = self._core
        if core is None:
            return
        try:
            core.handle_timer(timer)
        except SwimError as exc:
            self._count_error(exc, f"timer {type(timer).__name__}")
        except Exception:
            self.error_counts["other"] += 1
            logger.exception("unexpected error on timer %r", timer)
        self._drain()

    def _on_reannounce(self, timer: _Reannounce) -> None:
        if timer.generation != self._reannounce_generation or self._core is None:
            return
        if self._core.connection_state is not ConnectionState.DISCONNECTED:
            return
        task = asyncio.get_running_loop().create_task(self._announce_to_discovered())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        delay = min(timer.delay * 2, _MAX_REANNOUNCE_DELAY)
        self._push_timer(_Reannounce(delay, timer.generation), delay)

    def _count_error(self, exc: SwimError, context: str) -> None:
        # Each class is logged as a warning at its 1st, 10th and 100th
        # occurrence and every 1000th after, so a flood of bad datagrams
        # shows in the log without filling it. error_counts has every one.
        error_class = exc.error_class
        self.error_counts[error_class] += 1
        count = self.error_counts[error_class]
        if not (count in (1, 10, 100) or count % 1000 == 0):
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("%s rejected error=%s", context, exc)
            return
        if error_class == "data_from_ourselves":
            logger.warning(
                "%s claims our identity or address (is another node"
                " configured with our address?) count=%d error=%s",
                context,
                count,
                exc,
            )
        else:
            logger.warning(
                "%s failed class=%s count=%d error=%s",
                context,
                error_class,
                count,
                exc,
            )

    # -- outputs --------------------------------------------------------------

    def _drain(self) -> None:
        core = self._core
        if core is None:
            return
        outputs = core.take_outputs()
        for send in outputs.sends:
            self._transport.send(send.data, send.dst.addr)
        for schedule in outputs.schedules:
            self._push_timer(schedule.timer, schedule.delay)
        for notification in outputs.notifications:
            self._notify(notification)
        state = core.connection_state
        if (
            state is ConnectionState.DISCONNECTED
            and self._last_connection_state is not ConnectionState.DISCONNECTED
        ):
            # The node lost its last member (Idle) or changed its identity
            # (renew, or a rejoin after TurnUndead), which stops the core's
            # periodic timers. When every member renewed at once, each one's
            # gossip went to identities that no longer exist, so only an
            # Announce, which is accepted by address, reconnects them.
            self._restart_reannounce()
        self._last_connection_state = state
        self._arm_timer()

    def _push_timer(self, timer: Timer | _Reannounce, delay: float) -> None:
        deadline = asyncio.get_running_loop().time() + delay
        self._sequence += 1
        heapq.heappush(self._timers, (deadline, self._sequence, timer))

    def _arm_timer(self) -> None:
        if not self._timers or not self._running:
            return
        deadline = self._timers[0][0]
        handle = self._timer_handle
        if handle is not None:
            if handle.when() <= deadline:
                return
            handle.cancel()
        loop = asyncio.get_running_loop()
        self._timer_handle = loop.call_at(deadline, self._on_timer_due)

    def _notify(self, notification: Notification) -> None:
        for listener in self.notification_listeners:
            listener(notification)
        if isinstance(notification, DataReceived):
            header = notification.header
            name = MESSAGE_NAMES[type(header.message)]
            addr = header.src.addr
            text = _addr_texts.get(addr)
            if text is None:
                if len(_addr_texts) >= _MAX_ADDR_TEXTS:
                    _addr_texts.clear()
                text = _addr_texts[addr] = str(addr)
            self.received_counts[text][name] += 1
            return
        event = _to_event(notification)
        if event is not None:
            if event.kind in (EventKind.ACTIVE, EventKind.IDLE, EventKind.DEFUNCT):
                logger.info(
                    "connection state %s identity=%s", event.kind.value, self.identity
                )
            self._events.publish(event)


def _to_event(notification: Notification) -> Event | None:
    now = time.time()
    match notification:
        case MemberUp(id=member):
            return Event(EventKind.MEMBER_UP, now, member)
        case MemberSuspect(id=member):
            return Event(EventKind.MEMBER_SUSPECT, now, member)
        case MemberDown(id=member):
            return Event(EventKind.MEMBER_DOWN, now, member)
        case Rename(old=old, new=new):
            return Event(EventKind.MEMBER_RENAMED, now, new, old)
        case Active():
            return Event(EventKind.ACTIVE, now)
        case Idle():
            return Event(EventKind.IDLE, now)
        case Defunct():
            return Event(EventKind.DEFUNCT, now)
        case Rejoin(id=member):
            return Event(EventKind.REJOIN, now, member)
        case _:
            return None

"""The sans-IO SWIM state machine, behaving as foca 1.0.

Theory of operation
-------------------

``SwimCore`` owns one member's view of the cluster and does no I/O. The
driver feeds it three kinds of input: datagrams (``handle_data``), timers it
scheduled earlier (``handle_timer``) and API calls (``announce``, ``gossip``,
``leave_cluster`` and the rest). Each input appends outputs to three queues,
which the driver drains with ``take_outputs()`` after every call, also after
a call that raised: datagrams to send, timers to schedule after a relative
delay, and notifications. The core reads no clock, and all its randomness
comes from the injected ``random.Random``, so a seeded run is reproducible.

A datagram is a codec-encoded header, then a big-endian u16 COUNT and COUNT
codec-encoded member updates, then custom broadcast items, each a big-endian
u16 length and that many bytes, up to the end of the datagram. Announce and
TurnUndead are the header alone, and Broadcast has no COUNT.

Every accepted datagram first applies ``Alive(src, src_incarnation)``: that
is how newcomers and refutations spread. Updates about other members merge
by the SWIM suspicion order and are re-queued for dissemination only when
they changed something. The table contains one record per address. Another
identity at a known address replaces the stored one (a rename) unless the
stored one wins the address conflict. Updates about
ourselves are handled apart: a suspicion raises our incarnation, which every
later message carries, and a Down makes us renew our identity or go undead.

Probing runs on timers. ProbeRandomMember judges the previous probe (no Ack
and no ForwardedAck means Suspect, with a ChangeSuspectToDown timer) and
pings the next member in a shuffled round-robin. SendIndirectProbe, after
``probe_rtt``, sends PingReq to ``num_indirect_probes`` members, which ping
it for us. Every timer but RemoveDown carries the token current when it was
scheduled. The token changes whenever the instance goes idle or undead,
changes identity or reuses a Down identity, which cancels every timer
scheduled before.

Connection state: DISCONNECTED until an active member is known, CONNECTED
while one is, UNDEAD after ``leave_cluster()`` or after our identity was
declared Down and could not be renewed. Only a connected instance probes
and replies to messages, apart from TurnUndead notices, but every instance
applies the updates it receives.

Errors follow foca's order of checks. Size, header, sender and framing
errors are raised before any state changes. A bad custom broadcast tail and
an indirect probe message naming ourselves raise only after the sender and
the updates were applied and any reply was queued.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, assert_never

from swim_py.broadcast import (
    LENGTH_PREFIX_SIZE,
    MAX_ITEMS_PER_PACKET,
    BroadcastHandler,
    Broadcasts,
    NoCustomBroadcast,
)
from swim_py.codec import Codec
from swim_py.config import Config
from swim_py.errors import (
    CustomBroadcastError,
    DataFromOurselvesError,
    DataTooBigError,
    EncodeError,
    IncompleteProbeCycleError,
    IndirectForOurselvesError,
    InvalidConfigError,
    MalformedPacketError,
    NotConnectedError,
    NotUndeadError,
    SameIdentityError,
    SwimError,
)
from swim_py.events import (
    Active,
    ChangeSuspectToDown,
    ConnectionState,
    DataReceived,
    Defunct,
    Idle,
    MemberDown,
    MemberSuspect,
    MemberUp,
    Notification,
    PeriodicAnnounce,
    PeriodicAnnounceDown,
    PeriodicGossip,
    ProbeRandomMember,
    Rejoin,
    RemoveDown,
    Rename,
    Schedule,
    Send,
    SendIndirectProbe,
    Timer,
)
from swim_py.identity import Address, Identity
from swim_py.members import ApplySummary, Conflict, Members
from swim_py.payload import (
    MAX_INCARNATION,
    Ack,
    Announce,
    Broadcast,
    Feed,
    ForwardedAck,
    Gossip,
    Header,
    IndirectAck,
    IndirectPing,
    Member,
    Message,
    Ping,
    PingReq,
    State,
    TurnUndead,
)
from swim_py.probe import Probe

__all__ = ["Outputs", "SwimCore"]

logger = logging.getLogger(__name__)

COUNT_SIZE = 2
_ZERO_COUNT = bytes(COUNT_SIZE)
# Timer tokens are a wrapping u8, as in foca.
_TOKEN_MASK = 0xFF
# A Feed samples at least this many members, whatever the estimate of how
# many fit, as in foca.
_MIN_FEED_MEMBERS = 5


@dataclass(slots=True)
class Outputs:
    """Everything queued since the last ``take_outputs()``, in order of queueing.

    Handle ``sends`` first, then ``schedules``, then ``notifications``.
    """

    sends: list[Send] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)


_WITHOUT_UPDATES = (Announce, TurnUndead, Broadcast)
_WITHOUT_CUSTOM_BROADCASTS = (Announce, TurnUndead)


def _carries_updates(message: Message) -> bool:
    # Every message but Announce, TurnUndead and Broadcast has COUNT + updates.
    return not isinstance(message, _WITHOUT_UPDATES)


def _allows_custom_broadcasts(message: Message) -> bool:
    return not isinstance(message, _WITHOUT_CUSTOM_BROADCASTS)


class SwimCore:
    """One SWIM member: membership state, probing and dissemination, no I/O.

    ``codec`` encodes and decodes headers and members. ``rng`` provides every
    random choice. ``broadcast_handler`` receives custom broadcast items. The
    default, ``NoCustomBroadcast``, rejects them all.
    """

    def __init__(
        self,
        identity: Identity,
        config: Config,
        codec: Codec,
        rng: random.Random,
        broadcast_handler: BroadcastHandler[Any] | None = None,
    ) -> None:
        handler: BroadcastHandler[Any] = (
            NoCustomBroadcast() if broadcast_handler is None else broadcast_handler
        )
        self._identity = identity
        self._config = config
        self._codec = codec
        self._rng = rng
        self._handler = handler
        self._incarnation = 0
        self._connection_state = ConnectionState.DISCONNECTED
        self._timer_token = 0
        self._members = Members(rng)
        self._probe = Probe()
        self._updates: Broadcasts[Address] = Broadcasts()
        self._custom_broadcasts: Broadcasts[Any] = Broadcasts(handler.invalidates)
        self._outputs = Outputs()

    # Queries

    @property
    def identity(self) -> Identity:
        return self._identity

    @property
    def incarnation(self) -> int:
        return self._incarnation

    @property
    def connection_state(self) -> ConnectionState:
        return self._connection_state

    @property
    def config(self) -> Config:
        return self._config

    def iter_members(self) -> Iterator[Member]:
        """Iterate over the active (Alive or Suspect) members."""
        return self._members.iter_active()

    def iter_membership_state(self) -> Iterator[Member]:
        """Iterate over every record, including Down members not yet removed."""
        return iter(self._members)

    def num_members(self) -> int:
        """Return the number of active members."""
        return self._members.num_active

    def updates_backlog(self) -> int:
        """Return how many cluster updates are waiting to be disseminated."""
        return len(self._updates)

    def custom_broadcast_backlog(self) -> int:
        """Return how many custom broadcast items are waiting to be disseminated."""
        return len(self._custom_broadcasts)

    def take_outputs(self) -> Outputs:
        """Return and clear the sends, schedules and notifications queued so far."""
        outputs, self._outputs = self._outputs, Outputs()
        return outputs

    # Inputs: API calls

    def announce(self, dst: Identity) -> None:
        """Send an Announce to ``dst``, which replies with a Feed if it accepts.

        Any identity with the right address works as ``dst``: the receiver
        accepts an Announce addressed to any identity at its address.
        """
        self._send_message(dst, Announce())

    def gossip(self) -> None:
        """Send a Gossip to ``num_indirect_probes`` random active members."""
        self._choose_and_send(self._config.num_indirect_probes, Gossip())

    def broadcast(self) -> None:
        """Send Broadcast messages carrying only custom broadcast items.

        Picks up to ``num_indirect_probes`` random active members that
        ``should_add_broadcast_data`` accepts, and stops once the backlog is
        empty. Does nothing while the custom broadcast backlog is empty.
        """
        if not self._custom_broadcasts:
            return
        chosen = self._members.choose_active(
            self._config.num_indirect_probes, self._handler.should_add_broadcast_data
        )
        while chosen:
            self._send_message(chosen.pop().id, Broadcast())
            if not self._custom_broadcasts:
                break

    def add_broadcast(self, data: bytes) -> bool:
        """Offer ``data`` to the broadcast handler and return True if it was queued.

        Raises MalformedPacketError for empty data, DataTooBigError for data
        longer than ``max_packet_size``, and CustomBroadcastError when the
        handler rejects it. The size check ignores the header, so an accepted
        item may still be too large to fit in any packet.
        """
        if not data:
            raise MalformedPacketError("custom broadcast data is empty")
        if len(data) > self._config.max_packet_size:
            raise DataTooBigError(
                f"custom broadcast of {len(data)} bytes is larger than"
                f" max_packet_size ({self._config.max_packet_size})"
            )
        try:
            key = self._handler.receive_item(bytes(data), None)
        except Exception as exc:
            raise CustomBroadcastError(
                f"broadcast handler rejected the item: {exc}"
            ) from exc
        if key is None:
            return False
        self._custom_broadcasts.add_or_replace(
            key, bytes(data), self._config.max_transmissions
        )
        return True

    def leave_cluster(self) -> None:
        """Gossip our own Down update, then go undead (emitting Defunct).

        The instance stays usable: ``change_identity`` or
        ``reuse_down_identity`` bring it back.
        """
        self._queue_update(Member(self._identity, 0, State.DOWN))
        self.gossip()
        self._become_undead()

    def change_identity(self, new: Identity) -> None:
        """Switch to ``new``, declare the old identity Down and gossip.

        Resets the incarnation to 0 and cancels every pending timer. Members
        and backlogs are kept. The instance is disconnected until a message
        addressed to ``new`` is accepted. Raises SameIdentityError if ``new``
        is the current identity.

        The core sends nothing more on its own until then. When every member
        changes identity at about the same time (a TurnUndead exchange after
        a partition), each gossip goes to an identity that no longer exists
        and is dropped, so the driver must announce again, as ``Swim`` does
        to its discovery peers. ``Rejoin`` is emitted after this method
        when a TurnUndead made the core renew.
        """
        if new == self._identity:
            raise SameIdentityError(f"already using identity {new}")
        previous_is_down = self._connection_state is ConnectionState.UNDEAD
        previous, self._identity = self._identity, new
        self._reset()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("changed identity previous=%s new=%s", previous, new)
        if not previous_is_down:
            self._queue_update(Member(previous, 0, State.DOWN))
        self.gossip()

    def reuse_down_identity(self) -> None:
        """Leave the undead state keeping the current identity.

        Meant for identities that cannot renew: wait ``remove_down_after``
        so the cluster forgets us, call this, then ``announce``. Raises
        NotUndeadError unless the instance is undead.
        """
        if self._connection_state is not ConnectionState.UNDEAD:
            raise NotUndeadError(
                f"reuse_down_identity needs the undead state, not"
                f" {self._connection_state.value}"
            )
        self._reset()

    def apply_many(self, updates: Iterable[Member], do_broadcast: bool) -> None:
        """Apply cluster updates from outside the protocol, such as a saved state.

        With ``do_broadcast`` False, the changes are not queued for
        dissemination. Updates about our own identity are handled as if
        received, and updates about another identity at our address become
        Down updates.
        """
        for update in updates:
            if update.id == self._identity:
                self._handle_self_update(update.incarnation, update.state)
            elif update.id.addr == self._identity.addr:
                # Stale news about an identity we no longer use, or another
                # process claiming our address: either way it is Down.
                self._apply_update(Member(update.id, 0, State.DOWN), do_broadcast)
            else:
                self._apply_update(update, do_broadcast)
        self._adjust_connection_state()

    def set_config(self, config: Config) -> None:
        """Replace the configuration, keeping the running timers.

        Raises InvalidConfigError, and changes nothing, when ``config``
        changes ``probe_period`` or ``probe_rtt`` or turns on a periodic task
        that is off. Turning periodic tasks off or changing them is allowed.
        """
        old = self._config
        if config.probe_period != old.probe_period:
            raise InvalidConfigError(
                "probe_period cannot change at runtime: create a new SwimCore"
            )
        if config.probe_rtt != old.probe_rtt:
            raise InvalidConfigError(
                "probe_rtt cannot change at runtime: create a new SwimCore"
            )
        for name in (
            "periodic_announce",
            "periodic_announce_to_down_members",
            "periodic_gossip",
        ):
            if getattr(old, name) is None and getattr(config, name) is not None:
                raise InvalidConfigError(
                    f"{name} cannot be turned on at runtime: create a new SwimCore"
                )
        self._config = config

    # Inputs: datagrams

    def handle_data(self, data: bytes) -> None:
        """Process one received datagram.

        Raises, before any state change: DataTooBigError, DecodeError,
        DataFromOurselvesError, and MalformedPacketError for a 1-byte tail or
        an Announce with a tail. A datagram addressed to another identity is
        dropped silently. Raises after the state changed and replies were
        queued: IndirectForOurselvesError, and MalformedPacketError or
        CustomBroadcastError for a bad custom broadcast tail.
        """
        if len(data) > self._config.max_packet_size:
            raise DataTooBigError(
                f"datagram of {len(data)} bytes is larger than max_packet_size"
                f" ({self._config.max_packet_size})"
            )
        header, offset = self._codec.decode_header(data, 0)
        self._check_sender_and_framing(header, len(data) - offset)

        if not self._accepts(header):
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("dropped datagram for dst=%s", header.dst)
            return

        updates, offset = self._decode_updates(header, data, offset)
        self._outputs.notifications.append(DataReceived(header))

        src = header.src
        sender = Member(src, header.src_incarnation, State.ALIVE)
        if not self._apply_update(sender, do_broadcast=True):
            self._on_inactive_sender(header)
            return

        self.apply_many(updates, do_broadcast=True)
        broadcast_error = self._receive_custom_broadcasts(data, offset, src)

        if self._connection_state is ConnectionState.CONNECTED:
            self._react(header)
        if broadcast_error is not None:
            raise broadcast_error

    def _check_sender_and_framing(self, header: Header, remaining: int) -> None:
        # Identity equality and address equality are independent, so check both.
        if header.src == self._identity or header.src.addr == self._identity.addr:
            raise DataFromOurselvesError(
                f"datagram claims our identity or address as src ({header.src})"
            )
        if remaining == 1:
            raise MalformedPacketError("datagram has a 1-byte tail after the header")
        if isinstance(header.message, Announce) and remaining > 0:
            raise MalformedPacketError(
                f"Announce has {remaining} bytes after the header: expected none"
            )

    def _accepts(self, header: Header) -> bool:
        # An Announce may name any identity at our address, because a joiner
        # cannot know the renewal of the member it announces to.
        if header.dst == self._identity:
            return True
        return (
            isinstance(header.message, Announce)
            and header.dst.addr == self._identity.addr
        )

    def _decode_updates(
        self, header: Header, data: bytes, offset: int
    ) -> tuple[list[Member], int]:
        # Every update decodes before anything applies, so a bad one changes
        # nothing. Broadcast has no COUNT: its whole tail is broadcast items.
        updates: list[Member] = []
        if len(data) - offset < COUNT_SIZE or isinstance(header.message, Broadcast):
            return updates, offset
        count = int.from_bytes(data[offset : offset + COUNT_SIZE], "big")
        offset += COUNT_SIZE
        decode_member = self._codec.decode_member
        for _ in range(count):
            member, offset = decode_member(data, offset)
            updates.append(member)
        return updates, offset

    def _on_inactive_sender(self, header: Header) -> None:
        # The sender is known Down or lost an address conflict, so its updates
        # and broadcasts are untrusted. A TurnUndead still counts: otherwise
        # two members that each think the other is Down would keep sending
        # TurnUndead until one forgets the other.
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("ignored payload from inactive src=%s", header.src)
        if isinstance(header.message, TurnUndead):
            self._handle_self_update(0, State.DOWN)
        if self._config.notify_down_members:
            self._send_message(header.src, TurnUndead())

    def _receive_custom_broadcasts(
        self, data: bytes, offset: int, sender: Identity
    ) -> SwimError | None:
        # Returns the error instead of raising it, because the message is
        # still handled before the error reaches the caller.
        end = len(data)
        if 0 < end - offset < LENGTH_PREFIX_SIZE + 1:
            return MalformedPacketError(
                f"custom broadcast tail of {end - offset} bytes: expected at least 3"
            )
        while end - offset > LENGTH_PREFIX_SIZE:
            length = int.from_bytes(data[offset : offset + LENGTH_PREFIX_SIZE], "big")
            offset += LENGTH_PREFIX_SIZE
            if length == 0 or length > end - offset:
                return MalformedPacketError(
                    f"custom broadcast item length {length} at offset"
                    f" {offset - LENGTH_PREFIX_SIZE}: expected 1 to {end - offset}"
                )
            item = bytes(data[offset : offset + length])
            offset += length
            try:
                key = self._handler.receive_item(item, sender)
            except Exception as exc:
                error = CustomBroadcastError(
                    f"broadcast handler rejected an item from {sender}: {exc}"
                )
                error.__cause__ = exc
                return error
            if key is not None:
                self._custom_broadcasts.add_or_replace(
                    key, item, self._config.max_transmissions
                )
        if offset < end:
            return MalformedPacketError(
                f"custom broadcast tail ends with {end - offset} stray bytes"
            )
        return None

    # Reactions to a message, while connected

    def _react(self, header: Header) -> None:
        src = header.src
        message = header.message
        match message:
            case Ping():
                self._send_message(src, Ack(message.probe_number))
            case Ack():
                self._on_ack(src, message)
            case PingReq():
                self._on_ping_req(src, message)
            case IndirectPing():
                self._on_indirect_ping(src, message)
            case IndirectAck():
                self._on_indirect_ack(src, message)
            case ForwardedAck():
                self._on_forwarded_ack(src, message)
            case Announce():
                self._send_message(src, Feed())
            case TurnUndead():
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("src=%s considers us down", src)
                self._handle_self_update(0, State.DOWN)
            case Gossip() | Feed() | Broadcast():
                pass
            case _:
                assert_never(message)

    def _on_ack(self, src: Identity, message: Ack) -> None:
        if self._probe.receive_ack(src, message.probe_number):
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("probe succeeded member=%s", src)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "unexpected Ack src=%s probe_number=%d current=%d",
                src,
                message.probe_number,
                self._probe.probe_number,
            )

    def _on_ping_req(self, src: Identity, message: PingReq) -> None:
        if message.target == self._identity:
            raise IndirectForOurselvesError(f"PingReq from {src} targets us")
        self._send_message(message.target, IndirectPing(src, message.probe_number))

    def _on_indirect_ping(self, src: Identity, message: IndirectPing) -> None:
        if message.origin == self._identity:
            raise IndirectForOurselvesError(f"IndirectPing from {src} has us as origin")
        self._send_message(src, IndirectAck(message.origin, message.probe_number))

    def _on_indirect_ack(self, src: Identity, message: IndirectAck) -> None:
        if message.target == self._identity:
            raise IndirectForOurselvesError(f"IndirectAck from {src} targets us")
        self._send_message(message.target, ForwardedAck(src, message.probe_number))

    def _on_forwarded_ack(self, src: Identity, message: ForwardedAck) -> None:
        if message.origin == self._identity:
            raise IndirectForOurselvesError(f"ForwardedAck from {src} has us as origin")
        if self._probe.receive_indirect_ack(src, message.probe_number):
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("indirect probe succeeded member=%s", self._probe.target)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("unexpected ForwardedAck src=%s", src)

    # Inputs: timers

    def handle_timer(self, timer: Timer) -> None:
        """Handle a timer that this instance scheduled, after its delay.

        A timer whose token is stale does nothing. Raises NotConnectedError
        for a current ProbeRandomMember while not connected, and
        IncompleteProbeCycleError when the previous probe's SendIndirectProbe
        never fired (that probe is dropped without suspicion and a new probe
        starts).
        """
        match timer:
            case SendIndirectProbe():
                self._on_send_indirect_probe(timer)
            case ProbeRandomMember():
                self._on_probe_random_member(timer)
            case ChangeSuspectToDown():
                self._on_change_suspect_to_down(timer)
            case PeriodicAnnounce():
                self._on_periodic_announce(timer)
            case PeriodicGossip():
                self._on_periodic_gossip(timer)
            case RemoveDown():
                # Not token-checked: a Down record is forgotten even after the
                # instance changed identity or went idle.
                self._members.remove_if_down(timer.id)
            case PeriodicAnnounceDown():
                self._on_periodic_announce_down(timer)
            case _:
                assert_never(timer)

    def _on_send_indirect_probe(self, timer: SendIndirectProbe) -> None:
        if timer.token != self._timer_token:
            return
        # Marked before the other checks: reaching this point at all is what
        # makes the probe valid at the next ProbeRandomMember.
        self._probe.mark_indirect_stage_reached()
        probed = timer.probed_id
        if not self._probe.is_probing(probed) or self._probe.succeeded():
            return
        # A renamed or Down target leaves the cycle without an indirect stage.
        if not self._members.is_active(probed):
            return

        helpers = self._members.choose_active(
            self._config.num_indirect_probes, exclude=probed
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "no Ack in time, probing indirectly member=%s helpers=%d",
                probed,
                len(helpers),
            )
        probe_number = self._probe.probe_number
        while helpers:
            helper = helpers.pop().id
            self._probe.expect_indirect_ack(helper)
            self._send_message(helper, PingReq(probed, probe_number))

    def _on_probe_random_member(self, timer: ProbeRandomMember) -> None:
        if timer.token != self._timer_token:
            return
        if self._connection_state is not ConnectionState.CONNECTED:
            raise NotConnectedError(
                f"ProbeRandomMember fired while {self._connection_state.value}"
            )

        incomplete = not self._probe.is_valid()
        if incomplete:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "probe of %s never reached its indirect stage", self._probe.target
                )
            self._probe.clear()

        failed = self._probe.take_failed()
        if failed is not None:
            self._suspect_failed_target(failed)

        target = self._members.next()
        if target is not None:
            probe_number = self._probe.start(target)
            self._send_message(target.id, Ping(probe_number))
            self._schedule(
                SendIndirectProbe(target.id, self._timer_token), self._config.probe_rtt
            )

        self._schedule(ProbeRandomMember(self._timer_token), self._config.probe_period)
        if incomplete:
            raise IncompleteProbeCycleError(
                "the previous probe's SendIndirectProbe timer never fired;"
                " check that the driver delivers every scheduled timer"
            )

    def _suspect_failed_target(self, failed: Member) -> None:
        # The target is suspected at the incarnation it had when the probe
        # started. The timer is scheduled even when the member was already
        # Suspect, so one member may have several pending.
        as_suspect = Member(failed.id, failed.incarnation, State.SUSPECT)
        summary = self._members.apply_existing_if(as_suspect, None)
        if summary is None:
            return
        self._handle_apply_summary(summary, as_suspect, do_broadcast=True)
        if not summary.is_active_now:
            return
        if logger.isEnabledFor(logging.DEBUG) and summary.apply_successful:
            logger.debug("probe failed, suspecting member=%s", failed.id)
        self._schedule(
            ChangeSuspectToDown(failed.id, failed.incarnation, self._timer_token),
            self._config.suspect_to_down_after,
        )

    def _on_change_suspect_to_down(self, timer: ChangeSuspectToDown) -> None:
        if timer.token != self._timer_token:
            return
        as_down = Member(timer.member_id, timer.incarnation, State.DOWN)
        # A refutation always raises the incarnation, so an unchanged
        # incarnation means the suspicion is still valid.
        summary = self._members.apply_existing_if(
            as_down, lambda known: known.incarnation == timer.incarnation
        )
        if summary is None:
            return
        self._handle_apply_summary(summary, as_down, do_broadcast=True)
        self._adjust_connection_state()
        # NOTE: foca 1.0 sends TurnUndead whenever the address is still known,
        # even when the member refuted the suspicion and stays Alive. With
        # notify_down_members on, a refuting member then renews its identity.
        # This copies foca for wire fidelity.
        if self._config.notify_down_members:
            self._send_message(timer.member_id, TurnUndead())

    def _on_periodic_announce(self, timer: PeriodicAnnounce) -> None:
        params = self._config.periodic_announce
        if not self._periodic_timer_is_current(timer.token) or params is None:
            return
        self._schedule(PeriodicAnnounce(self._timer_token), params.frequency)
        self._choose_and_send(params.num_members, Announce())

    def _on_periodic_gossip(self, timer: PeriodicGossip) -> None:
        params = self._config.periodic_gossip
        if not self._periodic_timer_is_current(timer.token) or params is None:
            return
        self._schedule(PeriodicGossip(self._timer_token), params.frequency)
        if self._updates or self._custom_broadcasts:
            self._choose_and_send(params.num_members, Gossip())

    def _on_periodic_announce_down(self, timer: PeriodicAnnounceDown) -> None:
        params = self._config.periodic_announce_to_down_members
        if not self._periodic_timer_is_current(timer.token) or params is None:
            return
        self._schedule(PeriodicAnnounceDown(self._timer_token), params.frequency)
        chosen = self._members.choose_down(params.num_members)
        while chosen:
            self._send_message(chosen.pop().id, Announce())

    def _periodic_timer_is_current(self, token: int) -> bool:
        return (
            token == self._timer_token
            and self._connection_state is ConnectionState.CONNECTED
        )

    # Applying updates

    def _apply_update(self, update: Member, do_broadcast: bool) -> bool:
        """Apply an update about another member and return whether it is active now.

        An update that lost its address conflict counts as inactive.
        """
        summary = self._members.apply(update)
        if summary.apply_successful or summary.changed_active_set:
            self._handle_apply_summary(summary, update, do_broadcast)
        elif summary.replaced is not None or summary.became_suspect:
            self._handle_apply_summary(summary, update, do_broadcast)
        if (
            summary.conflict is Conflict.LOST
            or summary.conflict is Conflict.FAILED_CONDITION
        ):
            return False
        return summary.is_active_now

    def _handle_apply_summary(
        self, summary: ApplySummary, update: Member, do_broadcast: bool
    ) -> None:
        id = update.id
        if summary.apply_successful:
            if do_broadcast:
                self._queue_update(update)
            # Down is final for an identity, so forget it later to let the
            # same identity join again.
            if not summary.is_active_now:
                self._schedule(RemoveDown(id), self._config.remove_down_after)
        if summary.replaced is not None:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("renamed member previous=%s new=%s", summary.replaced, id)
            self._notify(Rename(summary.replaced, id))
        if summary.changed_active_set:
            if summary.is_active_now:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("member up member=%s", id)
                self._notify(MemberUp(id))
            else:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("member down member=%s", id)
                self._notify(MemberDown(id))
        if summary.became_suspect:
            self._notify(MemberSuspect(id))

    def _queue_update(self, update: Member) -> None:
        self._updates.add_or_replace(
            update.id.addr,
            self._codec.encode_member(update),
            self._config.max_transmissions,
        )

    def _handle_self_update(self, incarnation: int, state: State) -> None:
        match state:
            case State.ALIVE:
                # We never adopt an incarnation that another member reports.
                pass
            case State.SUSPECT:
                self._refute_suspicion(incarnation)
            case State.DOWN:
                # Down cannot be refuted: rejoin under a new identity if possible.
                if not self._attempt_rejoin():
                    self._become_undead()
            case _:
                assert_never(state)

    def _refute_suspicion(self, suspected: int) -> None:
        # A suspicion of an older incarnation is stale and needs no raise.
        # One of a newer incarnation than ours is unexpected, but refuted too.
        raise_incarnation = self._incarnation <= suspected
        highest = max(suspected, self._incarnation)
        if highest == MAX_INCARNATION:
            # No incarnation is left to refute with.
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("suspected at the maximum incarnation")
            if not self._attempt_rejoin():
                self._become_undead()
            return
        if raise_incarnation:
            self._incarnation = highest + 1
        # Every message we send now carries the new incarnation, which
        # receivers apply as Alive. Gossip spreads it sooner, and also when
        # the suspicion was stale.
        self.gossip()

    def _attempt_rejoin(self) -> bool:
        new = self._identity.renew()
        if new is None or new == self._identity:
            return False
        if not new.win_addr_conflict(self._identity):
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "renewed identity %s does not win over %s", new, self._identity
                )
            return False
        self.change_identity(new)
        self._notify(Rejoin(new))
        return True

    # Connection state

    def _adjust_connection_state(self) -> None:
        match self._connection_state:
            case ConnectionState.DISCONNECTED:
                if self._members.num_active > 0:
                    self._become_connected()
            case ConnectionState.CONNECTED:
                if self._members.num_active == 0:
                    self._become_disconnected()
            case ConnectionState.UNDEAD:
                pass
            case _:
                assert_never(self._connection_state)

    def _become_connected(self) -> None:
        self._connection_state = ConnectionState.CONNECTED
        config = self._config
        token = self._timer_token
        self._schedule(ProbeRandomMember(token), config.probe_period)
        if config.periodic_announce is not None:
            self._schedule(PeriodicAnnounce(token), config.periodic_announce.frequency)
        down = config.periodic_announce_to_down_members
        if down is not None:
            self._schedule(PeriodicAnnounceDown(token), down.frequency)
        if config.periodic_gossip is not None:
            self._schedule(PeriodicGossip(token), config.periodic_gossip.frequency)
        self._notify(Active())

    def _become_disconnected(self) -> None:
        # With no active member left, our own view is unreliable: stop
        # probing and drop every pending timer.
        self._connection_state = ConnectionState.DISCONNECTED
        self._next_timer_token()
        self._probe.clear()
        self._notify(Idle())

    def _become_undead(self) -> None:
        self._connection_state = ConnectionState.UNDEAD
        self._probe.clear()
        self._next_timer_token()
        self._notify(Defunct())

    def _reset(self) -> None:
        self._connection_state = ConnectionState.DISCONNECTED
        self._incarnation = 0
        self._next_timer_token()
        self._probe.clear()

    def _next_timer_token(self) -> None:
        self._timer_token = (self._timer_token + 1) & _TOKEN_MASK

    # Sending

    def _choose_and_send(self, count: int, message: Message) -> None:
        chosen = self._members.choose_active(count)
        while chosen:
            self._send_message(chosen.pop().id, message)

    def _send_message(self, dst: Identity, message: Message) -> None:
        """Build one datagram for ``dst`` within ``max_packet_size`` and queue it.

        Raises EncodeError, sending nothing, when the header alone does not fit.
        """
        max_size = self._config.max_packet_size
        header = Header(self._identity, self._incarnation, dst, message)
        data: bytes | bytearray = self._codec.encode_header(header)
        if len(data) > max_size:
            raise EncodeError(
                f"{type(message).__name__} header of {len(data)} bytes does not"
                f" fit in max_packet_size ({max_size})"
            )

        # COUNT goes in, even as zero, whenever more than its own 2 bytes fit.
        if _carries_updates(message) and max_size - len(data) > COUNT_SIZE:
            if isinstance(message, Feed) or self._updates:
                buffer = bytearray(data)
                count_at = len(buffer)
                buffer += bytes(COUNT_SIZE)
                if isinstance(message, Feed):
                    count = self._fill_feed(buffer, max_size, dst)
                else:
                    count = self._updates.fill(buffer, max_size, MAX_ITEMS_PER_PACKET)
                buffer[count_at : count_at + COUNT_SIZE] = count.to_bytes(
                    COUNT_SIZE, "big"
                )
                data = buffer
            else:
                # An empty backlog writes COUNT 0 and nothing else.
                data = data + _ZERO_COUNT

        if (
            len(data) < max_size
            and _allows_custom_broadcasts(message)
            and self._handler.should_add_broadcast_data(dst)
            and self._custom_broadcasts
        ):
            buffer = data if isinstance(data, bytearray) else bytearray(data)
            self._custom_broadcasts.fill_with_len_prefix(buffer, max_size)
            data = buffer

        self._outputs.sends.append(Send(dst, bytes(data)))

    def _fill_feed(self, buffer: bytearray, max_size: int, dst: Identity) -> int:
        # A Feed carries random active members other than dst, with their
        # current state, not the updates backlog. foca sizes the sample by
        # assuming each identity takes half the bytes used so far.
        remaining = max_size - len(buffer)
        identity_len = max((max_size - remaining) // 2, 1)
        requested = max(remaining // identity_len, _MIN_FEED_MEMBERS)
        chosen = self._members.choose_active(requested, exclude=dst)
        count = 0
        while chosen and count < MAX_ITEMS_PER_PACKET:
            encoded = self._codec.encode_member(chosen.pop())
            # Stop at the first member that does not fit, never cutting one.
            if len(buffer) + len(encoded) > max_size:
                break
            buffer += encoded
            count += 1
        return count

    # Outputs

    def _schedule(self, timer: Timer, delay: float) -> None:
        self._outputs.schedules.append(Schedule(timer, delay))

    def _notify(self, notification: Notification) -> None:
        self._outputs.notifications.append(notification)

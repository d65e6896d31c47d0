"""The items a codec encodes: headers, members and the message variants.

These mirror foca 1.0's `Header`, `Member`, `State` and `Message` types. The
datagram framing around them (COUNT, updates, custom broadcasts) is the core's
job, described in ``proto/DATAGRAM.md``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from swim_py.identity import Identity

MAX_INCARNATION = 0xFFFF
MAX_PROBE_NUMBER = 0xFF


class State(enum.IntEnum):
    """A member's liveness. The values are the wire values."""

    ALIVE = 0
    SUSPECT = 1
    DOWN = 2


@dataclass(frozen=True, slots=True)
class Member:
    """One cluster update: an identity, its incarnation and its state."""

    id: Identity
    incarnation: int
    state: State

    @property
    def is_active(self) -> bool:
        return self.state is not State.DOWN


@dataclass(frozen=True, slots=True)
class Ping:
    probe_number: int


@dataclass(frozen=True, slots=True)
class Ack:
    probe_number: int


@dataclass(frozen=True, slots=True)
class PingReq:
    """Ask the receiver to ping ``target`` for the sender."""

    target: Identity
    probe_number: int


@dataclass(frozen=True, slots=True)
class IndirectPing:
    """A ping sent by a helper on behalf of ``origin``."""

    origin: Identity
    probe_number: int


@dataclass(frozen=True, slots=True)
class IndirectAck:
    """The probed member's reply to a helper, to be forwarded to ``target``."""

    target: Identity
    probe_number: int


@dataclass(frozen=True, slots=True)
class ForwardedAck:
    """A helper's report to the prober that ``origin`` replied."""

    origin: Identity
    probe_number: int


@dataclass(frozen=True, slots=True)
class Announce:
    """A request to join: the receiver replies with a Feed."""


@dataclass(frozen=True, slots=True)
class Feed:
    """The reply to an Announce. Its updates are active members."""


@dataclass(frozen=True, slots=True)
class Gossip:
    """A message that exists only to carry updates and custom broadcasts."""


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A message whose whole payload is custom broadcast items."""


@dataclass(frozen=True, slots=True)
class TurnUndead:
    """The sender considers the receiver Down."""


Message = (
    Ping
    | Ack
    | PingReq
    | IndirectPing
    | IndirectAck
    | ForwardedAck
    | Announce
    | Feed
    | Gossip
    | Broadcast
    | TurnUndead
)

# Message type names as in the schema's `Header.message` oneof, in foca's order.
MESSAGE_NAMES: dict[type, str] = {
    Ping: "ping",
    Ack: "ack",
    PingReq: "ping_req",
    IndirectPing: "indirect_ping",
    IndirectAck: "indirect_ack",
    ForwardedAck: "forwarded_ack",
    Announce: "announce",
    Feed: "feed",
    Gossip: "gossip",
    Broadcast: "broadcast",
    TurnUndead: "turn_undead",
}


@dataclass(frozen=True, slots=True)
class Header:
    """The start of every datagram: sender, its incarnation, receiver, message."""

    src: Identity
    src_incarnation: int
    dst: Identity
    message: Message

"""Notifications, timers and outputs that SwimCore hands to its driver.

The names mirror foca 1.0's ``Notification`` and ``Timer`` variants. A driver
delivers every ``Schedule`` back through ``SwimCore.handle_timer`` after its
delay. Timers that become due at the same moment should be handled in
``timer_sort_key`` order, which is foca's ``Timer`` ordering.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from swim_py.identity import Identity
from swim_py.payload import Header

__all__ = [
    "Active",
    "ChangeSuspectToDown",
    "ConnectionState",
    "DataReceived",
    "Defunct",
    "Idle",
    "MemberDown",
    "MemberSuspect",
    "MemberUp",
    "Notification",
    "PeriodicAnnounce",
    "PeriodicAnnounceDown",
    "PeriodicGossip",
    "ProbeRandomMember",
    "Rejoin",
    "RemoveDown",
    "Rename",
    "Schedule",
    "Send",
    "SendIndirectProbe",
    "Timer",
    "timer_sort_key",
]


class ConnectionState(enum.Enum):
    """Whether the instance takes part in the cluster.

    DISCONNECTED: no active member is known (the initial state).
    CONNECTED: at least one active member is known, so the instance probes
    and replies.
    UNDEAD: our identity was declared Down and could not be renewed, or we
    left. Only ``change_identity`` and ``reuse_down_identity`` leave it.
    """

    DISCONNECTED = "disconnected"
    CONNECTED = "connected"
    UNDEAD = "undead"


# Notifications


@dataclass(frozen=True, slots=True)
class MemberUp:
    """The active set gained this identity's address."""

    id: Identity


@dataclass(frozen=True, slots=True)
class MemberDown:
    """A member that was active went Down.

    Not emitted for a member first learned about as Down.
    """

    id: Identity


@dataclass(frozen=True, slots=True)
class MemberSuspect:
    """A known member that was Alive is now Suspect, under the same identity.

    Not emitted for a new member learned about as Suspect, nor for a rename.
    A swim_py extension: foca 1.0 has no such notification. It reports an
    update that foca applies too, so it changes nothing on the wire.
    """

    id: Identity


@dataclass(frozen=True, slots=True)
class Rename:
    """A newer identity ``new`` replaced ``old`` at the same address."""

    old: Identity
    new: Identity


@dataclass(frozen=True, slots=True)
class Active:
    """The instance is connected: it has an active member under its current identity."""


@dataclass(frozen=True, slots=True)
class Idle:
    """Every known member left or was declared Down."""


@dataclass(frozen=True, slots=True)
class Defunct:
    """Our identity was declared Down, or we left the cluster.

    The instance stays undead until ``change_identity`` or
    ``reuse_down_identity``.
    """


@dataclass(frozen=True, slots=True)
class Rejoin:
    """We renewed our identity after being declared Down, instead of Defunct."""

    id: Identity


@dataclass(frozen=True, slots=True)
class DataReceived:
    """A datagram's header and updates decoded and it was addressed to us.

    Matches foca's ``unstable-notifications`` ``DataReceived``. It comes
    before any state change that the datagram causes.
    """

    header: Header


Notification: TypeAlias = (
    MemberUp
    | MemberDown
    | MemberSuspect
    | Rename
    | Active
    | Idle
    | Defunct
    | Rejoin
    | DataReceived
)


# Timers. ``order`` is the rank of each kind in foca's Timer ordering.


@dataclass(frozen=True, slots=True)
class SendIndirectProbe:
    """Start the indirect probe of ``probed_id`` unless it acked already."""

    order: ClassVar[int] = 0
    probed_id: Identity
    token: int


@dataclass(frozen=True, slots=True)
class ProbeRandomMember:
    """Judge the current probe, then probe the next member."""

    order: ClassVar[int] = 1
    token: int


@dataclass(frozen=True, slots=True)
class ChangeSuspectToDown:
    """Declare ``member_id`` Down unless its incarnation moved past ``incarnation``."""

    order: ClassVar[int] = 2
    member_id: Identity
    incarnation: int
    token: int


@dataclass(frozen=True, slots=True)
class PeriodicAnnounce:
    """Announce to random active members, then schedule itself again."""

    order: ClassVar[int] = 3
    token: int


@dataclass(frozen=True, slots=True)
class PeriodicGossip:
    """Gossip to random active members, then schedule itself again."""

    order: ClassVar[int] = 4
    token: int


@dataclass(frozen=True, slots=True)
class RemoveDown:
    """Forget ``id`` if it is still Down. It carries no token."""

    order: ClassVar[int] = 5
    id: Identity


@dataclass(frozen=True, slots=True)
class PeriodicAnnounceDown:
    """Announce to random Down members, then schedule itself again."""

    order: ClassVar[int] = 6
    token: int


Timer: TypeAlias = (
    SendIndirectProbe
    | ProbeRandomMember
    | ChangeSuspectToDown
    | PeriodicAnnounce
    | PeriodicGossip
    | RemoveDown
    | PeriodicAnnounceDown
)


def timer_sort_key(timer: Timer) -> int:
    """Return the rank for ordering timers of one instance that are due together.

    SendIndirectProbe < ProbeRandomMember < ChangeSuspectToDown <
    PeriodicAnnounce < PeriodicGossip < RemoveDown < PeriodicAnnounceDown,
    as in foca 1.0.
    """
    return timer.order


# Outputs


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` as one datagram to ``dst.addr``."""

    dst: Identity
    data: bytes


@dataclass(frozen=True, slots=True)
class Schedule:
    """Call ``handle_timer(timer)`` after ``delay`` seconds."""

    timer: Timer
    delay: float

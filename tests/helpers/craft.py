"""Build and parse datagrams by hand, and drive a single SwimCore in tests.

Datagrams use the real ``ProtobufCodec`` and the framing that foca 1.0
writes: header, big-endian u16 COUNT, members, then custom broadcast items
framed as big-endian u16 length and bytes.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from swim_py.broadcast import BroadcastHandler
from swim_py.codec import ProtobufCodec
from swim_py.config import Config
from swim_py.core import Outputs, SwimCore
from swim_py.events import (
    ProbeRandomMember,
    Schedule,
    SendIndirectProbe,
    Timer,
)
from swim_py.identity import MAX_RENEWAL, Identity
from swim_py.payload import Broadcast, Header, Member, Message, Ping, State
from tests.helpers.sim import sim_address

CODEC = ProtobufCodec()
# foca's unit tests seed their generator with 0xF0CA.
SEED = 0xF0CA


def ident(number: int, renewal: int = 0, id: bytes = b"") -> Identity:
    """Return the identity of member ``number``, at 127.0.0.1:(7000 + number)."""
    return Identity(sim_address(number), id, renewal)


def unrenewable(number: int) -> Identity:
    """Return an identity whose ``renew()`` gives None (renewal at the u64 limit)."""
    return Identity(sim_address(number), b"", MAX_RENEWAL)


ME = ident(1)


def alive(id: Identity, incarnation: int = 0) -> Member:
    return Member(id, incarnation, State.ALIVE)


def suspect(id: Identity, incarnation: int = 0) -> Member:
    return Member(id, incarnation, State.SUSPECT)


def down(id: Identity, incarnation: int = 0) -> Member:
    return Member(id, incarnation, State.DOWN)


def new_core(
    identity: Identity = ME,
    config: Config | None = None,
    handler: BroadcastHandler[Any] | None = None,
    seed: int = SEED,
) -> SwimCore:
    return SwimCore(
        identity,
        config if config is not None else Config.simple(),
        CODEC,
        random.Random(seed),
        handler,
    )


def frame_items(*items: bytes) -> bytes:
    """Frame custom broadcast items as u16 BE length + bytes each."""
    return b"".join(len(item).to_bytes(2, "big") + item for item in items)


def datagram(
    src: Identity,
    dst: Identity,
    message: Message,
    updates: Iterable[Member] = (),
    *,
    src_incarnation: int = 0,
    count: bool | None = None,
    tail: bytes = b"",
) -> bytes:
    """Encode a datagram, with COUNT if there are updates or ``count`` is True."""
    members = list(updates)
    data = bytearray(CODEC.encode_header(Header(src, src_incarnation, dst, message)))
    if count or (count is None and members):
        data += len(members).to_bytes(2, "big")
        for member in members:
            data += CODEC.encode_member(member)
    data += tail
    return bytes(data)


@dataclass(frozen=True, slots=True)
class Parsed:
    """A decoded datagram. ``updates`` is None when it has no COUNT."""

    header: Header
    updates: list[Member] | None
    items: list[bytes]
    size: int

    @property
    def message(self) -> Message:
        return self.header.message


def parse(data: bytes) -> Parsed:
    """Decode a datagram as a receiver does, raising AssertionError on bad framing."""
    header, offset = CODEC.decode_header(data, 0)
    updates: list[Member] | None = None
    if len(data) - offset >= 2 and not isinstance(header.message, Broadcast):
        count = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        updates = []
        for _ in range(count):
            member, offset = CODEC.decode_member(data, offset)
            updates.append(member)
    items = []
    while offset < len(data):
        assert len(data) - offset > 2, f"stray tail bytes: {data[offset:].hex()}"
        length = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        assert 0 < length <= len(data) - offset, f"bad item length {length}"
        items.append(bytes(data[offset : offset + length]))
        offset += length
    return Parsed(header, updates, items, len(data))


def sent(outputs: Outputs) -> list[tuple[Identity, Parsed]]:
    return [(send.dst, parse(send.data)) for send in outputs.sends]


def sent_to(outputs: Outputs, dst: Identity) -> list[Parsed]:
    return [parse(send.data) for send in outputs.sends if send.dst == dst]


def only_sent_to(outputs: Outputs, dst: Identity) -> Parsed:
    """Return the one datagram sent to ``dst``, failing unless there is exactly one."""
    messages = sent_to(outputs, dst)
    assert len(messages) == 1, f"expected 1 datagram to {dst}, got {len(messages)}"
    return messages[0]


def scheduled(outputs: Outputs, kind: type[object]) -> list[Schedule]:
    return [s for s in outputs.schedules if isinstance(s.timer, kind)]


def apply(core: SwimCore, *members: Member) -> Outputs:
    """Apply updates with broadcast on, as foca's test-only ``apply`` does."""
    core.apply_many(members, do_broadcast=True)
    return core.take_outputs()


def receive(core: SwimCore, data: bytes) -> Outputs:
    core.handle_data(data)
    return core.take_outputs()


def fire(core: SwimCore, timer: Timer) -> Outputs:
    core.handle_timer(timer)
    return core.take_outputs()


@dataclass(slots=True)
class ProbingCore:
    """A core in the middle of a probe: the Ping went out, no reply yet."""

    core: SwimCore
    probed: Identity
    probe_number: int
    send_indirect_probe: SendIndirectProbe
    next_probe: ProbeRandomMember
    members: list[Identity]


def probing_core(num_members: int, config: Config | None = None) -> ProbingCore:
    """Return a core (ME) with members 2..num_members+1 that just pinged one of them."""
    core = new_core(config=config)
    members = [ident(number) for number in range(2, num_members + 2)]
    outputs = apply(core, *(alive(member) for member in members))
    [start] = scheduled(outputs, ProbeRandomMember)
    assert isinstance(start.timer, ProbeRandomMember)

    outputs = fire(core, start.timer)
    [(probed, ping)] = sent(outputs)
    assert isinstance(ping.message, Ping)
    [indirect] = scheduled(outputs, SendIndirectProbe)
    [next_probe] = scheduled(outputs, ProbeRandomMember)
    assert isinstance(indirect.timer, SendIndirectProbe)
    assert isinstance(next_probe.timer, ProbeRandomMember)
    return ProbingCore(
        core,
        probed,
        ping.message.probe_number,
        indirect.timer,
        next_probe.timer,
        members,
    )


def header_only(data: bytes) -> bool:
    """Return whether the datagram is a header with nothing after it."""
    _, offset = CODEC.decode_header(data, 0)
    return offset == len(data)


__all__ = [
    "CODEC",
    "ME",
    "SEED",
    "Parsed",
    "ProbingCore",
    "alive",
    "apply",
    "datagram",
    "down",
    "fire",
    "frame_items",
    "header_only",
    "ident",
    "new_core",
    "only_sent_to",
    "parse",
    "probing_core",
    "receive",
    "scheduled",
    "sent",
    "sent_to",
    "suspect",
    "unrenewable",
]

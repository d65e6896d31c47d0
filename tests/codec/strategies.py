"""Hypothesis strategies for headers, members and datagrams, and byte mutations.

The valid values cover the edges of each field: IPv4, IPv6 and IPv4-mapped
addresses, empty and long ids, renewals up to 2**64 - 1, incarnations up to
65535 and probe numbers up to 255. The mutations break a datagram the way a
corrupted or hostile sender would, at the framing level and inside the
protobuf items.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hypothesis import strategies as st

from swim_py.codec import ProtobufCodec, decode_varint, encode_varint
from swim_py.codec.datagram import Datagram
from swim_py.identity import Address, Identity
from swim_py.payload import (
    MAX_INCARNATION,
    MAX_PROBE_NUMBER,
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

CODEC = ProtobufCodec()

ips = st.one_of(
    st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1)),
    st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1)),
    # IPv4-mapped IPv6, which Rust and Python print differently.
    st.builds(
        lambda v4: ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + v4.packed),
        st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1)),
    ),
    st.sampled_from([ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]),
)
addresses = st.builds(Address, ips, st.integers(0, 65535))
identities = st.builds(
    Identity,
    addresses,
    st.one_of(st.binary(max_size=8), st.binary(min_size=100, max_size=300)),
    st.one_of(st.integers(0, 3), st.integers(0, 2**64 - 1)),
)
incarnations = st.one_of(
    st.sampled_from([0, 1, MAX_INCARNATION]), st.integers(0, MAX_INCARNATION)
)
probe_numbers = st.integers(0, MAX_PROBE_NUMBER)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(Ping, probe_numbers),
    st.builds(Ack, probe_numbers),
    st.builds(PingReq, identities, probe_numbers),
    st.builds(IndirectPing, identities, probe_numbers),
    st.builds(IndirectAck, identities, probe_numbers),
    st.builds(ForwardedAck, identities, probe_numbers),
    st.sampled_from([Announce(), Feed(), Gossip(), Broadcast(), TurnUndead()]),
)
headers = st.builds(Header, identities, incarnations, identities, messages)
members = st.builds(Member, identities, incarnations, st.sampled_from(list(State)))
broadcast_items = st.one_of(
    st.binary(min_size=1, max_size=12), st.binary(min_size=200, max_size=400)
)


@st.composite
def datagrams(draw: st.DrawFn) -> Datagram:
    """Draw a datagram whose sections a receiver reads back unchanged."""
    header = draw(headers)
    if isinstance(header.message, Announce):
        return Datagram(header, None, ())
    items = tuple(draw(st.lists(broadcast_items, max_size=3)))
    if isinstance(header.message, Broadcast):
        return Datagram(header, None, items)
    if draw(st.booleans()) and not items:
        return Datagram(header, None, ())
    updates = tuple(draw(st.lists(members, max_size=5)))
    return Datagram(header, updates, items)


@st.composite
def ambiguous_datagrams(draw: st.DrawFn) -> Datagram:
    """Draw a section layout that no sender can write unambiguously."""
    header = draw(headers)
    updates = tuple(draw(st.lists(members, max_size=2)))
    items = tuple(draw(st.lists(broadcast_items, min_size=1, max_size=2)))
    kind = draw(st.sampled_from(["announce", "broadcast", "no_count", "empty"]))
    if kind == "announce":
        layout = draw(st.sampled_from(["updates", "items"]))
        return Datagram(
            Header(header.src, header.src_incarnation, header.dst, Announce()),
            updates if layout == "updates" else None,
            items if layout == "items" else (),
        )
    if kind == "broadcast":
        return Datagram(
            Header(header.src, header.src_incarnation, header.dst, Broadcast()),
            updates,
            (),
        )
    message = draw(messages.filter(lambda m: not isinstance(m, Broadcast)))
    with_message = Header(header.src, header.src_incarnation, header.dst, message)
    if kind == "no_count":
        return Datagram(with_message, None, items)
    if isinstance(message, Announce):
        return Datagram(with_message, None, (b"",))
    return Datagram(with_message, updates, (*items, b""))


@dataclass(frozen=True)
class Parts:
    """A datagram as raw protobuf bodies, so mutations can edit inside items."""

    header_body: bytes
    member_bodies: tuple[bytes, ...] | None
    items: tuple[bytes, ...]

    @classmethod
    def of(cls, datagram: Datagram) -> Parts:
        header = _body(CODEC.encode_header(datagram.header))
        member_bodies = None
        if datagram.updates is not None:
            member_bodies = tuple(
                _body(CODEC.encode_member(member)) for member in datagram.updates
            )
        return cls(header, member_bodies, datagram.broadcasts)

    def assemble(self) -> bytes:
        out = bytearray(encode_varint(len(self.header_body)) + self.header_body)
        if self.member_bodies is not None:
            out += len(self.member_bodies).to_bytes(2, "big")
            for body in self.member_bodies:
                out += encode_varint(len(body)) + body
        for item in self.items:
            out += len(item).to_bytes(2, "big") + item
        return bytes(out)


def _body(item: bytes) -> bytes:
    length, start = decode_varint(item, 0)
    assert start + length == len(item)
    return item[start:]


# Field keys of swim.proto's known fields by wire type, for wire-type swaps:
# (field number, wire type the schema expects).
HEADER_FIELDS = [(1, 2), (2, 0), (3, 2), (4, 2), (9, 2), (14, 2)]
MEMBER_FIELDS = [(1, 2), (2, 0), (3, 0)]


def field_bytes(number: int, wire_type: int, payload: bytes) -> bytes:
    """Encode one field: its key, then ``payload``, the raw bytes of its value."""
    return encode_varint((number << 3) | wire_type) + payload


@st.composite
def unknown_fields(draw: st.DrawFn) -> bytes:
    """Draw one well-formed field that swim.proto does not declare."""
    number = draw(st.one_of(st.integers(15, 40), st.integers(2**28, 2**29 - 1)))
    wire_type = draw(st.sampled_from([0, 1, 2, 5, 3]))
    return draw(_field_of_type(number, wire_type))


@st.composite
def mistyped_fields(draw: st.DrawFn, known: list[tuple[int, int]]) -> bytes:
    """Draw a known field number with a wire type the schema does not give it."""
    number, expected = draw(st.sampled_from(known))
    wire_type = draw(st.sampled_from([t for t in (0, 1, 2, 5, 3) if t != expected]))
    return draw(_field_of_type(number, wire_type))


@st.composite
def _field_of_type(draw: st.DrawFn, number: int, wire_type: int) -> bytes:
    if wire_type == 0:
        payload = encode_varint(draw(st.integers(0, 2**64 - 1)))
    elif wire_type == 1:
        payload = draw(st.binary(min_size=8, max_size=8))
    elif wire_type == 5:
        payload = draw(st.binary(min_size=4, max_size=4))
    elif wire_type == 2:
        data = draw(st.binary(max_size=6))
        payload = encode_varint(len(data)) + data
    else:
        inner = field_bytes(number + 1, 0, encode_varint(draw(st.integers(0, 300))))
        end_key = encode_varint((number << 3) | 4)
        return field_bytes(number, 3, inner) + end_key
    return field_bytes(number, wire_type, payload)


def long_key(body: bytes, extra: int) -> bytes:
    """Re-encode the first field key of ``body`` with ``extra`` padding bytes."""
    key, start = decode_varint(body, 0)
    minimal = bytearray(encode_varint(key))
    minimal[-1] |= 0x80
    padded = minimal + b"\x80" * (extra - 1) + b"\x00"
    return bytes(padded) + body[start:]


def overflowing_varint_field(number: int) -> bytes:
    """Encode a varint field whose 10 bytes carry a value above 64 bits."""
    return field_bytes(number, 0, b"\xff" * 9 + b"\x02")


def nested_groups(number: int, depth: int) -> bytes:
    """``depth`` unknown groups nested inside each other, all empty."""
    start = encode_varint((number << 3) | 3)
    end = encode_varint((number << 3) | 4)
    return start * depth + end * depth


def with_length(body: bytes) -> bytes:
    return encode_varint(len(body)) + body

"""Codecs: how a Header and a Member become bytes and back.

The core frames whole datagrams (COUNT, updates, custom broadcasts) and asks a
codec for one item at a time, so every encoding must be self-delimiting.
``ProtobufCodec`` implements the schema in ``proto/swim.proto`` with
protobuf's length-delimited framing, the same bytes that ``rust_peer``'s prost
codec produces for foca 1.0. ``BincodeCodec`` produces the bytes of foca's
``bincode-codec`` feature with ``bincode::config::standard()``.
"""

from __future__ import annotations

import ipaddress
from typing import Protocol

from google.protobuf.message import DecodeError as _ProtobufDecodeError

from swim_py.codec import _fast_protobuf, _wire_rules
from swim_py.codec._generated import swim_pb2 as pb
from swim_py.codec.bincode import BincodeCodec
from swim_py.errors import DecodeError
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

__all__ = [
    "BincodeCodec",
    "Codec",
    "ProtobufCodec",
    "encode_varint",
    "decode_varint",
]

# A varint of a 64-bit value takes at most 10 bytes.
_MAX_VARINT_LEN = 10


class _HasField(Protocol):
    def HasField(self, field_name: str) -> bool: ...  # noqa: N802 (protobuf's name)


class Codec(Protocol):
    """The four operations the core needs, as foca's `Codec` trait.

    A decode reads exactly one item starting at ``offset`` and returns it with
    the offset just past it, or raises ``DecodeError``. An encode returns the
    item's complete bytes; the core checks whether they fit.
    """

    def encode_header(self, header: Header) -> bytes: ...

    def decode_header(self, data: bytes, offset: int) -> tuple[Header, int]: ...

    def encode_member(self, member: Member) -> bytes: ...

    def decode_member(self, data: bytes, offset: int) -> tuple[Member, int]: ...


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer as a protobuf base-128 varint."""
    if value < 0:
        raise ValueError(f"varint value must be non-negative, got {value}")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(data: bytes, offset: int) -> tuple[int, int]:
    """Decode a varint at ``offset``; return the value and the offset after it.

    Accepts non-minimal encodings up to 10 bytes, as protobuf runtimes do, and
    raises ``DecodeError`` for a truncated varint or one above 64 bits.
    """
    result = 0
    shift = 0
    end = min(len(data), offset + _MAX_VARINT_LEN)
    position = offset
    while position < end:
        byte = data[position]
        position += 1
        if position - offset == _MAX_VARINT_LEN and byte > 1:
            raise DecodeError(f"varint at offset {offset} overflows 64 bits")
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
    if position - offset == _MAX_VARINT_LEN:
        raise DecodeError(f"varint at offset {offset} is longer than 10 bytes")
    raise DecodeError(f"truncated varint at offset {offset}")


_STATE_TO_WIRE = {
    State.ALIVE: pb.STATE_ALIVE,
    State.SUSPECT: pb.STATE_SUSPECT,
    State.DOWN: pb.STATE_DOWN,
}
_STATE_FROM_WIRE = {wire: state for state, wire in _STATE_TO_WIRE.items()}


class ProtobufCodec:
    """Length-delimited ``swim.v1.Header`` and ``swim.v1.Member`` messages.

    Decoding rejects what the schema documents as invalid (missing required
    fields, out-of-range numbers, unknown states) with ``DecodeError`` and
    skips unknown fields. The codec keeps no per-node state, so one instance
    may serve many nodes.

    Items in canonical form (what the encoder writes) go through the
    hand-written ``_fast_protobuf`` module. Everything else goes through the
    protobuf runtime and prost's wire rules, which alone decide rejections.
    """

    def encode_header(self, header: Header) -> bytes:
        try:
            return _fast_protobuf.encode_header(header)
        except _fast_protobuf.NotCanonical:
            return self._encode_header_with_runtime(header)

    def _encode_header_with_runtime(self, header: Header) -> bytes:
        message = pb.Header(src_incarnation=header.src_incarnation)
        _fill_identity(message.src, header.src)
        _fill_identity(message.dst, header.dst)
        _fill_message(message, header.message)
        return _delimited(message.SerializeToString(deterministic=True))

    def decode_header(self, data: bytes, offset: int) -> tuple[Header, int]:
        start, end = _item_bounds(data, offset)
        if end <= len(data):
            try:
                return _fast_protobuf.decode_header(data, start, end), end
            except _fast_protobuf.NotCanonical:
                pass
        return self._decode_header_with_runtime(data, offset)

    def _decode_header_with_runtime(
        self, data: bytes, offset: int
    ) -> tuple[Header, int]:
        body, end = _read_delimited(data, offset, "header")
        message = pb.Header()
        _parse(message, body, "header")
        if not message.HasField("src"):
            raise DecodeError("header has no src identity")
        if not message.HasField("dst"):
            raise DecodeError("header has no dst identity")
        header = Header(
            src=_identity_from_wire(message.src, "header src"),
            src_incarnation=_incarnation(message.src_incarnation, "header"),
            dst=_identity_from_wire(message.dst, "header dst"),
            message=_message_from_wire(message),
        )
        return header, end

    def encode_member(self, member: Member) -> bytes:
        try:
            return _fast_protobuf.encode_member(member)
        except _fast_protobuf.NotCanonical:
            return self._encode_member_with_runtime(member)

    def _encode_member_with_runtime(self, member: Member) -> bytes:
        message = pb.Member(
            incarnation=member.incarnation, state=_STATE_TO_WIRE[member.state]
        )
        _fill_identity(message.id, member.id)
        return _delimited(message.SerializeToString(deterministic=True))

    def decode_member(self, data: bytes, offset: int) -> tuple[Member, int]:
        start, end = _item_bounds(data, offset)
        if end <= len(data):
            try:
                return _fast_protobuf.decode_member(data, start, end), end
            except _fast_protobuf.NotCanonical:
                pass
        return self._decode_member_with_runtime(data, offset)

    def _decode_member_with_runtime(
        self, data: bytes, offset: int
    ) -> tuple[Member, int]:
        body, end = _read_delimited(data, offset, "member")
        message = pb.Member()
        _parse(message, body, "member")
        if not message.HasField("id"):
            raise DecodeError("member has no id")
        state = _STATE_FROM_WIRE.get(message.state)
        if state is None:
            raise DecodeError(f"member has unknown state value {message.state}")
        member = Member(
            id=_identity_from_wire(message.id, "member id"),
            incarnation=_incarnation(message.incarnation, "member"),
            state=state,
        )
        return member, end


def _item_bounds(data: bytes, offset: int) -> tuple[int, int]:
    # The body's start and end after the length prefix, which may run past
    # the data. Raises DecodeError for a broken prefix, as _read_delimited.
    if offset < len(data) and data[offset] < 0x80:
        return offset + 1, offset + 1 + data[offset]
    length, start = decode_varint(data, offset)
    return start, start + length


def _delimited(body: bytes) -> bytes:
    return encode_varint(len(body)) + body


def _read_delimited(data: bytes, offset: int, what: str) -> tuple[bytes, int]:
    length, start = decode_varint(data, offset)
    end = start + length
    if end > len(data):
        raise DecodeError(
            f"{what} length prefix {length} at offset {offset} runs past the end"
            f" of the {len(data)}-byte datagram"
        )
    return bytes(data[start:end]), end


def _parse(message: pb.Header | pb.Member, body: bytes, what: str) -> None:
    # Bytes that are the canonical encoding of what upb parsed decode the
    # same in prost. Anything else goes through prost's rules first, because
    # upb accepts some bytes that prost rejects and the other way round.
    try:
        message.ParseFromString(body)
        message.DiscardUnknownFields()
        if message.SerializeToString(deterministic=True) == body:
            return
    except _ProtobufDecodeError:
        pass
    try:
        known_fields = _wire_rules.normalize(message.DESCRIPTOR, body)
    except _wire_rules.WireError as exc:
        raise DecodeError(f"invalid {what} protobuf: {exc}") from None
    message.Clear()
    try:
        message.ParseFromString(known_fields)
    except _ProtobufDecodeError as exc:
        raise DecodeError(f"invalid {what} protobuf: {exc}") from None


def _fill_identity(target: pb.Identity, identity: Identity) -> None:
    target.id = identity.id
    target.addr.ip = identity.addr.ip.packed
    target.addr.port = identity.addr.port
    target.renewal = identity.renewal


def _required_identity(parent: _HasField, field: str, what: str) -> Identity:
    if not parent.HasField(field):
        raise DecodeError(f"{what} is missing")
    identity: pb.Identity = getattr(parent, field)
    return _identity_from_wire(identity, what)


def _identity_from_wire(message: pb.Identity, what: str) -> Identity:
    if not message.HasField("addr"):
        raise DecodeError(f"{what} has no addr")
    packed = message.addr.ip
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    if len(packed) == 4:
        ip = ipaddress.IPv4Address(packed)
    elif len(packed) == 16:
        ip = ipaddress.IPv6Address(packed)
    else:
        raise DecodeError(f"{what} has a {len(packed)}-byte ip: expected 4 or 16")
    port = message.addr.port
    if port > 0xFFFF:
        raise DecodeError(f"{what} has port {port}: expected at most 65535")
    return Identity(Address(ip, port), bytes(message.id), message.renewal)


def _incarnation(value: int, what: str) -> int:
    if value > MAX_INCARNATION:
        raise DecodeError(f"{what} incarnation {value} is above {MAX_INCARNATION}")
    return value


def _probe_number(value: int, what: str) -> int:
    if value > MAX_PROBE_NUMBER:
        raise DecodeError(f"{what} probe number {value} is above {MAX_PROBE_NUMBER}")
    return value


def _fill_message(target: pb.Header, message: Message) -> None:
    match message:
        case Ping(probe_number=number):
            target.ping.probe_number = number
        case Ack(probe_number=number):
            target.ack.probe_number = number
        case PingReq(target=member, probe_number=number):
            _fill_identity(target.ping_req.target, member)
            target.ping_req.probe_number = number
        case IndirectPing(origin=member, probe_number=number):
            _fill_identity(target.indirect_ping.origin, member)
            target.indirect_ping.probe_number = number
        case IndirectAck(target=member, probe_number=number):
            _fill_identity(target.indirect_ack.target, member)
            target.indirect_ack.probe_number = number
        case ForwardedAck(origin=member, probe_number=number):
            _fill_identity(target.forwarded_ack.origin, member)
            target.forwarded_ack.probe_number = number
        case Announce():
            target.announce.SetInParent()
        case Feed():
            target.feed.SetInParent()
        case Gossip():
            target.gossip.SetInParent()
        case Broadcast():
            target.broadcast.SetInParent()
        case TurnUndead():
            target.turn_undead.SetInParent()
        case _:
            raise TypeError(f"not a message variant: {message!r}")


def _message_from_wire(message: pb.Header) -> Message:
    variant = message.WhichOneof("message")
    if variant == "ping":
        return Ping(_probe_number(message.ping.probe_number, "ping"))
    if variant == "ack":
        return Ack(_probe_number(message.ack.probe_number, "ack"))
    if variant == "ping_req":
        body = message.ping_req
        return PingReq(
            _required_identity(body, "target", "ping_req target"),
            _probe_number(body.probe_number, "ping_req"),
        )
    if variant == "indirect_ping":
        body_ip = message.indirect_ping
        return IndirectPing(
            _required_identity(body_ip, "origin", "indirect_ping origin"),
            _probe_number(body_ip.probe_number, "indirect_ping"),
        )
    if variant == "indirect_ack":
        body_ia = message.indirect_ack
        return IndirectAck(
            _required_identity(body_ia, "target", "indirect_ack target"),
            _probe_number(body_ia.probe_number, "indirect_ack"),
        )
    if variant == "forwarded_ack":
        body_fa = message.forwarded_ack
        return ForwardedAck(
            _required_identity(body_fa, "origin", "forwarded_ack origin"),
            _probe_number(body_fa.probe_number, "forwarded_ack"),
        )
    simple = _EMPTY_VARIANTS.get(variant or "")
    if simple is None:
        raise DecodeError("header has no message variant")
    return simple


_EMPTY_VARIANTS: dict[str, Message] = {
    "announce": Announce(),
    "feed": Feed(),
    "gossip": Gossip(),
    "broadcast": Broadcast(),
    "turn_undead": TurnUndead(),
}

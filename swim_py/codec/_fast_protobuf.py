"""Hand-written encoder and decoder for the canonical form of Header and Member.

``ProtobufCodec`` calls these before the protobuf runtime. The canonical
form is what upb's deterministic serializer writes for the schema in
``proto/swim.proto``: fields in ascending number order, scalar fields only
when non-zero, bytes fields only when non-empty, sub-messages whenever set,
shortest varints and no unknown fields. For a body in that form, the slow
path (parse with upb, re-serialize, compare) accepts it with the values
read here, so both paths return the same value.

``decode_header`` and ``decode_member`` raise ``NotCanonical`` for anything
else, including bytes that are canonical but invalid (a missing address, an
incarnation above 65535, an unknown state). The caller then runs the slow
path, which gives the verdict and error message of the protobuf runtime
plus prost's wire rules. So this module never decides a rejection.

The field numbers and types are fixed here. At import the module compares
them with the generated ``swim_pb2`` descriptors. When the schema differs
in any way (a renumbered field, a new variant), the module turns itself
off and every function raises NotCanonical. The codec then follows the
generated module alone, as the codec compatibility check expects.

Decoded identities are interned: one Identity object per distinct encoded
body, in a bounded dict, because a member receives the same few identities
in nearly every datagram and building an ``ipaddress`` object is slow.
Identity and Member are immutable, so sharing them is safe.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from swim_py.codec._generated import swim_pb2 as pb
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
    "NotCanonical",
    "decode_header",
    "decode_member",
    "encode_header",
    "encode_member",
]

# The number of interned identities and of cached identity encodings. When
# a cache is full it is emptied, which bounds the memory that a stream of
# distinct identities can take.
MAX_CACHED_IDENTITIES = 65536

_U32_MAX = 0xFFFFFFFF
_U64_MAX = 2**64 - 1

# Field keys, (field number << 3) | wire type, each one byte long.
_KEY_1_VARINT = 0x08
_KEY_1_LEN = 0x0A
_KEY_2_VARINT = 0x10
_KEY_2_LEN = 0x12
_KEY_3_VARINT = 0x18
_KEY_3_LEN = 0x1A
_LEN_WIRE_TYPE = 2

# Header.message oneof field numbers.
_PING = 4
_ACK = 5
_PING_REQ = 6
_INDIRECT_PING = 7
_INDIRECT_ACK = 8
_FORWARDED_ACK = 9
_FIRST_VARIANT = _PING
_LAST_VARIANT = 14

_EMPTY_BY_FIELD: dict[int, Message] = {
    10: Announce(),
    11: Feed(),
    12: Gossip(),
    13: Broadcast(),
    14: TurnUndead(),
}
_FIELD_BY_EMPTY_TYPE: dict[type, int] = {
    type(message): number for number, message in _EMPTY_BY_FIELD.items()
}
_IdentityVariant = type[PingReq | IndirectPing | IndirectAck | ForwardedAck]
_IDENTITY_VARIANTS: dict[int, _IdentityVariant] = {
    _PING_REQ: PingReq,
    _INDIRECT_PING: IndirectPing,
    _INDIRECT_ACK: IndirectAck,
    _FORWARDED_ACK: ForwardedAck,
}
# Ping and Ack objects are immutable, so one per probe number serves all.
_PINGS = tuple(Ping(number) for number in range(MAX_PROBE_NUMBER + 1))
_ACKS = tuple(Ack(number) for number in range(MAX_PROBE_NUMBER + 1))
_STATE_BY_WIRE = {1: State.SUSPECT, 2: State.DOWN}

_decoded_identities: dict[bytes, Identity] = {}
_encoded_identities: dict[Identity, tuple[bytes, bytes]] = {}


class NotCanonical(Exception):
    """The bytes are not a valid item in canonical form; use the slow path."""


# The layout this module implements: message name to (field name, number,
# type, message type name or ""), and the Header oneof's fields.
_BYTES = FieldDescriptor.TYPE_BYTES
_UINT32 = FieldDescriptor.TYPE_UINT32
_UINT64 = FieldDescriptor.TYPE_UINT64
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
_ENUM = FieldDescriptor.TYPE_ENUM
_PROBE_FIELD = ("probe_number", 1, _UINT32, "")
_EXPECTED_LAYOUT: dict[str, set[tuple[str, int, int, str]]] = {
    "Address": {("ip", 1, _BYTES, ""), ("port", 2, _UINT32, "")},
    "Identity": {
        ("id", 1, _BYTES, ""),
        ("addr", 2, _MESSAGE, "Address"),
        ("renewal", 3, _UINT64, ""),
    },
    "Member": {
        ("id", 1, _MESSAGE, "Identity"),
        ("incarnation", 2, _UINT32, ""),
        ("state", 3, _ENUM, ""),
    },
    "Ping": {_PROBE_FIELD},
    "Ack": {_PROBE_FIELD},
    "PingReq": {("target", 1, _MESSAGE, "Identity"), ("probe_number", 2, _UINT32, "")},
    "IndirectPing": {
        ("origin", 1, _MESSAGE, "Identity"),
        ("probe_number", 2, _UINT32, ""),
    },
    "IndirectAck": {
        ("target", 1, _MESSAGE, "Identity"),
        ("probe_number", 2, _UINT32, ""),
    },
    "ForwardedAck": {
        ("origin", 1, _MESSAGE, "Identity"),
        ("probe_number", 2, _UINT32, ""),
    },
    "Announce": set(),
    "Feed": set(),
    "Gossip": set(),
    "Broadcast": set(),
    "TurnUndead": set(),
}
_EXPECTED_VARIANTS = [
    ("ping", "Ping"),
    ("ack", "Ack"),
    ("ping_req", "PingReq"),
    ("indirect_ping", "IndirectPing"),
    ("indirect_ack", "IndirectAck"),
    ("forwarded_ack", "ForwardedAck"),
    ("announce", "Announce"),
    ("feed", "Feed"),
    ("gossip", "Gossip"),
    ("broadcast", "Broadcast"),
    ("turn_undead", "TurnUndead"),
]


def _layout_of(descriptor: Any) -> set[tuple[str, int, int, str]]:
    return {
        (
            field.name,
            field.number,
            field.type,
            field.message_type.name if field.message_type is not None else "",
        )
        for field in descriptor.fields
    }


def _generated_schema_matches() -> bool:
    """Return whether ``swim_pb2`` has exactly the layout implemented here."""
    try:
        for name, expected in _EXPECTED_LAYOUT.items():
            if _layout_of(getattr(pb, name).DESCRIPTOR) != expected:
                return False
        header = pb.Header.DESCRIPTOR
        fixed = {
            ("src", 1, _MESSAGE, "Identity"),
            ("src_incarnation", 2, _UINT32, ""),
            ("dst", 3, _MESSAGE, "Identity"),
        }
        oneof_fields = {
            (name, _FIRST_VARIANT + index, _MESSAGE, type_name)
            for index, (name, type_name) in enumerate(_EXPECTED_VARIANTS)
        }
        if _layout_of(header) != fixed | oneof_fields:
            return False
        oneofs = header.oneofs
        if len(oneofs) != 1 or oneofs[0].name != "message":
            return False
        if {field.name for field in oneofs[0].fields} != {
            name for name, _ in _EXPECTED_VARIANTS
        }:
            return False
        states = {value.name: value.number for value in pb.State.DESCRIPTOR.values}
        return states == {"STATE_ALIVE": 0, "STATE_SUSPECT": 1, "STATE_DOWN": 2}
    except AttributeError:
        return False


ENABLED = _generated_schema_matches()


# Decoding


def _read_varint(data: bytes, position: int, end: int) -> tuple[int, int]:
    # Shortest form only, at most 64 bits.
    result = 0
    shift = 0
    while position < end:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if (byte == 0 and shift) or result > _U64_MAX:
                raise NotCanonical
            return result, position
        shift += 7
        if shift > 63:
            break
    raise NotCanonical


def _read_length(data: bytes, position: int, end: int) -> tuple[int, int]:
    # The length of a length-delimited field; returns (value end, value start).
    if position < end and data[position] < 0x80:
        length = data[position]
        start = position + 1
    else:
        length, start = _read_varint(data, position, end)
    stop = start + length
    if stop > end:
        raise NotCanonical
    return stop, start


def _identity(data: bytes, start: int, end: int) -> Identity:
    # bytes() keeps a bytearray or memoryview slice hashable, and costs
    # nothing for a bytes slice, which is already bytes.
    key = bytes(data[start:end])
    identity = _decoded_identities.get(key)
    if identity is None:
        identity = _parse_identity(data, start, end)
        if len(_decoded_identities) >= MAX_CACHED_IDENTITIES:
            _decoded_identities.clear()
        _decoded_identities[key] = identity
    return identity


def _parse_identity(data: bytes, position: int, end: int) -> Identity:
    opaque = b""
    if position < end and data[position] == _KEY_1_LEN:
        stop, start = _read_length(data, position + 1, end)
        if stop == start:
            raise NotCanonical
        opaque = bytes(data[start:stop])
        position = stop
    if position >= end or data[position] != _KEY_2_LEN:
        raise NotCanonical
    addr_end, position = _read_length(data, position + 1, end)

    if position >= addr_end or data[position] != _KEY_1_LEN:
        raise NotCanonical
    ip_end, ip_start = _read_length(data, position + 1, addr_end)
    packed = bytes(data[ip_start:ip_end])
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    if len(packed) == 4:
        ip = ipaddress.IPv4Address(packed)
    elif len(packed) == 16:
        ip = ipaddress.IPv6Address(packed)
    else:
        raise NotCanonical
    position = ip_end
    port = 0
    if position < addr_end and data[position] == _KEY_2_VARINT:
        port, position = _read_varint(data, position + 1, addr_end)
        if port == 0 or port > 0xFFFF:
            raise NotCanonical
    if position != addr_end:
        raise NotCanonical

    renewal = 0
    if position < end and data[position] == _KEY_3_VARINT:
        renewal, position = _read_varint(data, position + 1, end)
        if renewal == 0:
            raise NotCanonical
    if position != end:
        raise NotCanonical
    return Identity(Address(ip, port), opaque, renewal)


def _probe_number(data: bytes, position: int, end: int, key: int) -> int:
    # An optional non-zero probe number that must end the message.
    number = 0
    if position < end and data[position] == key:
        number, position = _read_varint(data, position + 1, end)
        if number == 0 or number > MAX_PROBE_NUMBER:
            raise NotCanonical
    if position != end:
        raise NotCanonical
    return number


def _message(field: int, data: bytes, position: int, end: int) -> Message:
    if field == _PING:
        return _PINGS[_probe_number(data, position, end, _KEY_1_VARINT)]
    if field == _ACK:
        return _ACKS[_probe_number(data, position, end, _KEY_1_VARINT)]
    variant = _IDENTITY_VARIANTS.get(field)
    if variant is not None:
        if position >= end or data[position] != _KEY_1_LEN:
            raise NotCanonical
        stop, start = _read_length(data, position + 1, end)
        member = _identity(data, start, stop)
        return variant(member, _probe_number(data, stop, end, _KEY_2_VARINT))
    if position != end:
        raise NotCanonical
    return _EMPTY_BY_FIELD[field]


def decode_header(data: bytes, position: int, end: int) -> Header:
    """Decode the Header body ``data[position:end]`` or raise NotCanonical."""
    if not ENABLED or position >= end or data[position] != _KEY_1_LEN:
        raise NotCanonical
    stop, start = _read_length(data, position + 1, end)
    src = _identity(data, start, stop)
    position = stop

    incarnation = 0
    if position < end and data[position] == _KEY_2_VARINT:
        incarnation, position = _read_varint(data, position + 1, end)
        if incarnation == 0 or incarnation > MAX_INCARNATION:
            raise NotCanonical

    if position >= end or data[position] != _KEY_3_LEN:
        raise NotCanonical
    stop, start = _read_length(data, position + 1, end)
    dst = _identity(data, start, stop)
    position = stop

    if position >= end:
        raise NotCanonical
    key = data[position]
    field = key >> 3
    if key & 0x07 != _LEN_WIRE_TYPE or not _FIRST_VARIANT <= field <= _LAST_VARIANT:
        raise NotCanonical
    stop, start = _read_length(data, position + 1, end)
    if stop != end:
        raise NotCanonical
    return Header(src, incarnation, dst, _message(field, data, start, stop))


def decode_member(data: bytes, position: int, end: int) -> Member:
    """Decode the Member body ``data[position:end]`` or raise NotCanonical."""
    if not ENABLED or position >= end or data[position] != _KEY_1_LEN:
        raise NotCanonical
    stop, start = _read_length(data, position + 1, end)
    identity = _identity(data, start, stop)
    position = stop
    incarnation = 0
    if position < end and data[position] == _KEY_2_VARINT:
        incarnation, position = _read_varint(data, position + 1, end)
        if incarnation == 0 or incarnation > MAX_INCARNATION:
            raise NotCanonical
    state = State.ALIVE
    if position < end and data[position] == _KEY_3_VARINT:
        wire_state, position = _read_varint(data, position + 1, end)
        found = _STATE_BY_WIRE.get(wire_state)
        if found is None:
            raise NotCanonical
        state = found
    if position != end:
        raise NotCanonical
    return Member(identity, incarnation, state)


# Encoding


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(key: int, body: bytes) -> bytes:
    return bytes((key,)) + _varint(len(body)) + body


def _identity_fields(identity: Identity) -> tuple[bytes, bytes]:
    # The identity as field 1 (Header.src, Member.id and the targets and
    # origins of the probe messages) and as field 3 (Header.dst).
    fields = _encoded_identities.get(identity)
    if fields is not None:
        return fields
    addr = identity.addr
    addr_body = _field(_KEY_1_LEN, addr.ip.packed)
    if addr.port:
        addr_body += bytes((_KEY_2_VARINT,)) + _varint(addr.port)
    body = _field(_KEY_2_LEN, addr_body)
    if identity.id:
        body = _field(_KEY_1_LEN, bytes(identity.id)) + body
    if identity.renewal:
        body += bytes((_KEY_3_VARINT,)) + _varint(identity.renewal)
    fields = (_field(_KEY_1_LEN, body), _field(_KEY_3_LEN, body))
    if len(_encoded_identities) >= MAX_CACHED_IDENTITIES:
        _encoded_identities.clear()
    _encoded_identities[identity] = fields
    return fields


def _uint32(key: int, value: int) -> bytes:
    # A uint32 field in canonical form; out-of-range values go to the slow
    # path, whose protobuf runtime raises for them.
    if not 0 <= value <= _U32_MAX:
        raise NotCanonical
    if value == 0:
        return b""
    return bytes((key,)) + _varint(value)


def _variant_field(number: int, body: bytes) -> bytes:
    return _field((number << 3) | _LEN_WIRE_TYPE, body)


# Encoded Header.message fields of every Ping, Ack and empty variant.
_PING_FIELDS = tuple(
    _variant_field(_PING, _uint32(_KEY_1_VARINT, number))
    for number in range(MAX_PROBE_NUMBER + 1)
)
_ACK_FIELDS = tuple(
    _variant_field(_ACK, _uint32(_KEY_1_VARINT, number))
    for number in range(MAX_PROBE_NUMBER + 1)
)
_EMPTY_FIELDS: dict[type, bytes] = {
    type(message): _variant_field(number, b"")
    for number, message in _EMPTY_BY_FIELD.items()
}


def _message_field(message: Message) -> bytes:
    empty = _EMPTY_FIELDS.get(type(message))
    if empty is not None:
        return empty
    if isinstance(message, (Ping, Ack)):
        number = message.probe_number
        if not 0 <= number <= MAX_PROBE_NUMBER:
            return _variant_field(
                _PING if isinstance(message, Ping) else _ACK,
                _uint32(_KEY_1_VARINT, number),
            )
        return (_PING_FIELDS if isinstance(message, Ping) else _ACK_FIELDS)[number]
    if isinstance(message, PingReq):
        number, identity = _PING_REQ, message.target
    elif isinstance(message, IndirectPing):
        number, identity = _INDIRECT_PING, message.origin
    elif isinstance(message, IndirectAck):
        number, identity = _INDIRECT_ACK, message.target
    elif isinstance(message, ForwardedAck):
        number, identity = _FORWARDED_ACK, message.origin
    else:
        raise NotCanonical
    body = _identity_fields(identity)[0] + _uint32(_KEY_2_VARINT, message.probe_number)
    return _variant_field(number, body)


def encode_header(header: Header) -> bytes:
    """Return the length-delimited canonical Header, or raise NotCanonical."""
    if not ENABLED:
        raise NotCanonical
    incarnation = header.src_incarnation
    body = (
        _identity_fields(header.src)[0]
        + (b"" if incarnation == 0 else _uint32(_KEY_2_VARINT, incarnation))
        + _identity_fields(header.dst)[1]
        + _message_field(header.message)
    )
    length = len(body)
    if length < 0x80:
        return bytes((length,)) + body
    return _varint(length) + body


def encode_member(member: Member) -> bytes:
    """Return the length-delimited canonical Member, or raise NotCanonical."""
    if not ENABLED:
        raise NotCanonical
    body = (
        _identity_fields(member.id)[0]
        + _uint32(_KEY_2_VARINT, member.incarnation)
        + (bytes((_KEY_3_VARINT, member.state)) if member.state else b"")
    )
    return _varint(len(body)) + body

"""Protobuf wire checks that match prost 0.14, the decoder in rust_peer's codec.

Python's protobuf runtime (upb) and prost accept different sets of bytes:

- upb reads a known field with the wrong wire type as an unknown field,
  while prost rejects the message.
- upb accepts a varint whose 10th byte is above 1 (more than 64 bits) by
  dropping the high bits, while prost rejects it.
- upb rejects a field key longer than 5 bytes, while prost accepts any
  varint key up to 10 bytes whose value fits in a u32.
- prost allows fewer nested groups in unknown fields than upb: its depth
  budget is 100 for the top message, and each nested message and each
  group spends one.

``normalize`` applies prost's rules and returns the same message with only
its known fields and every key in its shortest form, which upb then parses
to the values prost decodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from google.protobuf.descriptor import Descriptor, FieldDescriptor

if TYPE_CHECKING:
    from google._upb._message import Descriptor as UpbDescriptor

    # The generated classes' DESCRIPTOR is one or the other, by backend.
    MessageDescriptor: TypeAlias = Descriptor | UpbDescriptor

__all__ = ["WireError", "normalize"]

_VARINT = 0
_I64 = 1
_LEN = 2
_START_GROUP = 3
_END_GROUP = 4
_I32 = 5

_WIRE_TYPE_NAMES = {
    _VARINT: "varint",
    _I64: "64-bit",
    _LEN: "length-delimited",
    _START_GROUP: "start group",
    _END_GROUP: "end group",
    _I32: "32-bit",
}

_FIELD_WIRE_TYPES = {
    FieldDescriptor.TYPE_UINT32: _VARINT,
    FieldDescriptor.TYPE_UINT64: _VARINT,
    FieldDescriptor.TYPE_INT32: _VARINT,
    FieldDescriptor.TYPE_INT64: _VARINT,
    FieldDescriptor.TYPE_SINT32: _VARINT,
    FieldDescriptor.TYPE_SINT64: _VARINT,
    FieldDescriptor.TYPE_BOOL: _VARINT,
    FieldDescriptor.TYPE_ENUM: _VARINT,
    FieldDescriptor.TYPE_FIXED64: _I64,
    FieldDescriptor.TYPE_SFIXED64: _I64,
    FieldDescriptor.TYPE_DOUBLE: _I64,
    FieldDescriptor.TYPE_FIXED32: _I32,
    FieldDescriptor.TYPE_SFIXED32: _I32,
    FieldDescriptor.TYPE_FLOAT: _I32,
    FieldDescriptor.TYPE_BYTES: _LEN,
    FieldDescriptor.TYPE_STRING: _LEN,
    FieldDescriptor.TYPE_MESSAGE: _LEN,
}

# prost's RECURSION_LIMIT. Decoding the top message spends one, so its
# fields start with one less.
_RECURSION_LIMIT = 100
_MAX_VARINT_LEN = 10
_MAX_KEY = 0xFFFFFFFF


class WireError(ValueError):
    """The bytes are not a message that prost 0.14 decodes."""


def normalize(descriptor: MessageDescriptor, body: bytes) -> bytes:
    """Check ``body`` against prost's rules and return its known fields.

    Raises WireError naming the first rule broken, with the byte offset into
    ``body``.
    """
    out = bytearray()
    _walk_message(descriptor, body, 0, len(body), _RECURSION_LIMIT - 1, out)
    return bytes(out)


def _read_varint(data: bytes, position: int, end: int) -> tuple[int, int]:
    """Decode a varint as prost does: at most 10 bytes and at most 64 bits."""
    start = position
    result = 0
    for count in range(_MAX_VARINT_LEN):
        if position >= end:
            break
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << (7 * count)
        if byte < 0x80:
            if count == _MAX_VARINT_LEN - 1 and byte >= 0x02:
                raise WireError(f"varint at offset {start} is larger than 64 bits")
            return result, position
    raise WireError(f"invalid varint at offset {start}: truncated or over 10 bytes")


def _read_key(data: bytes, position: int, end: int) -> tuple[int, int, int]:
    """Return the field number, the wire type and the offset after the key."""
    start = position
    key, position = _read_varint(data, position, end)
    if key > _MAX_KEY:
        raise WireError(f"field key {key} at offset {start} is larger than a u32")
    wire_type = key & 0x07
    if wire_type not in _WIRE_TYPE_NAMES:
        raise WireError(f"invalid wire type {wire_type} at offset {start}")
    number = key >> 3
    if number < 1:
        raise WireError(f"invalid field number 0 at offset {start}")
    return number, wire_type, position


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _walk_message(
    descriptor: MessageDescriptor,
    data: bytes,
    position: int,
    end: int,
    budget: int,
    out: bytearray,
) -> None:
    while position < end:
        number, wire_type, value_start = _read_key(data, position, end)
        field = descriptor.fields_by_number.get(number)
        if field is None:
            position = _skip_field(data, value_start, end, number, wire_type, budget)
            continue

        expected = _FIELD_WIRE_TYPES[field.type]
        if wire_type != expected:
            raise WireError(
                f"{descriptor.name}.{field.name} at offset {position} has wire type"
                f" {_WIRE_TYPE_NAMES[wire_type]}, expected"
                f" {_WIRE_TYPE_NAMES[expected]}"
            )
        out += _encode_varint((number << 3) | wire_type)
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if budget == 0:
                raise WireError(f"recursion limit reached at offset {position}")
            length, start = _read_varint(data, value_start, end)
            if length > end - start:
                raise WireError(
                    f"{descriptor.name}.{field.name} at offset {position} is"
                    f" {length} bytes long, past the end of its message"
                )
            message_type = field.message_type
            assert message_type is not None, "a message field has a message type"
            inner = bytearray()
            _walk_message(message_type, data, start, start + length, budget - 1, inner)
            out += _encode_varint(len(inner))
            out += inner
            position = start + length
        else:
            position = _skip_value(data, value_start, end, wire_type)
            out += data[value_start:position]


def _skip_value(data: bytes, position: int, end: int, wire_type: int) -> int:
    """Return the offset after one varint, fixed-size or length-delimited value."""
    if wire_type == _VARINT:
        return _read_varint(data, position, end)[1]
    if wire_type == _LEN:
        length, start = _read_varint(data, position, end)
        size = length
        position = start
    else:
        size = 8 if wire_type == _I64 else 4
    if size > end - position:
        raise WireError(f"value at offset {position} runs past the end of its message")
    return position + size


def _skip_field(
    data: bytes, position: int, end: int, number: int, wire_type: int, budget: int
) -> int:
    """Skip an unknown field as prost's ``skip_field`` does."""
    if budget == 0:
        raise WireError(f"recursion limit reached at offset {position}")
    if wire_type == _END_GROUP:
        raise WireError(f"unexpected end group tag before offset {position}")
    if wire_type != _START_GROUP:
        return _skip_value(data, position, end, wire_type)
    while True:
        inner_number, inner_type, position = _read_key(data, position, end)
        if inner_type == _END_GROUP:
            if inner_number != number:
                raise WireError(
                    f"end group tag for field {inner_number} closes group"
                    f" {number} before offset {position}"
                )
            return position
        position = _skip_field(
            data, position, end, inner_number, inner_type, budget - 1
        )

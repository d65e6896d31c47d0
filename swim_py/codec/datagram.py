"""Whole datagrams: the framing around the codec's headers and members.

A datagram is one codec-encoded header, then an optional big-endian u16
COUNT followed by COUNT codec-encoded members, then custom broadcast items,
each a big-endian u16 length and that many bytes, up to the end of the
datagram. ``proto/DATAGRAM.md`` describes the layout and which sections each
message type carries.

``decode_datagram`` applies the checks of foca 1.0's ``handle_data`` that
depend only on the bytes, in foca's order. It leaves out the checks that
depend on the receiver (a sender with the receiver's identity or address, a
``dst`` that is not the receiver), which ``SwimCore.handle_data`` adds.
"""

from __future__ import annotations

from typing import NamedTuple

from swim_py.codec import Codec
from swim_py.errors import DataTooBigError, DecodeError, MalformedPacketError
from swim_py.payload import Announce, Broadcast, Header, Member

__all__ = ["Datagram", "decode_datagram", "encode_datagram"]

# COUNT and each custom broadcast item's length are big-endian u16s.
_U16_SIZE = 2
_U16_MAX = 0xFFFF


class Datagram(NamedTuple):
    """A datagram split into its sections.

    ``updates`` is None when the datagram has no COUNT, which differs on the
    wire from a COUNT of 0. ``broadcasts`` contains the custom broadcast items
    without their length prefixes.
    """

    header: Header
    updates: tuple[Member, ...] | None
    broadcasts: tuple[bytes, ...]


def decode_datagram(
    codec: Codec, data: bytes, *, max_packet_size: int | None = None
) -> Datagram:
    """Split ``data`` into its sections, checking foca's framing rules in order.

    Raises DataTooBigError when ``data`` is longer than ``max_packet_size``
    (not checked when None), DecodeError when the codec rejects the header or
    an update, and MalformedPacketError for a 1-byte tail, an Announce with a
    tail, or a broken custom broadcast tail.
    """
    if max_packet_size is not None and len(data) > max_packet_size:
        raise DataTooBigError(
            f"datagram of {len(data)} bytes is longer than max_packet_size"
            f" ({max_packet_size})"
        )
    header, offset = codec.decode_header(data, 0)

    tail_len = len(data) - offset
    if tail_len == 1:
        raise MalformedPacketError("datagram has a 1-byte tail after the header")
    if isinstance(header.message, Announce) and tail_len > 0:
        raise MalformedPacketError(
            f"Announce has {tail_len} bytes after the header: expected none"
        )

    # foca reads COUNT for every message but Broadcast, TurnUndead included,
    # although no foca sender writes one after a TurnUndead.
    updates: tuple[Member, ...] | None = None
    if tail_len >= _U16_SIZE and not isinstance(header.message, Broadcast):
        count = int.from_bytes(data[offset : offset + _U16_SIZE], "big")
        offset += _U16_SIZE
        members = []
        for index in range(count):
            try:
                member, offset = codec.decode_member(data, offset)
            except DecodeError as exc:
                raise DecodeError(f"update {index} of {count}: {exc}") from exc
            members.append(member)
        updates = tuple(members)

    return Datagram(header, updates, _split_broadcasts(data, offset))


def _split_broadcasts(data: bytes, offset: int) -> tuple[bytes, ...]:
    end = len(data)
    if 0 < end - offset <= _U16_SIZE:
        raise MalformedPacketError(
            f"custom broadcast tail of {end - offset} bytes: expected none or at"
            " least 3"
        )
    items: list[bytes] = []
    while end - offset > _U16_SIZE:
        length = int.from_bytes(data[offset : offset + _U16_SIZE], "big")
        offset += _U16_SIZE
        if length == 0 or length > end - offset:
            raise MalformedPacketError(
                f"custom broadcast item {len(items)} has length {length}:"
                f" expected 1 to {end - offset}"
            )
        items.append(bytes(data[offset : offset + length]))
        offset += length
    if offset < end:
        raise MalformedPacketError(
            f"custom broadcast tail ends with {end - offset} stray bytes"
        )
    return tuple(items)


def encode_datagram(codec: Codec, datagram: Datagram) -> bytes:
    """Frame ``datagram`` so that ``decode_datagram`` reads back the same value.

    Raises ValueError for sections that a receiver would read as a different
    datagram. These are an Announce with anything after its header, a
    Broadcast with COUNT, and custom broadcast items without COUNT before
    them after any other message. Empty items, items longer than 65535 bytes
    and more than 65535 updates raise ValueError too.
    """
    _check_sections(datagram)
    parts = [codec.encode_header(datagram.header)]
    if datagram.updates is not None:
        if len(datagram.updates) > _U16_MAX:
            raise ValueError(
                f"{len(datagram.updates)} updates: COUNT is a u16, at most 65535"
            )
        parts.append(len(datagram.updates).to_bytes(_U16_SIZE, "big"))
        parts.extend(codec.encode_member(member) for member in datagram.updates)
    for item in datagram.broadcasts:
        if len(item) > _U16_MAX:
            raise ValueError(
                f"custom broadcast item of {len(item)} bytes: expected at most 65535"
            )
        parts.append(len(item).to_bytes(_U16_SIZE, "big"))
        parts.append(bytes(item))
    return b"".join(parts)


def _check_sections(datagram: Datagram) -> None:
    message = datagram.header.message
    if isinstance(message, Announce) and (
        datagram.updates is not None or datagram.broadcasts
    ):
        raise ValueError(
            "an Announce is the header alone: receivers reject any bytes after it"
        )
    if isinstance(message, Broadcast) and datagram.updates is not None:
        raise ValueError(
            "a Broadcast has no COUNT: receivers read the bytes after the header"
            " as custom broadcast items"
        )
    if (
        not isinstance(message, Broadcast)
        and datagram.updates is None
        and datagram.broadcasts
    ):
        raise ValueError(
            "custom broadcast items need a COUNT before them, even 0: receivers"
            " read the first two bytes after the header as COUNT"
        )
    if any(not item for item in datagram.broadcasts):
        raise ValueError("a custom broadcast item is empty: receivers reject length 0")

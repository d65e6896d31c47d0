"""foca's ``bincode-codec`` wire format: bincode 2 with ``config::standard()``.

foca's ``BincodeCodec(bincode::config::standard())`` serializes its serde types
``Header``, ``Member``, ``State`` and ``Message`` as bincode 2 does, checked
against bincode 2.0.1 with serde 1.0.228:

* ``u8`` (a probe number) is one raw byte.
* ``u16``, ``u32``, ``u64`` and enum variant indices (a ``u32``) are varints.
  A value up to 250 is one byte. Larger ones are a marker byte and the value
  in little-endian: ``0xFB`` + 2 bytes, ``0xFC`` + 4 bytes, ``0xFD`` + 8 bytes.
  Decoding accepts a wider marker than needed but rejects one wider than the
  target type, such as ``0xFC`` for a ``u16``.
* A struct is its fields in order, an enum is its variant index followed by
  the variant's fields.
* ``std::net::SocketAddr`` is variant ``V4=0`` or ``V6=1``, then 4 or 16 raw
  octets, then the port as a ``u16`` varint. IPv6 flow info and scope id are
  not sent.

Bincode identities are foca's ``SocketAddr`` (mode ``"socket-address"``) or
the ``ID { addr: SocketAddr, bump: u64 }`` struct of foca's example agent
(mode ``"addr-bump"``). Neither has an opaque id, so identities with a
non-empty ``Identity.id`` cannot be encoded.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Literal

from swim_py.errors import DecodeError
from swim_py.identity import Address, Identity, SocketAddrIdentity
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
    "IdentityMode",
    "decode_socket_addr",
    "decode_varint",
    "encode_socket_addr",
    "encode_varint",
]

IdentityMode = Literal["socket-address", "addr-bump"]

# bincode's varint markers (bincode 2 src/varint/mod.rs).
_SINGLE_BYTE_MAX = 250
_U16_MARKER = 0xFB
_U32_MARKER = 0xFC
_U64_MARKER = 0xFD
_U128_MARKER = 0xFE
# Payload width in bytes and the narrowest target (in bits) that accepts it.
_MARKERS = {
    _U16_MARKER: (2, 16),
    _U32_MARKER: (4, 32),
    _U64_MARKER: (8, 64),
    _U128_MARKER: (16, 128),
}

_MAX_U64 = 2**64 - 1
_VARIANT_BITS = 32

_SOCKET_ADDR_V4 = 0
_SOCKET_ADDR_V6 = 1

_PING = 0
_ACK = 1
_PING_REQ = 2
_INDIRECT_PING = 3
_INDIRECT_ACK = 4
_FORWARDED_ACK = 5
_EMPTY_VARIANT_INDEX: dict[type, int] = {
    Announce: 6,
    Feed: 7,
    Gossip: 8,
    Broadcast: 9,
    TurnUndead: 10,
}
_EMPTY_VARIANTS: dict[int, Message] = {
    6: Announce(),
    7: Feed(),
    8: Gossip(),
    9: Broadcast(),
    10: TurnUndead(),
}
_MESSAGE_VARIANTS = 11

_STATES = (State.ALIVE, State.SUSPECT, State.DOWN)


def encode_varint(value: int) -> bytes:
    """Encode an unsigned integer of at most 64 bits as a minimal bincode varint."""
    if not 0 <= value <= _MAX_U64:
        raise ValueError(f"invalid varint value {value}: expected 0 to 2**64 - 1")
    if value <= _SINGLE_BYTE_MAX:
        return bytes((value,))
    if value <= 0xFFFF:
        return bytes((_U16_MARKER,)) + value.to_bytes(2, "little")
    if value <= 0xFFFF_FFFF:
        return bytes((_U32_MARKER,)) + value.to_bytes(4, "little")
    return bytes((_U64_MARKER,)) + value.to_bytes(8, "little")


def decode_varint(data: bytes, offset: int, bits: int) -> tuple[int, int]:
    """Decode a varint for a ``bits``-wide unsigned type at ``offset``.

    Returns the value and the offset after it. Raises DecodeError for a
    truncated varint and for a marker wider than ``bits``, as bincode does.
    """
    if offset >= len(data):
        raise DecodeError(f"truncated input: expected a u{bits} varint at {offset}")
    first = data[offset]
    if first <= _SINGLE_BYTE_MAX:
        return first, offset + 1
    marker = _MARKERS.get(first)
    if marker is None:
        raise DecodeError(
            f"invalid varint marker 0x{first:02X} at offset {offset}: 0xFF is reserved"
        )
    width, needed_bits = marker
    if needed_bits > bits:
        raise DecodeError(
            f"invalid varint marker 0x{first:02X} at offset {offset}: it starts"
            f" a u{needed_bits}, which does not fit the expected u{bits}"
        )
    start = offset + 1
    end = start + width
    if end > len(data):
        raise DecodeError(
            f"truncated input: the u{bits} varint at offset {offset} needs"
            f" {width + 1} bytes, {len(data) - offset} remain"
        )
    return int.from_bytes(data[start:end], "little"), end


def _decode_u8(data: bytes, offset: int, what: str) -> tuple[int, int]:
    if offset >= len(data):
        raise DecodeError(f"truncated input: expected the {what} byte at {offset}")
    return data[offset], offset + 1


def _decode_variant(data: bytes, offset: int, count: int, what: str) -> tuple[int, int]:
    index, end = decode_varint(data, offset, _VARIANT_BITS)
    if index >= count:
        raise DecodeError(
            f"unknown {what} variant index {index} at offset {offset}:"
            f" expected 0 to {count - 1}"
        )
    return index, end


def encode_socket_addr(addr: Address) -> bytes:
    """Encode ``addr`` as serde's compact ``std::net::SocketAddr``.

    Raises ValueError for an IPv6 address with a scope id, because the wire
    format drops it and the decoded address would then differ from ``addr``.
    """
    ip = addr.ip
    if isinstance(ip, ipaddress.IPv4Address):
        variant = _SOCKET_ADDR_V4
    else:
        if ip.scope_id is not None:
            raise ValueError(
                f"cannot encode {addr}: bincode's SocketAddr carries no IPv6"
                " scope id, so peers could never address this identity"
            )
        variant = _SOCKET_ADDR_V6
    return bytes((variant,)) + ip.packed + encode_varint(addr.port)


def decode_socket_addr(data: bytes, offset: int) -> tuple[Address, int]:
    """Decode a serde ``SocketAddr`` at ``offset``; return it and the offset after."""
    variant, position = _decode_variant(data, offset, 2, "SocketAddr")
    size = 4 if variant == _SOCKET_ADDR_V4 else 16
    end = position + size
    if end > len(data):
        raise DecodeError(
            f"truncated input: the SocketAddr at offset {offset} needs {size}"
            f" address bytes, {len(data) - position} remain"
        )
    packed = bytes(data[position:end])
    ip = (
        ipaddress.IPv4Address(packed)
        if variant == _SOCKET_ADDR_V4
        else ipaddress.IPv6Address(packed)
    )
    port, end = decode_varint(data, end, 16)
    return Address(ip, port), end


class BincodeCodec:
    """foca's ``BincodeCodec(bincode::config::standard())`` for one identity type.

    ``identity`` selects the identity layout on the wire:

    * ``"socket-address"``: foca's ``SocketAddr`` identity, the address alone.
      Decodes to ``SocketAddrIdentity``, which never renews, so a node
      declared Down goes undead.
    * ``"addr-bump"``: the ``ID { addr, bump: u64 }`` identity of foca's
      example agent, the address followed by ``bump`` as a varint. Decodes to
      ``Identity(addr, b"", renewal=bump)``, so renewal and address conflicts
      follow the bump as in the agent.

    The node's own identity must be of the class that this codec decodes,
    because dataclass equality compares classes and a node drops messages
    whose ``dst`` differs from its identity. ``encode_header`` raises
    ValueError when the header's ``src`` is of another class. Other
    identities, such as the placeholder ``Identity(addr)`` that
    ``Swim.announce`` addresses, may be plain ``Identity`` values if they fit
    the layout. Encoding raises ValueError for an identity with a non-empty
    ``id``, for a non-zero ``renewal`` in ``"socket-address"`` mode, and for
    an incarnation or probe number out of range. Decoding raises DecodeError
    for truncated input, an unknown variant index or a varint marker wider
    than its field. The codec keeps no state, so one instance may serve many
    nodes.
    """

    def __init__(self, identity: IdentityMode) -> None:
        if identity == "socket-address":
            self._identity_class: type[Identity] = SocketAddrIdentity
            self._encode_identity: Callable[[Identity], bytes] = (
                _encode_socket_addr_identity
            )
            self._decode_identity: Callable[[bytes, int], tuple[Identity, int]] = (
                _decode_socket_addr_identity
            )
        elif identity == "addr-bump":
            self._identity_class = Identity
            self._encode_identity = _encode_addr_bump_identity
            self._decode_identity = _decode_addr_bump_identity
        else:
            raise ValueError(
                f"invalid identity mode {identity!r}: expected 'socket-address'"
                " or 'addr-bump'"
            )
        self._mode: IdentityMode = identity

    @property
    def identity_mode(self) -> IdentityMode:
        return self._mode

    def __repr__(self) -> str:
        return f"BincodeCodec({self._mode!r})"

    def encode_header(self, header: Header) -> bytes:
        if type(header.src) is not self._identity_class:
            raise ValueError(
                f"header src {header.src!r} is a {type(header.src).__name__}, but"
                f" BincodeCodec({self._mode!r}) decodes identities as"
                f" {self._identity_class.__name__}: give the node a"
                f" {self._identity_class.__name__} identity"
            )
        return b"".join(
            (
                self._encode_identity(header.src),
                _encode_incarnation(header.src_incarnation),
                self._encode_identity(header.dst),
                self._encode_message(header.message),
            )
        )

    def decode_header(self, data: bytes, offset: int) -> tuple[Header, int]:
        src, offset = self._decode_identity(data, offset)
        src_incarnation, offset = decode_varint(data, offset, 16)
        dst, offset = self._decode_identity(data, offset)
        message, offset = self._decode_message(data, offset)
        return Header(src, src_incarnation, dst, message), offset

    def encode_member(self, member: Member) -> bytes:
        return b"".join(
            (
                self._encode_identity(member.id),
                _encode_incarnation(member.incarnation),
                bytes((int(member.state),)),
            )
        )

    def decode_member(self, data: bytes, offset: int) -> tuple[Member, int]:
        identity, offset = self._decode_identity(data, offset)
        incarnation, offset = decode_varint(data, offset, 16)
        state_index, offset = _decode_variant(data, offset, len(_STATES), "State")
        return Member(identity, incarnation, _STATES[state_index]), offset

    def _encode_message(self, message: Message) -> bytes:
        match message:
            case Ping(probe_number=number):
                return bytes((_PING, _probe_number(number)))
            case Ack(probe_number=number):
                return bytes((_ACK, _probe_number(number)))
            case PingReq(target=member, probe_number=number):
                return self._encode_with_identity(_PING_REQ, member, number)
            case IndirectPing(origin=member, probe_number=number):
                return self._encode_with_identity(_INDIRECT_PING, member, number)
            case IndirectAck(target=member, probe_number=number):
                return self._encode_with_identity(_INDIRECT_ACK, member, number)
            case ForwardedAck(origin=member, probe_number=number):
                return self._encode_with_identity(_FORWARDED_ACK, member, number)
            case Announce() | Feed() | Gossip() | Broadcast() | TurnUndead():
                return bytes((_EMPTY_VARIANT_INDEX[type(message)],))
            case _:
                raise TypeError(f"not a message variant: {message!r}")

    def _encode_with_identity(
        self, variant: int, identity: Identity, probe_number: int
    ) -> bytes:
        return (
            bytes((variant,))
            + self._encode_identity(identity)
            + bytes((_probe_number(probe_number),))
        )

    def _decode_message(self, data: bytes, offset: int) -> tuple[Message, int]:
        variant, offset = _decode_variant(data, offset, _MESSAGE_VARIANTS, "Message")
        if variant == _PING:
            number, offset = _decode_u8(data, offset, "Ping probe number")
            return Ping(number), offset
        if variant == _ACK:
            number, offset = _decode_u8(data, offset, "Ack probe number")
            return Ack(number), offset
        if variant in (_PING_REQ, _INDIRECT_PING, _INDIRECT_ACK, _FORWARDED_ACK):
            identity, offset = self._decode_identity(data, offset)
            number, offset = _decode_u8(data, offset, "probe number")
            return _IDENTITY_MESSAGES[variant](identity, number), offset
        return _EMPTY_VARIANTS[variant], offset


_IDENTITY_MESSAGES: dict[
    int, Callable[[Identity, int], PingReq | IndirectPing | IndirectAck | ForwardedAck]
] = {
    _PING_REQ: PingReq,
    _INDIRECT_PING: IndirectPing,
    _INDIRECT_ACK: IndirectAck,
    _FORWARDED_ACK: ForwardedAck,
}


def _encode_incarnation(value: int) -> bytes:
    if not 0 <= value <= MAX_INCARNATION:
        raise ValueError(f"invalid incarnation {value}: expected a u16")
    return encode_varint(value)


def _probe_number(value: int) -> int:
    if not 0 <= value <= MAX_PROBE_NUMBER:
        raise ValueError(f"invalid probe number {value}: expected a u8")
    return value


def _reject_opaque_id(identity: Identity) -> None:
    if identity.id:
        raise ValueError(
            f"cannot encode identity {identity} with bincode: foca's bincode"
            " identities have no id field, so id must be empty"
        )


def _encode_socket_addr_identity(identity: Identity) -> bytes:
    _reject_opaque_id(identity)
    if identity.renewal:
        raise ValueError(
            f"cannot encode identity {identity} as a SocketAddr: it has renewal"
            f" {identity.renewal}, which the address-only layout cannot carry;"
            " use BincodeCodec('addr-bump') for renewable identities"
        )
    return encode_socket_addr(identity.addr)


def _decode_socket_addr_identity(data: bytes, offset: int) -> tuple[Identity, int]:
    addr, offset = decode_socket_addr(data, offset)
    return SocketAddrIdentity(addr), offset


def _encode_addr_bump_identity(identity: Identity) -> bytes:
    _reject_opaque_id(identity)
    return encode_socket_addr(identity.addr) + encode_varint(identity.renewal)


def _decode_addr_bump_identity(data: bytes, offset: int) -> tuple[Identity, int]:
    addr, offset = decode_socket_addr(data, offset)
    bump, offset = decode_varint(data, offset, 64)
    # NOTE: at bump 2**64 - 1 the example agent renews to bump 0 (wrapping),
    # which loses the conflict with the old identity, so foca goes undead.
    # Identity.renew returns None at that value instead: the node also ends
    # undead, but foca logs a failed rejoin first and swim_py does not.
    return Identity(addr, b"", bump), offset

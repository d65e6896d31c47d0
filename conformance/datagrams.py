"""Hand-made malformed datagrams for the ``send_datagram`` step.

Each kind in DATAGRAM_KINDS builds one datagram for a target node and names
the error class (PEER_CONTRACT.md) that a foca 1.0 receiver counts for it.
Valid parts come from swim_py's ProtobufCodec with the framing in
proto/DATAGRAM.md. A datagram meant to pass the receiver's ``dst`` check is
addressed to the target's current identity.

Some kinds only fail after the ``dst`` check. Those need a ``src`` that the
target already lists as an active member: a ``src`` unknown to the target
would join its member list and later be declared down. So they name another
running node (the stand-in sender) as ``src``. The target counts such a
datagram in ``received`` under the stand-in's address.
"""

from __future__ import annotations

import ipaddress
import random
import socket
from dataclasses import dataclass

from conformance.contract import Identity
from swim_py.codec import ProtobufCodec, decode_varint, encode_varint
from swim_py.errors import DecodeError
from swim_py.identity import Address
from swim_py.identity import Identity as SwimIdentity
from swim_py.payload import (
    Announce,
    Gossip,
    Header,
    Member,
    Message,
    Ping,
    PingReq,
    State,
)

_CODEC = ProtobufCodec()

# Seed and length of the ``garbage`` datagram. Its first byte is a varint
# length of 12, and the 12 bytes after it do not parse as a Header message.
GARBAGE_SEED = 0x5EED
GARBAGE_LENGTH = 64

# A COUNT that the ``bad_count`` datagram writes before its only member.
BAD_COUNT = 3

# The ``unknown_state`` member's state value; swim.v1.State defines 0 to 2.
UNKNOWN_STATE = 7

# The ``bad_broadcast_length`` tail: an item length of 100 followed by 5 bytes.
BAD_ITEM_LENGTH = 100
BAD_ITEM_BYTES = b"\x01\x02\x03\x04\x05"

# A well-framed custom broadcast item that no KeyedBroadcast handler accepts:
# field 1 (key) claims 5 bytes of string, and 2 follow.
REJECTED_ITEM = b"\x0a\x05ab"


@dataclass(frozen=True)
class DatagramKind:
    """A malformed datagram: the error class a receiver counts for it, and why.

    ``counted_as`` is the message type under which the receiver counts the
    datagram in ``received`` (foca's ``DataReceived``) before the error, or
    None when it fails before the ``dst`` check. ``uses_sender`` is True
    when the header's ``src`` is the stand-in sender.
    """

    error_class: str
    reason: str
    counted_as: str | None = None
    uses_sender: bool = True


DATAGRAM_KINDS: dict[str, DatagramKind] = {
    "garbage": DatagramKind(
        "decode",
        f"{GARBAGE_LENGTH} random bytes (seed {GARBAGE_SEED:#x}): no valid Header",
        uses_sender=False,
    ),
    "truncated_header": DatagramKind(
        "decode",
        "a Ping datagram cut in the middle of its Header",
    ),
    "one_byte_tail": DatagramKind(
        "malformed_packet",
        "a Ping Header followed by 1 byte",
    ),
    "announce_with_tail": DatagramKind(
        "malformed_packet",
        "an Announce Header followed by an empty COUNT (00 00)",
    ),
    "oversized": DatagramKind(
        "data_too_big",
        "a Ping datagram padded to max_packet_size + 1 bytes",
    ),
    "bad_count": DatagramKind(
        "decode",
        f"a Gossip whose COUNT is {BAD_COUNT} with 1 Member after it",
    ),
    "bad_broadcast_length": DatagramKind(
        "malformed_packet",
        f"a Gossip whose custom broadcast item claims {BAD_ITEM_LENGTH} bytes "
        f"with {len(BAD_ITEM_BYTES)} left",
        counted_as="gossip",
    ),
    "rejected_broadcast_item": DatagramKind(
        "custom_broadcast",
        "a Gossip with a well-framed custom broadcast item that is not a valid "
        "KeyedBroadcast",
        counted_as="gossip",
    ),
    "unknown_state": DatagramKind(
        "decode",
        f"a Gossip with one Member whose state is {UNKNOWN_STATE}",
    ),
    "from_ourselves": DatagramKind(
        "data_from_ourselves",
        "a Ping whose Header src is the receiver's own identity",
        uses_sender=False,
    ),
    "ping_req_for_ourselves": DatagramKind(
        "indirect_for_ourselves",
        "a PingReq whose target is the receiver itself",
        counted_as="ping_req",
    ),
}


def swim_identity(identity: Identity) -> SwimIdentity:
    """Convert a contract identity (hex id, ``IP:PORT``) to swim_py's type."""
    return SwimIdentity(
        Address.parse(identity.addr), bytes.fromhex(identity.id), identity.renewal
    )


def _header(src: SwimIdentity, dst: SwimIdentity, message: Message) -> bytes:
    return _CODEC.encode_header(Header(src, 0, dst, message))


def _count(value: int) -> bytes:
    return value.to_bytes(2, "big")


def _item(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def _member_with_unknown_state(member: SwimIdentity) -> bytes:
    # ProtobufCodec refuses to write an undefined state, so write Suspect (1)
    # and patch the varint of field 3, which proto3 puts last.
    encoded = _CODEC.encode_member(Member(member, 0, State.SUSPECT))
    if not encoded.endswith(b"\x18\x01"):
        raise AssertionError(f"unexpected Member encoding {encoded.hex()}")
    return encoded[:-1] + bytes([UNKNOWN_STATE])


def build_datagram(
    kind: str, target: Identity, sender: Identity, max_packet_size: int
) -> bytes:
    """Build the datagram of ``kind`` for ``target``.

    ``sender`` is the stand-in sender's identity, used as ``src`` where the
    kind needs one. Raises KeyError for a kind not in DATAGRAM_KINDS.
    """
    dst = swim_identity(target)
    src = swim_identity(sender)
    ping = _header(src, dst, Ping(1))
    gossip = _header(src, dst, Gossip())
    match kind:
        case "garbage":
            return random.Random(GARBAGE_SEED).randbytes(GARBAGE_LENGTH)
        case "truncated_header":
            return ping[: len(ping) // 2]
        case "one_byte_tail":
            return ping + b"\x00"
        case "announce_with_tail":
            return _header(src, dst, Announce()) + _count(0)
        case "oversized":
            return (ping + _count(0)).ljust(max_packet_size + 1, b"\x00")
        case "bad_count":
            member = _CODEC.encode_member(Member(src, 0, State.ALIVE))
            return gossip + _count(BAD_COUNT) + member
        case "bad_broadcast_length":
            length = BAD_ITEM_LENGTH.to_bytes(2, "big")
            return gossip + _count(0) + length + BAD_ITEM_BYTES
        case "rejected_broadcast_item":
            return gossip + _count(0) + _item(REJECTED_ITEM)
        case "unknown_state":
            return gossip + _count(1) + _member_with_unknown_state(src)
        case "from_ourselves":
            return _header(dst, dst, Ping(1)) + _count(0)
        case "ping_req_for_ourselves":
            return _header(src, dst, PingReq(dst, 1)) + _count(0)
    raise KeyError(f"unknown datagram kind {kind!r}")


# The largest incarnation on the wire: foca's Incarnation is a u16.
MAX_INCARNATION = 65535

# Fields that swim.v1 does not define, appended to a message body by
# ``unknown_fields``: field 100 as a varint (1) and field 101 as 3 bytes.
# A receiver that follows protobuf's rules skips both.
UNKNOWN_FIELDS = b"\xa0\x06\x01" + b"\xaa\x06\x03new"

_STATES = {"alive": State.ALIVE, "suspect": State.SUSPECT, "down": State.DOWN}


def with_unknown_fields(delimited: bytes) -> bytes:
    """Append UNKNOWN_FIELDS to a length-delimited message and fix its length.

    ``delimited`` is one message as the datagram carries it: a varint
    length, then exactly that many bytes of body.
    """
    try:
        length, offset = decode_varint(delimited, 0)
    except DecodeError as error:
        raise ValueError(f"invalid length prefix in {delimited.hex()}") from error
    body = delimited[offset:]
    if len(body) != length:
        raise ValueError(
            f"length prefix {length} does not match the {len(body)}-byte body"
        )
    body += UNKNOWN_FIELDS
    return encode_varint(len(body)) + body


def build_update(
    target: Identity,
    sender: Identity,
    about: Identity,
    state: str,
    incarnation: int,
    unknown_fields: bool = False,
) -> bytes:
    """Build a valid Gossip from ``sender`` to ``target`` with one member update.

    The update puts ``about`` in ``state`` at ``incarnation``. The
    header's own incarnation is 0, which is never newer than the
    target's record of the sender. With ``unknown_fields`` the Header and
    the Member each end with UNKNOWN_FIELDS.
    """
    header = _header(swim_identity(sender), swim_identity(target), Gossip())
    member = Member(swim_identity(about), incarnation, _STATES[state])
    encoded_member = _CODEC.encode_member(member)
    if unknown_fields:
        header = with_unknown_fields(header)
        encoded_member = with_unknown_fields(encoded_member)
    return header + _count(1) + encoded_member


class DatagramSender:
    """A UDP socket of the harness that sends hand-made datagrams.

    It binds ``local_ip`` and sends only to addresses in ``network``: by
    default 127.0.0.1 alone, and in the docker runtime the bridge network
    of the run's containers, from the host's address on that bridge.
    """

    def __init__(
        self, local_ip: str = "127.0.0.1", network: str = "127.0.0.1/32"
    ) -> None:
        self._socket: socket.socket | None = None
        self._local_ip = local_ip
        self._network = ipaddress.ip_network(network)

    @property
    def address(self) -> str:
        """Return the socket's ``IP:PORT``, opening the socket on first use."""
        host, port = self._open().getsockname()[:2]
        return f"{host}:{port}"

    def _open(self) -> socket.socket:
        if self._socket is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((self._local_ip, 0))
            self._socket = sock
        return self._socket

    def send(self, data: bytes, addr: str) -> None:
        """Send one datagram to ``addr`` (``IP:PORT``) inside ``network``."""
        destination = Address.parse(addr)
        if destination.ip not in self._network:
            allowed = (
                str(self._network.network_address)
                if self._network.num_addresses == 1
                else str(self._network)
            )
            raise ValueError(
                f"invalid datagram destination {addr}: the harness sends only "
                f"to {allowed}"
            )
        self._open().sendto(data, destination.to_sockaddr())

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

"""BincodeCodec: foca's bincode bytes, round trips, rejections and real agent datagrams.

The decode cases in ``REAL_BINCODE_DECODES`` and the encodings in the worked
examples were produced by foca 1.0.0's ``BincodeCodec`` with bincode 2.0.1
and serde 1.0.228. ``tests/vectors/bincode_example_agent/datagrams.json``
contains datagrams captured from foca's unmodified example agent.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.foca_example import (
    AgentBroadcastKey,
    ExampleAgentBroadcastHandler,
    decode_agent_broadcast,
    encode_agent_broadcast,
)
from swim_py.codec import BincodeCodec
from swim_py.codec.bincode import (
    decode_socket_addr,
    decode_varint,
    encode_socket_addr,
    encode_varint,
)
from swim_py.config import Config
from swim_py.core import SwimCore
from swim_py.errors import DecodeError, SwimError
from swim_py.events import ConnectionState, Defunct, ProbeRandomMember, Rejoin
from swim_py.identity import MAX_RENEWAL, Address, Identity, SocketAddrIdentity
from swim_py.payload import (
    MESSAGE_NAMES,
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

ADDR_BUMP = BincodeCodec("addr-bump")
SOCKET_ADDRESS = BincodeCodec("socket-address")

ID_A = Identity(Address.parse("127.0.0.1:8000"), b"", 1764720000)
ID_B = Identity(Address.parse("127.0.0.1:8001"), b"", 1764720005)
ID_C = Identity(Address.parse("127.0.0.1:8002"), b"", 7)

ID_A_BYTES = bytes.fromhex("00 7f 00 00 01 fb 40 1f fc 80 7d 2f 69")
ID_B_BYTES = bytes.fromhex("00 7f 00 00 01 fb 41 1f fc 85 7d 2f 69")
ID_C_BYTES = bytes.fromhex("00 7f 00 00 01 fb 42 1f 07")
PING_A_TO_B = Header(ID_A, 0, ID_B, Ping(3))
PING_A_TO_B_BYTES = ID_A_BYTES + b"\x00" + ID_B_BYTES + bytes.fromhex("00 03")
SUSPECT_C = Member(ID_C, 2, State.SUSPECT)
SUSPECT_C_BYTES = ID_C_BYTES + bytes.fromhex("02 01")

VECTORS = (
    Path(__file__).resolve().parents[1]
    / "vectors"
    / "bincode_example_agent"
    / "datagrams.json"
)


# Worked bytes


def test_addr_bump_identity_bytes() -> None:
    member = Member(ID_A, 0, State.ALIVE)

    assert ADDR_BUMP.encode_member(member) == ID_A_BYTES + b"\x00\x00"


def test_ping_header_bytes() -> None:
    encoded = ADDR_BUMP.encode_header(PING_A_TO_B)

    assert encoded == PING_A_TO_B_BYTES
    assert len(encoded) == 29


def test_suspect_member_bytes() -> None:
    assert ADDR_BUMP.encode_member(SUSPECT_C) == SUSPECT_C_BYTES


def test_ping_req_message_bytes() -> None:
    header = Header(ID_A, 0, ID_B, PingReq(ID_C, 9))

    encoded = ADDR_BUMP.encode_header(header)

    assert encoded[len(PING_A_TO_B_BYTES) - 2 :] == b"\x02" + ID_C_BYTES + b"\x09"


MESSAGE_BYTES: list[tuple[Message, bytes]] = [
    (Ping(0), b"\x00\x00"),
    (Ack(255), b"\x01\xff"),
    (PingReq(ID_C, 9), b"\x02" + ID_C_BYTES + b"\x09"),
    (IndirectPing(ID_C, 1), b"\x03" + ID_C_BYTES + b"\x01"),
    (IndirectAck(ID_C, 2), b"\x04" + ID_C_BYTES + b"\x02"),
    (ForwardedAck(ID_C, 250), b"\x05" + ID_C_BYTES + b"\xfa"),
    (Announce(), b"\x06"),
    (Feed(), b"\x07"),
    (Gossip(), b"\x08"),
    (Broadcast(), b"\x09"),
    (TurnUndead(), b"\x0a"),
]


@pytest.mark.parametrize(
    ("message", "expected"), MESSAGE_BYTES, ids=lambda v: type(v).__name__
)
def test_message_variant_bytes(message: Message, expected: bytes) -> None:
    prefix = ID_A_BYTES + b"\x00" + ID_B_BYTES
    encoded = ADDR_BUMP.encode_header(Header(ID_A, 0, ID_B, message))

    assert encoded == prefix + expected
    assert ADDR_BUMP.decode_header(encoded, 0) == (
        Header(ID_A, 0, ID_B, message),
        len(encoded),
    )


def test_incarnation_300_bytes() -> None:
    encoded = ADDR_BUMP.encode_header(Header(ID_A, 300, ID_B, Gossip()))

    assert encoded[len(ID_A_BYTES) : len(ID_A_BYTES) + 3] == bytes.fromhex("fb 2c 01")


def test_ipv6_socket_addr_bytes() -> None:
    addr = Address.parse("[::1]:9000")
    expected = b"\x01" + bytes(15) + b"\x01" + bytes.fromhex("fb 28 23")

    assert encode_socket_addr(addr) == expected
    assert decode_socket_addr(expected, 0) == (addr, len(expected))


def test_socket_address_identity_bytes() -> None:
    member = Member(SocketAddrIdentity(Address.parse("127.0.0.1:8000")), 0, State.DOWN)

    assert SOCKET_ADDRESS.encode_member(member) == bytes.fromhex(
        "00 7f000001 fb401f 00 02"
    )


def test_ping_with_one_update_datagram() -> None:
    datagram = PING_A_TO_B_BYTES + b"\x00\x01" + SUSPECT_C_BYTES

    assert len(datagram) == 42
    header, offset = ADDR_BUMP.decode_header(datagram, 0)
    assert header == PING_A_TO_B
    assert datagram[offset : offset + 2] == b"\x00\x01"
    member, end = ADDR_BUMP.decode_member(datagram, offset + 2)
    assert member == SUSPECT_C
    assert end == len(datagram)


def test_core_sends_empty_backlog_ping() -> None:
    core = SwimCore(ID_A, Config.new_lan(10), ADDR_BUMP, random.Random(0))
    core.apply_many([Member(ID_B, 0, State.ALIVE)], do_broadcast=False)
    probe = next(
        schedule.timer
        for schedule in core.take_outputs().schedules
        if isinstance(schedule.timer, ProbeRandomMember)
    )

    core.handle_timer(probe)

    sends = core.take_outputs().sends
    assert len(sends) == 1
    data = sends[0].data
    assert data[:-3] == PING_A_TO_B_BYTES[:-1]
    assert data[-2:] == b"\x00\x00"


# Varints


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "00"),
        (250, "fa"),
        (251, "fb fb 00"),
        (0xFFFF, "fb ff ff"),
        (0x1_0000, "fc 00 00 01 00"),
        (0xFFFF_FFFF, "fc ff ff ff ff"),
        (0x1_0000_0000, "fd 00 00 00 00 01 00 00 00"),
        (2**64 - 1, "fd ff ff ff ff ff ff ff ff"),
    ],
)
def test_varint_boundary_bytes(value: int, expected: str) -> None:
    encoded = bytes.fromhex(expected)

    assert encode_varint(value) == encoded
    assert decode_varint(encoded, 0, 64) == (value, len(encoded))


@pytest.mark.parametrize("value", [-1, 2**64])
def test_varint_rejects_out_of_range_value(value: int) -> None:
    with pytest.raises(ValueError, match="invalid varint value"):
        encode_varint(value)


@pytest.mark.parametrize(
    ("data", "bits", "expected"),
    [
        ("fb 05 00", 16, 5),
        ("fc 05 00 00 00", 32, 5),
        ("fd 05 00 00 00 00 00 00 00", 64, 5),
        ("fc ff ff 00 00", 64, 0xFFFF),
    ],
)
def test_varint_accepts_non_minimal_form(data: str, bits: int, expected: int) -> None:
    encoded = bytes.fromhex(data)

    assert decode_varint(encoded, 0, bits) == (expected, len(encoded))


@pytest.mark.parametrize(
    ("data", "bits", "message"),
    [
        ("fc 00 00 00 00", 16, "does not fit the expected u16"),
        ("fd 00 00 00 00 00 00 00 00", 32, "does not fit the expected u32"),
        ("fe" + " 00" * 16, 64, "does not fit the expected u64"),
        ("ff", 64, "reserved"),
        ("", 16, "truncated"),
        ("fb 00", 16, "truncated"),
        ("fd 00 00 00", 64, "truncated"),
    ],
)
def test_varint_rejects_marker_or_truncation(
    data: str, bits: int, message: str
) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_varint(bytes.fromhex(data), 0, bits)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trips(value: int) -> None:
    encoded = encode_varint(value)

    assert decode_varint(encoded + b"\xff", 0, 64) == (value, len(encoded))


# Decodes produced by real bincode: mode, item, input hex, then either the
# consumed length and the value, or None for an error.

REAL_BINCODE_DECODES: list[tuple[BincodeCodec, str, str, tuple[int, object] | None]] = [
    (
        SOCKET_ADDRESS,
        "member",
        "007f000001fb401f0002",
        (
            10,
            Member(SocketAddrIdentity(Address.parse("127.0.0.1:8000")), 0, State.DOWN),
        ),
    ),
    (
        SOCKET_ADDRESS,
        "member",
        "007f000001fb401ffb05000002",
        (
            12,
            Member(SocketAddrIdentity(Address.parse("127.0.0.1:8000")), 5, State.ALIVE),
        ),
    ),
    (SOCKET_ADDRESS, "member", "007f000001fb401ffc050000000002", None),
    (SOCKET_ADDRESS, "member", "007f000001fb401f0003", None),
    (
        SOCKET_ADDRESS,
        "member",
        "007f000001fb401f00fb0200",
        (
            12,
            Member(SocketAddrIdentity(Address.parse("127.0.0.1:8000")), 0, State.DOWN),
        ),
    ),
    (
        SOCKET_ADDRESS,
        "member",
        "007f000001fb401f00fc02000000",
        (
            14,
            Member(SocketAddrIdentity(Address.parse("127.0.0.1:8000")), 0, State.DOWN),
        ),
    ),
    (SOCKET_ADDRESS, "member", "007f000001fb401f00fd0200000000000000", None),
    (
        SOCKET_ADDRESS,
        "member",
        "fc000000007f000001fb401f0000",
        (
            14,
            Member(SocketAddrIdentity(Address.parse("127.0.0.1:8000")), 0, State.ALIVE),
        ),
    ),
    (SOCKET_ADDRESS, "member", "02", None),
    (SOCKET_ADDRESS, "member", "017f000001", None),
    (ADDR_BUMP, "member", "007f000001fb401ffe" + "00" * 16 + "0000", None),
    (ADDR_BUMP, "member", "007f000001fb401fff0000", None),
    (
        ADDR_BUMP,
        "member",
        "007f000001fb401ffd0500000000000000000000",
        (19, Member(Identity(Address.parse("127.0.0.1:8000"), b"", 5), 0, State.ALIVE)),
    ),
    (SOCKET_ADDRESS, "header", "007f000001fb401f00007f000001fb411f0b", None),
    (
        SOCKET_ADDRESS,
        "header",
        "007f000001fb401f00007f000001fb411ffb0a00",
        (
            20,
            Header(
                SocketAddrIdentity(Address.parse("127.0.0.1:8000")),
                0,
                SocketAddrIdentity(Address.parse("127.0.0.1:8001")),
                TurnUndead(),
            ),
        ),
    ),
]


@pytest.mark.parametrize(
    ("codec", "item", "data", "expected"),
    REAL_BINCODE_DECODES,
    ids=[f"{case[1]}-{case[2][:24]}" for case in REAL_BINCODE_DECODES],
)
def test_decode_matches_real_bincode(
    codec: BincodeCodec, item: str, data: str, expected: tuple[int, object] | None
) -> None:
    encoded = bytes.fromhex(data)
    decode = codec.decode_member if item == "member" else codec.decode_header
    if expected is None:
        with pytest.raises(DecodeError):
            decode(encoded, 0)
        return
    value, end = decode(encoded, 0)
    assert end == expected[0]
    assert value == expected[1]


# Other rejections


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            ID_A_BYTES + b"\x00" + ID_B_BYTES + b"\x0b",
            "unknown Message variant index 11",
        ),
        (ID_A_BYTES + b"\x00" + ID_B_BYTES + b"\x00", "Ping probe number"),
        (ID_A_BYTES + b"\x00" + ID_B_BYTES, "truncated"),
        (ID_A_BYTES + b"\xfc\x00\x00\x00\x00", "does not fit the expected u16"),
        (b"\x02" + ID_A_BYTES[1:], "unknown SocketAddr variant index 2"),
        (ID_A_BYTES[:7], "truncated"),
        (ID_A_BYTES + b"\x00" + ID_B_BYTES + b"\x02" + ID_C_BYTES, "probe number"),
    ],
)
def test_decode_header_rejects(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        ADDR_BUMP.decode_header(data, 0)


def test_decode_member_rejects_unknown_state() -> None:
    with pytest.raises(DecodeError, match="unknown State variant index 3"):
        ADDR_BUMP.decode_member(ID_C_BYTES + b"\x00\x03", 0)


def test_decode_reads_at_offset() -> None:
    data = b"junk" + SUSPECT_C_BYTES + b"tail"

    assert ADDR_BUMP.decode_member(data, 4) == (SUSPECT_C, 4 + len(SUSPECT_C_BYTES))


# Encoding checks


def test_encode_rejects_opaque_id() -> None:
    member = Member(Identity(ID_A.addr, b"node-a", 1), 0, State.ALIVE)

    with pytest.raises(ValueError, match="have no id field"):
        ADDR_BUMP.encode_member(member)
    with pytest.raises(ValueError, match="have no id field"):
        SOCKET_ADDRESS.encode_member(member)


def test_socket_address_rejects_renewal() -> None:
    member = Member(Identity(ID_A.addr, b"", 3), 0, State.ALIVE)

    with pytest.raises(ValueError, match="renewal 3"):
        SOCKET_ADDRESS.encode_member(member)


def test_socket_address_accepts_plain_announce_target() -> None:
    src = SocketAddrIdentity(ID_A.addr)
    header = Header(src, 0, Identity(ID_B.addr), Announce())

    decoded, _ = SOCKET_ADDRESS.decode_header(SOCKET_ADDRESS.encode_header(header), 0)

    assert decoded.dst == SocketAddrIdentity(ID_B.addr)


@pytest.mark.parametrize(
    ("codec", "src"),
    [
        (SOCKET_ADDRESS, Identity(ID_A.addr)),
        (ADDR_BUMP, SocketAddrIdentity(ID_A.addr)),
    ],
)
def test_encode_header_rejects_src_class(codec: BincodeCodec, src: Identity) -> None:
    with pytest.raises(ValueError, match="decodes identities as"):
        codec.encode_header(Header(src, 0, ID_B, Gossip()))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (Header(ID_A, 65536, ID_B, Gossip()), "invalid incarnation 65536"),
        (Header(ID_A, 0, ID_B, Ping(256)), "invalid probe number 256"),
        (Header(ID_A, 0, ID_B, PingReq(ID_C, -1)), "invalid probe number -1"),
    ],
)
def test_encode_header_rejects_out_of_range(header: Header, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ADDR_BUMP.encode_header(header)


def test_encode_rejects_ipv6_scope_id() -> None:
    scoped = Identity(Address(ipaddress.IPv6Address("fe80::1%2"), 9000), b"", 1)

    with pytest.raises(ValueError, match="scope id"):
        ADDR_BUMP.encode_member(Member(scoped, 0, State.ALIVE))


def test_codec_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="invalid identity mode 'uuid'"):
        BincodeCodec("uuid")  # type: ignore[arg-type]


# SocketAddrIdentity and the core


def test_socket_addr_identity_never_renews() -> None:
    identity = SocketAddrIdentity(ID_A.addr)

    assert identity.renew() is None
    assert not identity.win_addr_conflict(SocketAddrIdentity(ID_B.addr))
    assert identity != Identity(ID_A.addr)
    assert str(identity) == "127.0.0.1:8000"


def test_socket_addr_identity_rejects_fields() -> None:
    with pytest.raises(ValueError, match="takes only an address"):
        SocketAddrIdentity(ID_A.addr, b"x")
    with pytest.raises(ValueError, match="takes only an address"):
        SocketAddrIdentity(ID_A.addr, b"", 1)


def _turn_undead_after_ping(
    codec: BincodeCodec, us: Identity, them: Identity
) -> SwimCore:
    core = SwimCore(us, Config.new_lan(10), codec, random.Random(0))
    core.handle_data(codec.encode_header(Header(them, 0, us, Ping(1))) + b"\x00\x00")
    assert core.connection_state is ConnectionState.CONNECTED
    core.take_outputs()
    core.handle_data(codec.encode_header(Header(them, 0, us, TurnUndead())))
    return core


def test_socket_addr_node_goes_undead() -> None:
    us = SocketAddrIdentity(ID_A.addr)

    core = _turn_undead_after_ping(SOCKET_ADDRESS, us, SocketAddrIdentity(ID_B.addr))

    notifications = core.take_outputs().notifications
    assert core.connection_state is ConnectionState.UNDEAD
    assert core.identity == us
    assert Defunct() in notifications
    assert not any(isinstance(n, Rejoin) for n in notifications)


def test_addr_bump_node_rejoins_with_next_bump() -> None:
    core = _turn_undead_after_ping(ADDR_BUMP, ID_A, ID_B)

    renewed = Identity(ID_A.addr, b"", ID_A.renewal + 1)
    assert core.identity == renewed
    assert Rejoin(renewed) in core.take_outputs().notifications


def test_addr_bump_node_at_max_bump_goes_undead() -> None:
    us = Identity(ID_A.addr, b"", MAX_RENEWAL)

    core = _turn_undead_after_ping(ADDR_BUMP, us, ID_B)

    assert core.connection_state is ConnectionState.UNDEAD
    assert core.identity == us


# Round trips

ports = st.integers(min_value=0, max_value=65535)
ipv4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))
ipv6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))
addresses = st.builds(Address, st.one_of(ipv4, ipv6), ports)
addr_bump_ids = st.builds(
    Identity, addresses, st.just(b""), st.integers(0, MAX_RENEWAL)
)
socket_ids = st.builds(SocketAddrIdentity, addresses)
probe_numbers = st.integers(0, 255)
incarnations = st.integers(0, 65535)


def messages(identities: st.SearchStrategy[Identity]) -> st.SearchStrategy[Message]:
    with_identity = [
        st.builds(cls, identities, probe_numbers)
        for cls in (PingReq, IndirectPing, IndirectAck, ForwardedAck)
    ]
    return st.one_of(
        st.builds(Ping, probe_numbers),
        st.builds(Ack, probe_numbers),
        *with_identity,
        st.sampled_from([Announce(), Feed(), Gossip(), Broadcast(), TurnUndead()]),
    )


def headers(identities: st.SearchStrategy[Identity]) -> st.SearchStrategy[Header]:
    return st.builds(Header, identities, incarnations, identities, messages(identities))


def members(identities: st.SearchStrategy[Identity]) -> st.SearchStrategy[Member]:
    return st.builds(Member, identities, incarnations, st.sampled_from(list(State)))


@given(headers(addr_bump_ids), st.binary(max_size=8))
def test_addr_bump_header_round_trips(header: Header, tail: bytes) -> None:
    encoded = ADDR_BUMP.encode_header(header)

    assert ADDR_BUMP.decode_header(encoded + tail, 0) == (header, len(encoded))


@given(headers(socket_ids), st.binary(max_size=8))
def test_socket_address_header_round_trips(header: Header, tail: bytes) -> None:
    encoded = SOCKET_ADDRESS.encode_header(header)

    assert SOCKET_ADDRESS.decode_header(encoded + tail, 0) == (header, len(encoded))


@given(members(addr_bump_ids), members(socket_ids))
def test_member_round_trips(bump_member: Member, socket_member: Member) -> None:
    bump_encoded = ADDR_BUMP.encode_member(bump_member)
    socket_encoded = SOCKET_ADDRESS.encode_member(socket_member)

    assert ADDR_BUMP.decode_member(bump_encoded, 0) == (bump_member, len(bump_encoded))
    assert SOCKET_ADDRESS.decode_member(socket_encoded, 0) == (
        socket_member,
        len(socket_encoded),
    )


@given(st.binary(max_size=80))
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    for codec in (ADDR_BUMP, SOCKET_ADDRESS):
        for decode in (codec.decode_header, codec.decode_member):
            try:
                _, end = decode(data, 0)
            except SwimError as error:
                assert isinstance(error, DecodeError)
            else:
                assert end <= len(data)


# The example agent's custom broadcast payload


def test_agent_broadcast_round_trips() -> None:
    encoded = encode_agent_broadcast(ID_A.addr, 251, "hi")

    assert encoded == bytes.fromhex("00 7f000001 fb401f fbfb00 02") + b"hi"
    assert decode_agent_broadcast(encoded + b"ignored") == (
        AgentBroadcastKey(ID_A.addr, 251),
        "hi",
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes.fromhex("00 7f000001 fb401f 00 05") + b"hi", "needs 5 bytes"),
        (bytes.fromhex("00 7f000001 fb401f 00 01 ff"), "not valid UTF-8"),
        (bytes.fromhex("00 7f000001"), "truncated"),
    ],
)
def test_agent_broadcast_rejects(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_agent_broadcast(data)


def test_agent_broadcast_handler_keeps_newest() -> None:
    handler = ExampleAgentBroadcastHandler()
    first = encode_agent_broadcast(ID_A.addr, 5, "first")

    assert handler.receive_item(first, None) == AgentBroadcastKey(ID_A.addr, 5)
    assert handler.receive_item(first, None) is None
    assert (
        handler.receive_item(encode_agent_broadcast(ID_A.addr, 4, "old"), None) is None
    )
    newer = handler.receive_item(encode_agent_broadcast(ID_A.addr, 6, "newer"), None)
    assert newer == AgentBroadcastKey(ID_A.addr, 6)
    assert handler.messages == {ID_A.addr: (6, "newer")}
    assert handler.invalidates(
        AgentBroadcastKey(ID_A.addr, 6), AgentBroadcastKey(ID_A.addr, 5)
    )
    assert not handler.invalidates(
        AgentBroadcastKey(ID_B.addr, 6), AgentBroadcastKey(ID_A.addr, 5)
    )


# Datagrams captured from foca's example agent

AGENT_MESSAGE = re.compile(
    r"^Hello from ID\(127\.0\.0\.1:\d+, \d+\)! I have \d+ peers$"
)


def _load_vectors() -> tuple[dict[Address, Identity], list[dict[str, Any]]]:
    document = json.loads(VECTORS.read_text(encoding="utf-8"))
    agents = {
        Address.parse(agent["addr"]): Identity(
            Address.parse(agent["addr"]), b"", agent["bump"]
        )
        for agent in document["agents"].values()
    }
    return agents, document["datagrams"]


AGENTS, DATAGRAMS = _load_vectors()


def _frame(data: bytes) -> tuple[Header, list[Member], list[bytes], int]:
    # The core's framing: header, COUNT and members unless the message has
    # none, then length-prefixed custom broadcast items to the end.
    header, offset = ADDR_BUMP.decode_header(data, 0)
    updates: list[Member] = []
    if len(data) - offset >= 2 and not isinstance(header.message, Broadcast):
        count = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        for _ in range(count):
            member, offset = ADDR_BUMP.decode_member(data, offset)
            updates.append(member)
    members_end = offset
    items: list[bytes] = []
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 2], "big")
        items.append(data[offset + 2 : offset + 2 + length])
        offset += 2 + length
    assert offset == len(data)
    return header, updates, items, members_end


def test_agent_vectors_cover_message_types() -> None:
    names = {
        MESSAGE_NAMES[type(_frame(bytes.fromhex(d["hex"]))[0].message)]
        for d in DATAGRAMS
    }

    # The agent never calls foca's broadcast(), so it sends no Broadcast message.
    assert names == set(MESSAGE_NAMES.values()) - {"broadcast"}


@pytest.mark.parametrize("record", DATAGRAMS, ids=lambda d: d["hex"][-16:])
def test_agent_datagram_decodes(record: dict[str, Any]) -> None:
    data = bytes.fromhex(record["hex"])
    receiver = Identity(Address.parse(record["receiver"]), b"", record["receiver_bump"])

    header, updates, items, members_end = _frame(data)

    assert header.src == AGENTS[Address.parse(record["udp_source"])]
    # The agent announces with its own clock as the bump, and a second
    # TurnUndead can arrive after the first one made the receiver renew.
    assert header.dst.addr == receiver.addr
    if not isinstance(header.message, (Announce, TurnUndead)):
        assert header.dst == receiver
    encoded = ADDR_BUMP.encode_header(header)
    if members_end > len(encoded):
        encoded += len(updates).to_bytes(2, "big")
        encoded += b"".join(ADDR_BUMP.encode_member(member) for member in updates)
    assert encoded == data[:members_end]
    for item in items:
        key, message = decode_agent_broadcast(item)
        assert key.addr in AGENTS
        assert AGENT_MESSAGE.match(message), message


@pytest.mark.parametrize("record", DATAGRAMS, ids=lambda d: d["hex"][-16:])
def test_core_accepts_agent_datagram(record: dict[str, Any]) -> None:
    data = bytes.fromhex(record["hex"])
    header, _ = ADDR_BUMP.decode_header(data, 0)
    receiver = Identity(Address.parse(record["receiver"]), b"", record["receiver_bump"])
    if not isinstance(header.message, Announce):
        receiver = header.dst
    core = SwimCore(
        receiver,
        Config.new_lan(10),
        ADDR_BUMP,
        random.Random(0),
        broadcast_handler=ExampleAgentBroadcastHandler(),
    )

    core.handle_data(data)

    sender = Address.parse(record["udp_source"])
    assert sender in {member.id.addr for member in core.iter_membership_state()}

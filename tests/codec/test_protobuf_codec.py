"""ProtobufCodec: round trips, the documented bytes and every decode check."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swim_py.codec import ProtobufCodec, decode_varint, encode_varint
from swim_py.codec._generated import swim_pb2 as pb
from swim_py.errors import DecodeError, SwimError
from swim_py.identity import Address, Identity
from swim_py.payload import (
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
NODE_A = Identity(Address.parse("127.0.0.1:8000"), b"a", 1764720000)
NODE_B = Identity(Address.parse("[::1]:9000"), b"", 0)
NODE_C = Identity(Address.parse("127.0.0.1:8002"), b"c", 7)

ALL_MESSAGES: list[Message] = [
    Ping(1),
    Ack(255),
    PingReq(NODE_C, 9),
    IndirectPing(NODE_C, 0),
    IndirectAck(NODE_C, 3),
    ForwardedAck(NODE_C, 4),
    Announce(),
    Feed(),
    Gossip(),
    Broadcast(),
    TurnUndead(),
]


@pytest.mark.parametrize("message", ALL_MESSAGES, ids=lambda m: type(m).__name__)
def test_header_round_trips_every_message(message: Message) -> None:
    header = Header(NODE_A, 65535, NODE_B, message)
    encoded = CODEC.encode_header(header)
    decoded, end = CODEC.decode_header(encoded + b"\x00\x00", 0)
    assert decoded == header
    assert end == len(encoded)


def test_member_matches_documented_bytes() -> None:
    member = Member(NODE_C, 2, State.SUSPECT)
    expected = bytes.fromhex(
        "16 0a 10 0a 01 63 12 09 0a 04 7f 00 00 01 10 c2 3e 18 07 10 02 18 01"
    )
    assert CODEC.encode_member(member) == expected


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.name)
def test_member_round_trips_each_state(state: State) -> None:
    member = Member(NODE_B, 300, state)
    decoded, end = CODEC.decode_member(CODEC.encode_member(member), 0)
    assert decoded == member
    assert end == len(CODEC.encode_member(member))


def test_members_decode_back_to_back() -> None:
    first = Member(NODE_A, 1, State.ALIVE)
    second = Member(NODE_B, 2, State.DOWN)
    data = CODEC.encode_member(first) + CODEC.encode_member(second)
    decoded_first, offset = CODEC.decode_member(data, 0)
    decoded_second, end = CODEC.decode_member(data, offset)
    assert (decoded_first, decoded_second) == (first, second)
    assert end == len(data)


def _header_bytes(mutate: object) -> bytes:
    message = pb.Header(src_incarnation=1)
    for target in (message.src, message.dst):
        target.addr.ip = bytes([127, 0, 0, 1])
        target.addr.port = 9000
    message.ping.probe_number = 1
    assert callable(mutate)
    mutate(message)
    body = message.SerializeToString()
    return encode_varint(len(body)) + body


def _set(path: str, value: object) -> object:
    def mutate(message: pb.Header) -> None:
        *parents, leaf = path.split(".")
        target: object = message
        for name in parents:
            target = getattr(target, name)
        setattr(target, leaf, value)

    return mutate


def _clear(field: str) -> object:
    return lambda message: message.ClearField(field)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(_clear("src"), id="missing-src"),
        pytest.param(_clear("dst"), id="missing-dst"),
        pytest.param(_clear("ping"), id="missing-message"),
        pytest.param(lambda m: m.src.ClearField("addr"), id="missing-addr"),
        pytest.param(_set("src.addr.ip", b"\x01\x02\x03"), id="3-byte-ip"),
        pytest.param(_set("src.addr.port", 65536), id="port-above-65535"),
        pytest.param(_set("src_incarnation", 65536), id="incarnation-above-u16"),
        pytest.param(_set("ping.probe_number", 256), id="probe-above-u8"),
        pytest.param(lambda m: m.ping_req.SetInParent(), id="ping-req-without-target"),
    ],
)
def test_decode_header_rejects_invalid_fields(mutate: object) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode_header(_header_bytes(mutate), 0)


def test_decode_member_rejects_unknown_state() -> None:
    message = pb.Member(incarnation=1)
    message.id.addr.ip = bytes(4)
    message.id.addr.port = 1
    body = message.SerializeToString() + b"\x18\x07"  # state = 7
    with pytest.raises(DecodeError, match="unknown state"):
        CODEC.decode_member(encode_varint(len(body)) + body, 0)


def test_decode_header_skips_unknown_fields() -> None:
    encoded = _header_bytes(lambda m: None)
    body = encoded[1:] + b"\xf8\x07\x2a"  # field 127, varint 42
    decoded, _ = CODEC.decode_header(encode_varint(len(body)) + body, 0)
    assert decoded.message == Ping(1)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x80", id="truncated-varint"),
        pytest.param(b"\x05\x0a\x00", id="length-past-end"),
        pytest.param(b"\x02\xff\xff", id="garbage-body"),
        pytest.param(b"\xff" * 11, id="varint-too-long"),
    ],
)
def test_decode_header_rejects_bad_framing(data: bytes) -> None:
    with pytest.raises(DecodeError):
        CODEC.decode_header(data, 0)


def test_decode_varint_accepts_non_minimal_form() -> None:
    assert decode_varint(b"\x85\x00", 0) == (5, 2)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trips(value: int) -> None:
    encoded = encode_varint(value)
    assert decode_varint(encoded, 0) == (value, len(encoded))


identities = st.builds(
    Identity,
    addr=st.builds(
        Address,
        ip=st.one_of(
            st.ip_addresses(v=4).map(lambda ip: ipaddress.IPv4Address(int(ip))),
            st.ip_addresses(v=6).map(lambda ip: ipaddress.IPv6Address(int(ip))),
        ),
        port=st.integers(0, 65535),
    ),
    id=st.binary(max_size=40),
    renewal=st.integers(0, 2**64 - 1),
)


@given(identities, st.integers(0, 65535), st.sampled_from(list(State)))
def test_member_round_trips_any_value(
    identity: Identity, incarnation: int, state: State
) -> None:
    member = Member(identity, incarnation, state)
    assert CODEC.decode_member(CODEC.encode_member(member), 0)[0] == member


@given(st.binary(max_size=200))
def test_decode_of_random_bytes_succeeds_or_raises_swim_error(data: bytes) -> None:
    for decode in (CODEC.decode_header, CODEC.decode_member):
        try:
            decode(data, 0)
        except SwimError:
            pass

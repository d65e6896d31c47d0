"""swim_py's codec and framing against foca 1.0 with rust_peer's codec.

Every test sends the same bytes or values to swim_py and to one
``rust_peer oracle`` process (see ``rust_peer/src/oracle.rs``). Valid input
must give equal values and bytes in both, and invalid input the same verdict
and error class. The oracle also feeds each
datagram to a real ``Foca`` whose identity is the datagram's ``dst``, which
checks foca's own receive path, and the last tests compare that with
``SwimCore.handle_data``.

Hypothesis runs each property 300 times from a seed chosen per process.
A failure report prints the seed beside the falsifying example as
``SWIM_CODEC_SEED=N``. Set that environment variable to rerun the same
examples.
"""

from __future__ import annotations

import os
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, seed, settings
from hypothesis import strategies as st

from conformance.codec_json import (
    datagram_from_json,
    datagram_to_json,
    header_from_json,
    header_to_json,
    member_from_json,
    member_to_json,
)
from conformance.codec_oracle import CodecOracle
from swim_py.broadcast import BroadcastHandler
from swim_py.codec import ProtobufCodec, encode_varint
from swim_py.codec._generated import swim_pb2 as pb
from swim_py.codec.datagram import Datagram, decode_datagram, encode_datagram
from swim_py.config import Config
from swim_py.core import SwimCore
from swim_py.errors import SwimError
from swim_py.identity import Address, Identity
from swim_py.payload import (
    Announce,
    Broadcast,
    ForwardedAck,
    Header,
    IndirectAck,
    IndirectPing,
    Member,
    Message,
    PingReq,
    State,
)
from tests.codec import strategies as gen
from tests.codec.vector_file import load_vectors

CODEC = ProtobufCodec()
SEED = int(os.environ.get("SWIM_CODEC_SEED") or random.SystemRandom().getrandbits(32))
SEED_NOTE = f"examples drawn with SWIM_CODEC_SEED={SEED}"
BUDGET = settings(
    max_examples=300,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# What a receiver checks the size against when a test gives no limit: the
# largest UDP payload, as the oracle does.
DEFAULT_MAX_PACKET_SIZE = 65535
PLACEHOLDER = Identity(Address.parse("0.0.0.0:0"))


# Verdicts


def python_verdict(
    data: bytes, max_packet_size: int | None
) -> tuple[str, Datagram | None]:
    """Return ("ok", datagram) or (error class, None) from swim_py's framing."""
    try:
        return "ok", decode_datagram(CODEC, data, max_packet_size=max_packet_size)
    except SwimError as exc:
        return exc.error_class, None


def oracle_verdict(reply: dict[str, Any]) -> tuple[str, Datagram | None]:
    if "error" in reply:
        return reply["error"], None
    return "ok", datagram_from_json(reply["datagram"])


def python_header(data: bytes) -> Header | None:
    try:
        return CODEC.decode_header(data, 0)[0]
    except SwimError:
        return None


def names_receiver(header: Header) -> bool:
    """Return whether an indirect probe message names ``dst`` as target or origin."""
    message = header.message
    if isinstance(message, (PingReq, IndirectAck)):
        return message.target == header.dst
    if isinstance(message, (IndirectPing, ForwardedAck)):
        return message.origin == header.dst
    return False


def assert_same_verdict(
    oracle: CodecOracle, data: bytes, max_packet_size: int | None = None
) -> dict[str, Any]:
    """Require the same framing verdict from both and a consistent foca result."""
    reply = oracle.decode_datagram(data, max_packet_size)
    assert "foca" in reply, reply
    py_class, py_datagram = python_verdict(data, max_packet_size)
    rust_class, rust_datagram = oracle_verdict(reply)
    assert py_class == rust_class, (data.hex(), reply)
    assert py_datagram == rust_datagram, data.hex()
    assert_foca_consistent(data, max_packet_size, py_class, reply["foca"])
    return reply


def assert_foca_consistent(
    data: bytes, max_packet_size: int | None, framing: str, foca: dict[str, Any]
) -> None:
    """Check foca's handle_data result against the framing verdict.

    They differ only through the receiver checks that framing leaves out.
    """
    result = foca["result"]
    limit = DEFAULT_MAX_PACKET_SIZE if max_packet_size is None else max_packet_size
    header = python_header(data)
    if len(data) > limit:
        assert result == "data_too_big"
    elif header is None:
        assert result == "decode"
    elif header.src == header.dst or header.src.addr == header.dst.addr:
        assert result == "data_from_ourselves"
    elif names_receiver(header) and framing in ("ok", "malformed_packet"):
        assert result in (framing, "indirect_for_ourselves")
    elif result == "encode" and max_packet_size is not None:
        # The receiver's reply did not fit in its small max_packet_size.
        assert framing in ("ok", "malformed_packet")
    else:
        assert result == framing, (data.hex(), foca)
    if foca["data_received"] is not None:
        assert header_from_json(foca["data_received"]) == header
    if result == "ok":
        assert foca["data_received"] is not None


# Valid values in both directions


@BUDGET
@seed(SEED)
@given(header=gen.headers)
def test_header_same_bytes_and_value(oracle: CodecOracle, header: Header) -> None:
    note(SEED_NOTE)
    encoded = CODEC.encode_header(header)
    reply = oracle.decode_header(encoded + b"\x00\x00")
    assert header_from_json(reply["header"]) == header
    assert reply["end"] == len(encoded)
    assert oracle.encode_header(header_to_json(header))["hex"] == encoded.hex()


@BUDGET
@seed(SEED)
@given(member=gen.members)
def test_member_same_bytes_and_value(oracle: CodecOracle, member: Member) -> None:
    note(SEED_NOTE)
    encoded = CODEC.encode_member(member)
    reply = oracle.decode_member(encoded + b"\xff")
    assert member_from_json(reply["member"]) == member
    assert reply["end"] == len(encoded)
    assert oracle.encode_member(member_to_json(member))["hex"] == encoded.hex()


@BUDGET
@seed(SEED)
@given(datagram=gen.datagrams())
def test_datagram_same_bytes_and_value(oracle: CodecOracle, datagram: Datagram) -> None:
    note(SEED_NOTE)
    encoded = encode_datagram(CODEC, datagram)
    reply = assert_same_verdict(oracle, encoded)
    assert datagram_from_json(reply["datagram"]) == datagram
    rust_encoded = oracle.encode_datagram(datagram_to_json(datagram))
    assert rust_encoded["hex"] == encoded.hex()
    assert decode_datagram(CODEC, bytes.fromhex(rust_encoded["hex"])) == datagram


@BUDGET
@seed(SEED)
@given(datagram=gen.ambiguous_datagrams())
def test_ambiguous_layout_rejected_by_both(
    oracle: CodecOracle, datagram: Datagram
) -> None:
    note(SEED_NOTE)
    with pytest.raises(ValueError):
        encode_datagram(CODEC, datagram)
    reply = oracle.encode_datagram(datagram_to_json(datagram))
    assert reply.get("error") == "invalid_datagram", reply


# Invalid and mutated bytes


@BUDGET
@seed(SEED)
@given(data=st.binary(max_size=200))
def test_random_bytes_same_verdict(oracle: CodecOracle, data: bytes) -> None:
    note(SEED_NOTE)
    assert_same_verdict(oracle, data)


@st.composite
def mutated_datagrams(draw: st.DrawFn) -> tuple[bytes, int | None, str]:
    """Draw a valid datagram broken by one mutation, and the mutation's name."""
    datagram = draw(gen.datagrams())
    parts = gen.Parts.of(datagram)
    data = parts.assemble()
    header_len = len(encode_varint(len(parts.header_body))) + len(parts.header_body)
    kind = draw(
        st.sampled_from(
            [
                "truncate",
                "extend",
                "flip",
                "count",
                "item_length",
                "oversize",
                "unknown_field",
                "mistyped_field",
                "long_key",
                "overflowing_varint",
                "unknown_state",
                "nested_groups",
            ]
        )
    )
    max_packet_size = None
    if kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "extend":
        data += draw(st.binary(min_size=1, max_size=8))
    elif kind == "flip":
        index = draw(st.integers(0, len(data) - 1))
        mask = draw(st.integers(1, 255))
        data = data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]
    elif kind == "count":
        if parts.member_bodies is None:
            data += draw(st.binary(min_size=2, max_size=2))
        else:
            count = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
            data = data[:header_len] + count + data[header_len + 2 :]
    elif kind == "item_length":
        if not parts.items:
            data += draw(st.binary(min_size=2, max_size=4))
        else:
            offset = len(data) - sum(len(item) + 2 for item in parts.items)
            length = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
            data = data[:offset] + length + data[offset + 2 :]
    elif kind == "oversize":
        max_packet_size = max(1, len(data) - draw(st.integers(0, 3)))
    else:
        data = draw(_body_mutation(kind, parts))
    return data, max_packet_size, kind


@st.composite
def _body_mutation(draw: st.DrawFn, kind: str, parts: gen.Parts) -> bytes:
    """Edit the header body or one member body, then reframe the datagram."""
    bodies = [parts.header_body, *(parts.member_bodies or ())]
    index = draw(st.integers(0, len(bodies) - 1))
    body = bodies[index]
    known = gen.HEADER_FIELDS if index == 0 else gen.MEMBER_FIELDS
    if kind == "unknown_field":
        body += draw(gen.unknown_fields())
    elif kind == "mistyped_field":
        body += draw(gen.mistyped_fields(known))
    elif kind == "long_key":
        body = gen.long_key(body, draw(st.integers(2, 11)))
    elif kind == "overflowing_varint":
        body += gen.overflowing_varint_field(draw(st.sampled_from([2, 20])))
    elif kind == "unknown_state":
        # Values above 2**32 wrap to a valid state in both decoders.
        value = draw(
            st.one_of(st.integers(3, 2**64 - 1), st.sampled_from([2**32, 2**32 + 2]))
        )
        body += gen.field_bytes(3, 0, encode_varint(value))
    else:
        body += gen.nested_groups(30, draw(st.integers(95, 101)))
    if index == 0:
        return gen.Parts(body, parts.member_bodies, parts.items).assemble()
    members = list(parts.member_bodies or ())
    members[index - 1] = body
    return gen.Parts(parts.header_body, tuple(members), parts.items).assemble()


@BUDGET
@seed(SEED)
@given(case=mutated_datagrams())
def test_mutated_datagram_same_verdict(
    oracle: CodecOracle, case: tuple[bytes, int | None, str]
) -> None:
    note(SEED_NOTE)
    data, max_packet_size, _kind = case
    assert_same_verdict(oracle, data, max_packet_size)


@BUDGET
@seed(SEED)
@given(header=gen.headers, extra=st.binary(max_size=40))
def test_header_with_appended_bytes_same_verdict(
    oracle: CodecOracle, header: Header, extra: bytes
) -> None:
    note(SEED_NOTE)
    # Random bytes appended inside the header's protobuf body: unknown
    # fields, broken keys and truncated values.
    body = gen.Parts.of(Datagram(header, None, ())).header_body + extra
    data = gen.with_length(body)
    reply = oracle.decode_header(data)
    try:
        decoded, end = CODEC.decode_header(data, 0)
    except SwimError as exc:
        assert reply.get("error") == exc.error_class, (data.hex(), reply)
        return
    assert "header" in reply, (data.hex(), reply)
    assert header_from_json(reply["header"]) == decoded
    assert reply["end"] == end


# Targeted cases where upb and prost disagree, which swim_py's codec follows
# prost on. Each is a Member body suffix or a whole Member body.


def _member_body() -> bytes:
    message = pb.Member(incarnation=3, state=pb.STATE_SUSPECT)
    message.id.id = b"x"
    message.id.addr.ip = bytes([127, 0, 0, 1])
    message.id.addr.port = 80
    return message.SerializeToString()


PROST_CASES = {
    "incarnation-as-length-delimited": _member_body() + b"\x12\x01\x05",
    "state-as-fixed32": _member_body() + b"\x1d\x01\x00\x00\x00",
    "id-as-varint": _member_body() + b"\x08\x01",
    "id-as-group": _member_body() + b"\x0b\x0c",
    "key-in-6-bytes": _member_body() + b"\x90\x80\x80\x80\x80\x00\x05",
    "key-in-10-bytes": _member_body() + b"\x90" + b"\x80" * 8 + b"\x00\x05",
    "key-above-u32": _member_body() + b"\x90\x80\x80\x80\x10\x05",
    "varint-above-64-bits": _member_body() + gen.overflowing_varint_field(2),
    "unknown-varint-above-64-bits": _member_body() + gen.overflowing_varint_field(20),
    "99-nested-groups": _member_body() + gen.nested_groups(30, 99),
    "100-nested-groups": _member_body() + gen.nested_groups(30, 100),
    "lone-end-group": _member_body() + b"\xf4\x01",
}


@pytest.mark.parametrize("body", PROST_CASES.values(), ids=PROST_CASES.keys())
def test_prost_rule_same_verdict(oracle: CodecOracle, body: bytes) -> None:
    data = gen.with_length(body)
    reply = oracle.decode_member(data)
    try:
        member, end = CODEC.decode_member(data, 0)
    except SwimError as exc:
        assert reply.get("error") == exc.error_class, reply
        return
    assert "member" in reply, reply
    assert member_from_json(reply["member"]) == member
    assert reply["end"] == end


@pytest.mark.parametrize("depth", range(95, 101))
@pytest.mark.parametrize("where", ["header", "identity", "address"])
def test_recursion_limit_same_verdict(
    oracle: CodecOracle, where: str, depth: int
) -> None:
    # prost spends one unit of its depth budget of 100 on each nested
    # message and each nested group.
    groups = gen.nested_groups(30, depth)
    message = pb.Header(src_incarnation=1)
    for target in (message.src, message.dst):
        target.addr.ip = bytes([127, 0, 0, 1])
        target.addr.port = 9000
    message.dst.addr.port = 9001
    message.gossip.SetInParent()
    if where == "identity":
        message.src.MergeFromString(groups)
    elif where == "address":
        message.src.addr.MergeFromString(groups)
    body = message.SerializeToString()
    if where == "header":
        body += groups
    data = gen.with_length(body) + b"\x00\x00"
    assert_same_verdict(oracle, data)


# Vectors as mutation seeds: real foca output, broken one byte at a time.


@pytest.mark.parametrize("vector", load_vectors(), ids=lambda v: v["name"])
def test_vector_truncations_same_verdict(
    oracle: CodecOracle, vector: dict[str, Any]
) -> None:
    data = bytes.fromhex(vector["hex"])
    for end in range(len(data)):
        assert_same_verdict(oracle, data[:end])


# swim_py's receive path against foca's


class _AcceptEveryItem(BroadcastHandler[None]):
    """Takes every custom broadcast item as valid and stale, as the oracle does."""

    def receive_item(self, data: bytes, sender: Identity | None) -> None:
        return None


def core_result(data: bytes, max_packet_size: int | None) -> str:
    """Feed ``data`` to a fresh SwimCore whose identity is the header's dst."""
    header = python_header(data)
    identity = PLACEHOLDER if header is None else header.dst
    limit = DEFAULT_MAX_PACKET_SIZE if max_packet_size is None else max_packet_size
    core = SwimCore(
        identity,
        Config(max_packet_size=limit),
        CODEC,
        random.Random(0),
        _AcceptEveryItem(),
    )
    try:
        core.handle_data(data)
    except SwimError as exc:
        return exc.error_class
    return "ok"


@BUDGET
@seed(SEED)
@given(case=mutated_datagrams())
def test_core_receive_same_result(
    oracle: CodecOracle, case: tuple[bytes, int | None, str]
) -> None:
    note(SEED_NOTE)
    data, max_packet_size, _kind = case
    if max_packet_size is not None and max_packet_size < 64:
        max_packet_size = None
    reply = oracle.decode_datagram(data, max_packet_size)
    assert core_result(data, max_packet_size) == reply["foca"]["result"], (
        data.hex(),
        reply["foca"],
    )


@st.composite
def receiver_cases(draw: st.DrawFn) -> bytes:
    """Draw a valid datagram that trips a check on the receiver's identity."""
    datagram = draw(gen.datagrams())
    header = datagram.header
    src, dst, message = header.src, header.dst, header.message
    kind = draw(
        st.sampled_from(
            ["same_identity", "same_address", "names_dst", "updates_about_peers"]
        )
    )
    updates = datagram.updates
    # Updates about the receiver make it refute, rejoin or go undead, and a
    # Down update about the sender leaves it with no active member.
    about_dst = Member(dst, draw(gen.incarnations), draw(st.sampled_from(State)))
    src_down = Member(src, draw(gen.incarnations), State.DOWN)

    if kind == "same_identity":
        src = dst
    elif kind == "same_address":
        src = Identity(dst.addr, src.id, src.renewal)
    elif kind == "updates_about_peers":
        if not isinstance(message, (Announce, Broadcast)):
            updates = (*(updates or ()), about_dst, src_down)
    elif kind == "names_dst":
        probe = draw(gen.probe_numbers)
        indirect: list[Message] = [
            PingReq(dst, probe),
            IndirectPing(dst, probe),
            IndirectAck(dst, probe),
            ForwardedAck(dst, probe),
        ]
        message = draw(st.sampled_from(indirect))
        if src.addr == dst.addr:
            src = Identity(Address(src.addr.ip, (dst.addr.port + 1) % 65536), src.id)

    changed = Header(src, header.src_incarnation, dst, message)
    if kind == "names_dst":
        # An Announce or Broadcast may have become an indirect probe message,
        # which needs COUNT before any broadcast item.
        extra = draw(st.sampled_from([(), (about_dst,), (src_down,)]))
        updates = (*(updates or ()), *extra)
    return encode_datagram(CODEC, Datagram(changed, updates, datagram.broadcasts))


@BUDGET
@seed(SEED)
@given(data=receiver_cases())
def test_receiver_checks_same_result(oracle: CodecOracle, data: bytes) -> None:
    note(SEED_NOTE)
    reply = assert_same_verdict(oracle, data)
    assert core_result(data, None) == reply["foca"]["result"], (
        data.hex(),
        reply["foca"],
    )


@BUDGET
@seed(SEED)
@given(datagram=gen.datagrams())
def test_core_receive_valid_same_result(
    oracle: CodecOracle, datagram: Datagram
) -> None:
    note(SEED_NOTE)
    data = encode_datagram(CODEC, datagram)
    reply = oracle.decode_datagram(data)
    assert core_result(data, None) == reply["foca"]["result"], (
        data.hex(),
        reply["foca"],
    )

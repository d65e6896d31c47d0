"""swim_py against golden datagrams that foca 1.0 sent through rust_peer's codec.

Regenerate the vectors with
``cd rust_peer && cargo run --release --locked -- vectors --out ../tests/vectors``.
"""

from __future__ import annotations

import dataclasses
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conformance.codec_json import datagram_from_json
from swim_py.codec import ProtobufCodec
from swim_py.codec.datagram import Datagram, decode_datagram, encode_datagram
from swim_py.config import Config
from swim_py.core import SwimCore
from swim_py.events import DataReceived
from swim_py.identity import Address, Identity
from swim_py.keyed_broadcast import KeyedBroadcastHandler, KeyedItem
from swim_py.payload import (
    MAX_INCARNATION,
    MESSAGE_NAMES,
    Announce,
    Broadcast,
    Feed,
    Gossip,
    Member,
    Ping,
    State,
)
from tests.codec.vector_file import VECTORS_DIR, load_vectors

CODEC = ProtobufCodec()
VECTORS = load_vectors()
VECTOR_IDS = [vector["name"] for vector in VECTORS]


def expected_datagram(vector: dict[str, Any]) -> Datagram:
    return datagram_from_json(vector["datagram"], f"{vector['name']}.datagram")


def all_identities(datagram: Datagram) -> list[Identity]:
    header = datagram.header
    identities = [header.src, header.dst]
    for field in dataclasses.fields(header.message):
        value = getattr(header.message, field.name)
        if isinstance(value, Identity):
            identities.append(value)
    identities.extend(member.id for member in datagram.updates or ())
    return identities


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_decodes_to_expected(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    decoded = decode_datagram(CODEC, data, max_packet_size=vector["max_packet_size"])
    expected = expected_datagram(vector)
    assert decoded.header == expected.header
    assert decoded.updates == expected.updates
    assert decoded.broadcasts == expected.broadcasts


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_encodes_to_same_bytes(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    assert len(data) == vector["len"]
    assert encode_datagram(CODEC, expected_datagram(vector)) == data


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_items_encode_separately(vector: dict[str, Any]) -> None:
    # The header and each member are self-delimiting and start where the
    # previous item ends.
    data = bytes.fromhex(vector["hex"])
    expected = expected_datagram(vector)
    header_bytes = CODEC.encode_header(expected.header)
    assert data.startswith(header_bytes)
    offset = len(header_bytes)
    if expected.updates is not None:
        offset += 2
        for member in expected.updates:
            member_bytes = CODEC.encode_member(member)
            assert data[offset : offset + len(member_bytes)] == member_bytes
            offset += len(member_bytes)


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_accepted_by_core(vector: dict[str, Any]) -> None:
    # A swim_py member with the vector's dst identity takes the datagram as
    # foca would: no error, and DataReceived with the expected header.
    expected = expected_datagram(vector)
    core = SwimCore(
        expected.header.dst,
        Config(),
        CODEC,
        random.Random(0),
        KeyedBroadcastHandler(),
    )
    core.handle_data(bytes.fromhex(vector["hex"]))
    received = [
        notification.header
        for notification in core.take_outputs().notifications
        if isinstance(notification, DataReceived)
    ]
    assert received == [expected.header]


@pytest.mark.parametrize("vector", VECTORS, ids=VECTOR_IDS)
def test_vector_broadcasts_are_keyed_items(vector: dict[str, Any]) -> None:
    # rust_peer's handler sends only KeyedBroadcast items.
    for item in expected_datagram(vector).broadcasts:
        assert KeyedItem.decode(item).encode() == item


def _replay_gossip_then(vector_name: str, action: str) -> tuple[bytes, bytes]:
    """Replay a rust_peer scenario on SwimCore; return (swim_py's, foca's) bytes.

    The scenario: a member with max_transmissions 1 learns one peer, sends a
    Gossip that empties its updates backlog, then runs ``action``.
    """
    vector = next(v for v in VECTORS if v["name"] == vector_name)
    expected = expected_datagram(vector)
    previous = expected.header.src
    if action == "change_identity":
        previous = Identity(previous.addr, previous.id, previous.renewal - 1)
    core = SwimCore(
        previous,
        Config(max_transmissions=1, max_packet_size=vector["max_packet_size"]),
        CODEC,
        random.Random(0),
        KeyedBroadcastHandler(),
    )
    core.apply_many([Member(expected.header.dst, 0, State.ALIVE)], do_broadcast=True)
    core.gossip()
    core.take_outputs()
    if action == "leave_cluster":
        core.leave_cluster()
    else:
        renewed = previous.renew()
        assert renewed is not None
        core.change_identity(renewed)
    sends = core.take_outputs().sends
    assert len(sends) == 1
    return sends[0].data, bytes.fromhex(vector["hex"])


@pytest.mark.parametrize(
    ("vector_name", "action"),
    [
        ("leave_cluster_gossip", "leave_cluster"),
        ("change_identity_max_renewal", "change_identity"),
    ],
)
def test_core_sends_vector_bytes(vector_name: str, action: str) -> None:
    # Scenarios with a single peer involve no random choice, so swim_py's
    # sending path must produce foca's bytes exactly.
    sent, expected = _replay_gossip_then(vector_name, action)
    assert sent == expected


def _replay_cut_gossip() -> tuple[Datagram, Datagram]:
    # rust_peer's packet_size_limits scenario: max_packet_size 200, the dst
    # learned as Alive, then 12 Down members u0..u11 at 192.0.2.N:7502 with
    # incarnation N, all queued for broadcast, then a custom broadcast item.
    vector = next(
        v for v in VECTORS if v["name"] == "gossip_updates_cut_at_max_packet_size"
    )
    expected = expected_datagram(vector)

    core = SwimCore(
        expected.header.src,
        Config(max_packet_size=vector["max_packet_size"]),
        CODEC,
        random.Random(0),
        KeyedBroadcastHandler(),
    )
    core.apply_many([Member(expected.header.dst, 0, State.ALIVE)], do_broadcast=True)
    core.apply_many(
        [
            Member(
                Identity(Address.parse(f"192.0.2.{n}:7502"), f"u{n}".encode(), 0),
                n,
                State.DOWN,
            )
            for n in range(12)
        ],
        do_broadcast=True,
    )
    core.add_broadcast(KeyedItem("big", 1, bytes([0xAB]) * 40).encode())
    core.take_outputs()

    core.gossip()
    (send,) = core.take_outputs().sends
    return decode_datagram(CODEC, send.data), expected


def test_cut_gossip_carries_same_update_count() -> None:
    sent, expected = _replay_cut_gossip()

    assert len(sent.updates or ()) == len(expected.updates or ())
    assert sent.broadcasts == expected.broadcasts == ()


# TODO: foca 1.0 keeps its updates backlog in a std BinaryHeap, which pops
# items of equal priority (remaining transmissions, then encoded length) in
# an order set by the heap's layout. swim_py pops them in the order they were
# queued, so a full Gossip carries different equal-priority updates. The
# loss section of docs/benchmarks.md found false downs in more swim_py runs
# with 100 members at 10 % loss (15 of 60 against 7). Whether this order is
# the cause is untested.
@pytest.mark.xfail(
    strict=True, reason="equal-priority updates leave in queue order, not foca's"
)
def test_cut_gossip_picks_same_updates_as_foca() -> None:
    sent, expected = _replay_cut_gossip()

    assert sent.updates == expected.updates


def test_vector_names_are_unique() -> None:
    assert len(set(VECTOR_IDS)) == len(VECTOR_IDS)


def test_vectors_cover_every_message_type() -> None:
    sent = {MESSAGE_NAMES[type(expected_datagram(v).header.message)] for v in VECTORS}
    assert sent == set(MESSAGE_NAMES.values())


def test_vectors_cover_section_cases() -> None:
    datagrams = [(v, expected_datagram(v)) for v in VECTORS]
    pings = [d for _, d in datagrams if isinstance(d.header.message, Ping)]
    assert any(d.updates for d in pings), "a Ping with updates"
    assert any(d.updates == () for d in pings), "a Ping with COUNT 0"
    assert any(d.broadcasts for d in pings), "a Ping with a broadcast item"
    gossips = [d for _, d in datagrams if isinstance(d.header.message, Gossip)]
    assert any(d.updates is None for d in gossips), "a Gossip without COUNT"
    assert any(d.updates and d.broadcasts for d in gossips), "updates and items"
    broadcasts = [d for _, d in datagrams if isinstance(d.header.message, Broadcast)]
    assert broadcasts and all(d.updates is None for d in broadcasts)
    announces = [d for _, d in datagrams if isinstance(d.header.message, Announce)]
    assert all(d.updates is None and not d.broadcasts for d in announces)


def test_vectors_cover_packet_size_cuts() -> None:
    small = [(v, expected_datagram(v)) for v in VECTORS if v["max_packet_size"] < 1400]
    assert any(isinstance(d.header.message, Feed) and d.updates for _, d in small)
    assert any(isinstance(d.header.message, Gossip) and d.updates for _, d in small)
    assert any(isinstance(d.header.message, Broadcast) for _, d in small)
    assert any(v["len"] == v["max_packet_size"] for v, _ in small)


def test_vectors_cover_identity_and_number_limits() -> None:
    datagrams = [expected_datagram(v) for v in VECTORS]
    identities = [identity for d in datagrams for identity in all_identities(d)]
    assert any(identity.addr.ip.version == 4 for identity in identities)
    assert any(identity.addr.ip.version == 6 for identity in identities)
    assert any(identity.id == b"" for identity in identities)
    assert any(identity.renewal == 2**64 - 1 for identity in identities)
    assert any(d.header.src.renewal == 1 for d in datagrams), "a renewed identity"
    assert any(d.header.src_incarnation == MAX_INCARNATION for d in datagrams)
    members = [member for d in datagrams for member in d.updates or ()]
    assert any(member.incarnation == MAX_INCARNATION for member in members)
    assert {member.state for member in members} == set(State)


def test_vectors_file_is_current(rust_peer_binary: Path) -> None:
    result = subprocess.run(
        [str(rust_peer_binary), "vectors", "--out", str(VECTORS_DIR), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr

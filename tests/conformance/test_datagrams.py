"""The send_datagram kinds against swim_py's core, and the harness's UDP sender."""

from __future__ import annotations

import socket

import pytest

from conformance.contract import Identity
from conformance.datagrams import (
    DATAGRAM_KINDS,
    UNKNOWN_FIELDS,
    DatagramSender,
    build_datagram,
    build_update,
    swim_identity,
    with_unknown_fields,
)
from swim_py.codec import ProtobufCodec
from swim_py.codec.datagram import decode_datagram
from swim_py.core import SwimCore
from swim_py.errors import SwimError
from swim_py.events import DataReceived
from swim_py.keyed_broadcast import KeyedBroadcastHandler
from swim_py.payload import MESSAGE_NAMES
from tests.helpers.craft import alive, apply, new_core

TARGET = Identity(id="6e30", addr="127.0.0.1:7001", renewal=0)
SENDER = Identity(id="6e32", addr="127.0.0.1:7002", renewal=3)
MAX_PACKET_SIZE = 1400


def connected_core() -> SwimCore:
    """Return TARGET's core, connected, with SENDER as its only member."""
    core = new_core(swim_identity(TARGET), handler=KeyedBroadcastHandler())
    apply(core, alive(swim_identity(SENDER)))
    return core


@pytest.mark.parametrize("kind", list(DATAGRAM_KINDS))
def test_kind_raises_documented_error_class(kind: str) -> None:
    core = connected_core()
    data = build_datagram(kind, TARGET, SENDER, MAX_PACKET_SIZE)

    with pytest.raises(SwimError) as caught:
        core.handle_data(data)

    assert caught.value.error_class == DATAGRAM_KINDS[kind].error_class


@pytest.mark.parametrize("kind", list(DATAGRAM_KINDS))
def test_kind_counts_in_received_as_documented(kind: str) -> None:
    core = connected_core()
    core.take_outputs()
    data = build_datagram(kind, TARGET, SENDER, MAX_PACKET_SIZE)

    with pytest.raises(SwimError):
        core.handle_data(data)

    received = [
        MESSAGE_NAMES[type(notification.header.message)]
        for notification in core.take_outputs().notifications
        if isinstance(notification, DataReceived)
    ]
    expected = DATAGRAM_KINDS[kind].counted_as
    assert received == ([expected] if expected else [])


@pytest.mark.parametrize("kind", list(DATAGRAM_KINDS))
def test_kind_changes_nothing_and_sends_nothing(kind: str) -> None:
    core = connected_core()
    core.take_outputs()
    before = list(core.iter_membership_state())

    with pytest.raises(SwimError):
        core.handle_data(build_datagram(kind, TARGET, SENDER, MAX_PACKET_SIZE))

    assert list(core.iter_membership_state()) == before
    assert core.take_outputs().sends == []


def test_oversized_is_one_byte_too_long() -> None:
    data = build_datagram("oversized", TARGET, SENDER, 512)

    assert len(data) == 513


def test_garbage_is_fixed() -> None:
    first = build_datagram("garbage", TARGET, SENDER, MAX_PACKET_SIZE)
    second = build_datagram("garbage", SENDER, TARGET, MAX_PACKET_SIZE)

    assert first == second
    assert len(first) == 64


def test_unknown_kind_raises_key_error() -> None:
    with pytest.raises(KeyError):
        build_datagram("noise", TARGET, SENDER, MAX_PACKET_SIZE)


def test_with_unknown_fields_extends_length_prefix() -> None:
    body = bytes(200)
    delimited = b"\xc8\x01" + body

    extended = with_unknown_fields(delimited)

    length = 200 + len(UNKNOWN_FIELDS)
    assert (
        extended == bytes([length & 0x7F | 0x80, length >> 7]) + body + UNKNOWN_FIELDS
    )


@pytest.mark.parametrize("delimited", [b"", b"\x80", b"\x03ab", b"\x01ab"])
def test_with_unknown_fields_rejects_bad_prefix(delimited: bytes) -> None:
    with pytest.raises(ValueError):
        with_unknown_fields(delimited)


def test_update_with_unknown_fields_decodes_as_plain() -> None:
    codec = ProtobufCodec()
    args = (TARGET, SENDER, TARGET, "suspect", 1)
    plain = build_update(*args)
    extended = build_update(*args, unknown_fields=True)

    assert len(extended) == len(plain) + 2 * len(UNKNOWN_FIELDS)
    assert decode_datagram(codec, extended) == decode_datagram(codec, plain)


def test_replayed_suspicion_refuted_once() -> None:
    core = connected_core()
    core.take_outputs()
    data = build_update(TARGET, SENDER, TARGET, "suspect", 0, unknown_fields=True)

    for _ in range(3):
        core.handle_data(data)

    assert core.incarnation == 1


def test_sender_delivers_to_local_socket() -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    sender = DatagramSender()
    try:
        sender.send(b"\x01\x02", f"127.0.0.1:{port}")
        data, source = receiver.recvfrom(100)
    finally:
        sender.close()
        receiver.close()

    assert data == b"\x01\x02"
    assert source[0] == "127.0.0.1"


def test_sender_rejects_other_hosts() -> None:
    sender = DatagramSender()
    try:
        with pytest.raises(ValueError) as caught:
            sender.send(b"\x00", "10.0.0.1:7000")
    finally:
        sender.close()

    assert "the harness sends only to 127.0.0.1" in str(caught.value)

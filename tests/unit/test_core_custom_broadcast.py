"""Custom broadcasts: add_broadcast, invalidation, tails and Broadcast messages."""

from __future__ import annotations

import pytest

from swim_py.config import Config, PeriodicParams
from swim_py.errors import CustomBroadcastError, DataTooBigError, MalformedPacketError
from swim_py.events import PeriodicGossip
from swim_py.payload import Broadcast, Gossip, Ping
from tests.helpers.craft import (
    ME,
    alive,
    apply,
    datagram,
    fire,
    frame_items,
    ident,
    new_core,
    only_sent_to,
    receive,
    sent,
)
from tests.helpers.handlers import BytesHandler, VersionedHandler

item = VersionedHandler.item
TWO = ident(2)
THREE = ident(3)


def test_custom_broadcast_lifecycle() -> None:
    core = new_core(handler=VersionedHandler(blocked=frozenset({THREE})))
    with pytest.raises(CustomBroadcastError):
        core.add_broadcast(b"huehue")
    assert core.add_broadcast(item(420, 0)) is True
    assert core.custom_broadcast_backlog() == 1
    # A newer version replaces the pending one.
    assert core.add_broadcast(item(420, 1)) is True
    assert core.custom_broadcast_backlog() == 1
    # A known version is stale.
    assert core.add_broadcast(item(420, 1)) is False
    assert core.custom_broadcast_backlog() == 1
    assert core.add_broadcast(item(710, 1)) is True
    assert core.custom_broadcast_backlog() == 2

    other = new_core(TWO, handler=VersionedHandler())
    apply(core, alive(TWO))
    core.gossip()
    [send] = core.take_outputs().sends
    receive(other, send.data)
    assert other.custom_broadcast_backlog() == 2

    # Member three never gets custom broadcasts, but still gets updates.
    isolated = new_core(THREE, handler=VersionedHandler())
    apply(core, alive(THREE))
    core.gossip()
    outputs = core.take_outputs()
    gossip = only_sent_to(outputs, THREE)
    assert gossip.items == []
    receive(isolated, next(s.data for s in outputs.sends if s.dst == THREE))
    assert isolated.custom_broadcast_backlog() == 0
    assert isolated.num_members() == 2

    core.broadcast()
    outputs = core.take_outputs()
    assert [dst for dst, _ in sent(outputs)] == [TWO]
    message = only_sent_to(outputs, TWO)
    assert message.message == Broadcast()
    receive(other, outputs.sends[0].data)


def test_add_broadcast_rejects_empty_data() -> None:
    core = new_core(handler=VersionedHandler())
    with pytest.raises(MalformedPacketError):
        core.add_broadcast(b"")


def test_add_broadcast_rejects_oversized_data() -> None:
    core = new_core(handler=VersionedHandler())
    with pytest.raises(DataTooBigError):
        core.add_broadcast(bytes(1401))


def test_add_broadcast_without_handler_raises() -> None:
    core = new_core()
    with pytest.raises(CustomBroadcastError):
        core.add_broadcast(b"foo")


def test_add_broadcast_passes_no_sender() -> None:
    handler = VersionedHandler()
    core = new_core(handler=handler)
    core.add_broadcast(item(1, 1))
    assert handler.senders == [None]


def test_received_item_gets_sender() -> None:
    handler = VersionedHandler()
    core = new_core(handler=handler)
    receive(core, datagram(TWO, ME, Gossip(), count=True, tail=frame_items(item(1, 1))))
    assert handler.senders == [TWO]


def test_handler_error_keeps_earlier_items() -> None:
    core = new_core(handler=VersionedHandler())
    tail = frame_items(item(1, 1), b"bad", item(2, 1))
    with pytest.raises(CustomBroadcastError):
        core.handle_data(datagram(TWO, ME, Gossip(), count=True, tail=tail))
    assert core.custom_broadcast_backlog() == 1
    assert core.num_members() == 1


def test_handler_error_is_raised_after_reply() -> None:
    core = new_core(handler=VersionedHandler())
    data = datagram(TWO, ME, Ping(3), count=True, tail=frame_items(b"bad"))
    with pytest.raises(CustomBroadcastError) as caught:
        core.handle_data(data)
    assert isinstance(caught.value.__cause__, ValueError)
    assert len(core.take_outputs().sends) == 1


BAD_TAILS = [
    ("one-byte", b"\x00"),
    ("two-bytes", b"\x00\x05"),
    ("zero-length", b"\x00\x00\x01"),
    ("length-past-end", b"\x00\x09abc"),
    ("stray-byte-after-item", frame_items(item(1, 1)) + b"\x00"),
    ("stray-bytes-after-item", frame_items(item(1, 1)) + b"\x00\x01"),
]


@pytest.mark.parametrize(
    "tail", [pytest.param(tail, id=name) for name, tail in BAD_TAILS]
)
def test_bad_broadcast_tail_is_malformed(tail: bytes) -> None:
    core = new_core(handler=VersionedHandler())
    data = datagram(TWO, ME, Gossip(), [alive(THREE)], tail=tail)
    with pytest.raises(MalformedPacketError):
        core.handle_data(data)
    assert core.num_members() == 2


def test_broadcast_message_is_all_items() -> None:
    core = new_core(handler=VersionedHandler())
    receive(
        core, datagram(TWO, ME, Broadcast(), tail=frame_items(item(1, 1), item(2, 1)))
    )
    assert core.custom_broadcast_backlog() == 2


def test_custom_broadcast_max_transmissions() -> None:
    core = new_core(
        config=Config(max_transmissions=2, num_indirect_probes=1),
        handler=VersionedHandler(),
    )
    apply(core, alive(TWO))
    core.add_broadcast(item(1, 1))
    carried = 0
    for _ in range(5):
        core.gossip()
        carried += sum(len(p.items) for _, p in sent(core.take_outputs()))
    assert carried == 2
    assert core.custom_broadcast_backlog() == 0


def test_broadcast_stops_once_backlog_is_empty() -> None:
    core = new_core(config=Config(max_transmissions=1), handler=VersionedHandler())
    apply(core, alive(TWO), alive(THREE), alive(ident(4)))
    core.add_broadcast(item(1, 1))
    core.broadcast()
    messages = sent(core.take_outputs())
    assert len(messages) == 1
    assert messages[0][1].items == [item(1, 1)]
    assert messages[0][1].updates is None


def test_broadcast_with_empty_backlog_sends_nothing() -> None:
    core = new_core(handler=VersionedHandler())
    apply(core, alive(TWO))
    core.broadcast()
    assert core.take_outputs().sends == []


def test_broadcast_fanout_is_num_indirect_probes() -> None:
    core = new_core(config=Config(num_indirect_probes=2), handler=VersionedHandler())
    apply(core, *(alive(ident(n)) for n in range(2, 8)))
    core.add_broadcast(item(1, 1))
    core.broadcast()
    assert len(core.take_outputs().sends) == 2


def test_broadcast_misfit_items_are_skipped() -> None:
    core = new_core(config=Config(max_packet_size=200), handler=BytesHandler())
    apply(core, alive(TWO))
    core.take_outputs()
    core.add_broadcast(b"L" * 190)
    core.add_broadcast(b"s" * 5)
    for _ in range(10):
        core.gossip()
    for _, parsed in sent(core.take_outputs()):
        assert b"L" * 190 not in parsed.items
    assert core.custom_broadcast_backlog() == 1


def test_periodic_gossip_for_custom_broadcasts() -> None:
    config = Config(periodic_gossip=PeriodicParams(frequency=0.2, num_members=1))
    core = new_core(config=config, handler=VersionedHandler())
    apply(core, alive(TWO))
    for _ in range(10):
        core.gossip()
    core.take_outputs()
    assert core.updates_backlog() == 0
    assert fire(core, PeriodicGossip(0)).sends == []

    core.add_broadcast(item(1, 1))
    outputs = fire(core, PeriodicGossip(0))
    assert only_sent_to(outputs, TWO).items == [item(1, 1)]

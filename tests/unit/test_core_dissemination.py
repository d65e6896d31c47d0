"""The updates backlog, piggyback rules per message type, and packet limits."""

from __future__ import annotations

import pytest

from swim_py.config import Config
from swim_py.errors import EncodeError
from swim_py.events import MemberDown, MemberUp, RemoveDown
from swim_py.payload import Gossip, Ping, State, TurnUndead
from tests.helpers.craft import (
    CODEC,
    ME,
    alive,
    apply,
    datagram,
    down,
    header_only,
    ident,
    new_core,
    only_sent_to,
    parse,
    receive,
    scheduled,
    sent,
    suspect,
)
from tests.helpers.handlers import FirstByteHandler

TWO = ident(2)


def test_ping_with_empty_backlog_ends_with_zero_count() -> None:
    core = new_core()
    receive(core, datagram(TWO, ME, Gossip()))
    # Drain the sender's own Alive update first.
    for _ in range(10):
        core.gossip()
    core.take_outputs()
    assert core.updates_backlog() == 0

    outputs = receive(core, datagram(TWO, ME, Ping(3)))
    [send] = outputs.sends
    header_len = CODEC.decode_header(send.data, 0)[1]
    assert send.data[header_len:] == b"\x00\x00"


def _config_with_room_after_header(room: int) -> tuple[Config, bytes]:
    # Pick an id length that makes the Gossip header at least 62 bytes, so
    # that header + room is a valid max_packet_size.
    long_id = b"i" * 20
    header_len = len(datagram(ident(1, id=long_id), ident(2, id=long_id), Gossip()))
    return Config(max_packet_size=header_len + room), long_id


@pytest.mark.parametrize(
    ("room", "has_count"),
    [
        pytest.param(2, False, id="2-bytes-left"),
        pytest.param(3, True, id="3-bytes-left"),
    ],
)
def test_count_needs_more_than_two_bytes(room: int, has_count: bool) -> None:
    config, long_id = _config_with_room_after_header(room)
    core = new_core(ident(1, id=long_id), config=config)
    apply(core, alive(ident(2, id=long_id)))
    core.gossip()
    [send] = core.take_outputs().sends
    assert (parse(send.data).updates is not None) is has_count


def test_oversized_header_raises_encode_error() -> None:
    core = new_core(ident(1, id=b"x" * 1500))
    with pytest.raises(EncodeError):
        core.announce(TWO)
    assert core.take_outputs().sends == []


def test_lightweight_messages_are_header_only() -> None:
    config = Config(notify_down_members=True)
    core = new_core(config=config, handler=FirstByteHandler())
    apply(core, alive(ident(3)), alive(ident(4)), down(ident(5)))
    assert core.add_broadcast(b"0hello")
    assert core.add_broadcast(b"1world")
    assert core.updates_backlog() > 0

    core.announce(TWO)
    [announce] = core.take_outputs().sends
    assert header_only(announce.data)

    # The reply to a message from a known Down member is a TurnUndead.
    outputs = receive(core, datagram(ident(5), ME, Gossip()))
    turn_undead = only_sent_to(outputs, ident(5))
    assert turn_undead.message == TurnUndead()
    assert header_only(outputs.sends[0].data)


def test_ping_carries_backlog_and_broadcasts() -> None:
    core = new_core(handler=FirstByteHandler())
    apply(core, alive(ident(3)))
    core.add_broadcast(b"0hello")
    outputs = receive(core, datagram(TWO, ME, Ping(1)))
    ack = only_sent_to(outputs, TWO)
    assert ack.updates is not None
    assert len(ack.updates) == 2
    assert ack.items == [b"0hello"]


def test_piggyback_accounting_across_gossips() -> None:
    config = Config(max_transmissions=10, num_indirect_probes=3)
    core = new_core(config=config)
    updates = [alive(ident(3), 3), suspect(ident(4), 1), down(ident(5), 1)]
    outputs = receive(core, datagram(TWO, ME, Gossip(), updates))

    assert outputs.notifications[1:4] == [
        MemberUp(TWO),
        MemberUp(ident(3)),
        MemberUp(ident(4)),
    ]
    assert MemberDown(ident(5)) not in outputs.notifications
    [remove] = scheduled(outputs, RemoveDown)
    assert remove.timer == RemoveDown(ident(5))
    assert remove.delay == config.remove_down_after
    assert {m.id for m in core.iter_members()} == {TWO, ident(3), ident(4)}
    assert core.updates_backlog() == 4

    # Each gossip() reaches all 3 members, using 3 transmissions per update.
    for _ in range(3):
        core.gossip()
        assert core.updates_backlog() == 4
    core.take_outputs()

    core.gossip()
    gossips = sent(core.take_outputs())
    with_updates = [p for _, p in gossips if p.updates]
    assert len(gossips) == 3
    assert len(with_updates) == 1
    assert core.updates_backlog() == 0


def test_new_down_member_schedules_remove_down_once() -> None:
    core = new_core()
    assert scheduled(apply(core, down(TWO)), RemoveDown)[0].timer == RemoveDown(TWO)
    assert scheduled(apply(core, down(TWO)), RemoveDown) == []
    assert scheduled(apply(core, alive(ident(3))), RemoveDown) == []
    [remove] = scheduled(apply(core, down(ident(3))), RemoveDown)
    assert remove.timer == RemoveDown(ident(3))


def test_apply_many_without_broadcast_leaves_backlog_empty() -> None:
    core = new_core()
    core.apply_many(
        [suspect(ME), alive(ident(1, renewal=1)), alive(TWO), down(ident(3))],
        do_broadcast=False,
    )
    assert core.updates_backlog() == 0


def test_stale_update_is_not_requeued() -> None:
    core = new_core(config=Config(max_transmissions=1))
    apply(core, alive(TWO, 5))
    core.gossip()
    core.take_outputs()
    assert core.updates_backlog() == 0
    apply(core, alive(TWO, 5), suspect(TWO, 4))
    assert core.updates_backlog() == 0


def test_newer_update_replaces_pending_one() -> None:
    core = new_core()
    apply(core, alive(ident(3)))
    apply(core, alive(TWO), suspect(TWO, 1))
    assert core.updates_backlog() == 2
    core.take_outputs()
    core.gossip()
    gossip = sent(core.take_outputs())[0][1]
    assert gossip.updates is not None
    assert suspect(TWO, 1) in gossip.updates
    assert alive(TWO) not in gossip.updates


def test_update_sent_max_transmissions_times() -> None:
    core = new_core(config=Config(max_transmissions=3, num_indirect_probes=1))
    apply(core, alive(TWO))
    carried = 0
    for _ in range(6):
        core.gossip()
        [(_, gossip)] = sent(core.take_outputs())
        carried += len(gossip.updates or [])
    assert carried == 3


def test_oversized_update_stays_in_backlog() -> None:
    core = new_core(config=Config(max_packet_size=200, num_indirect_probes=1))
    apply(core, alive(TWO), down(ident(3, id=b"z" * 300)))
    for _ in range(20):
        core.gossip()
    gossips = [p for _, p in sent(core.take_outputs())]
    assert all(p.size <= 200 for p in gossips)
    assert core.updates_backlog() == 1


def test_gossip_fanout_is_num_indirect_probes() -> None:
    core = new_core(config=Config(num_indirect_probes=2))
    apply(core, *(alive(ident(n)) for n in range(2, 8)))
    core.gossip()
    dsts = [dst for dst, _ in sent(core.take_outputs())]
    assert len(dsts) == 2
    assert len(set(dsts)) == 2


def test_gossip_goes_only_to_active_members() -> None:
    core = new_core(config=Config(num_indirect_probes=5))
    apply(core, alive(TWO), suspect(ident(3)), down(ident(4)))
    core.gossip()
    assert {dst for dst, _ in sent(core.take_outputs())} == {TWO, ident(3)}


def test_gossip_with_no_members_sends_nothing() -> None:
    core = new_core()
    core.gossip()
    assert core.take_outputs().sends == []


def test_sent_datagrams_fit_max_packet_size() -> None:
    config = Config(max_packet_size=150, num_indirect_probes=3)
    core = new_core(config=config)
    apply(core, *(alive(ident(n)) for n in range(2, 60)))
    for _ in range(5):
        core.gossip()
    sends = core.take_outputs().sends
    assert all(len(send.data) <= 150 for send in sends)
    assert all(parse(send.data).updates for send in sends)


def test_sender_update_keeps_incarnation() -> None:
    core = new_core()
    receive(core, datagram(TWO, ME, Gossip(), src_incarnation=9))
    apply(core, alive(ident(3)))
    core.gossip()
    updates = [u for _, p in sent(core.take_outputs()) for u in p.updates or []]
    assert alive(TWO, 9) in updates


def test_down_update_wins_over_higher_incarnation() -> None:
    core = new_core()
    apply(core, alive(TWO, 7))
    apply(core, down(TWO, 0))
    [member] = core.iter_membership_state()
    assert member.state is State.DOWN

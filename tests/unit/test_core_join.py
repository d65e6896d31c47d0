"""Joining: Announce, the Feed reply and its sizing."""

from __future__ import annotations

from swim_py.config import Config
from swim_py.events import Active, ConnectionState, MemberUp, ProbeRandomMember
from swim_py.payload import Announce, Feed, State
from tests.helpers.craft import (
    CODEC,
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
    suspect,
)

ONE = ident(1)
TWO = ident(2)


def test_join_connects_both_members() -> None:
    one = new_core(ONE)
    two = new_core(TWO)

    one.announce(TWO)
    announce = one.take_outputs()
    assert one.num_members() == 0
    [send] = announce.sends
    assert send.dst == TWO
    assert parse(send.data).message == Announce()

    reply = receive(two, send.data)
    assert two.num_members() == 1
    assert reply.notifications[1:] == [MemberUp(ONE), Active()]
    [probe] = scheduled(reply, ProbeRandomMember)
    assert probe.delay == Config.simple().probe_period
    feed = only_sent_to(reply, ONE)
    assert feed.message == Feed()

    outputs = receive(one, reply.sends[0].data)
    assert outputs.notifications[1:] == [MemberUp(TWO), Active()]
    assert one.num_members() == 1
    assert one.connection_state is ConnectionState.CONNECTED


def test_announce_is_header_only() -> None:
    core = new_core()
    apply(core, alive(ident(3)))
    core.announce(TWO)
    [send] = core.take_outputs().sends
    assert header_only(send.data)


def test_feed_contains_only_active_members() -> None:
    core = new_core(TWO)
    apply(core, alive(ident(3)), suspect(ident(4), 2), down(ident(5)))
    outputs = receive(core, datagram(ONE, TWO, Announce()))
    feed = only_sent_to(outputs, ONE)
    assert feed.updates is not None
    assert sorted(feed.updates, key=lambda m: m.id.addr.port) == [
        alive(ident(3)),
        suspect(ident(4), 2),
    ]


def test_feed_excludes_recipient() -> None:
    core = new_core(TWO)
    apply(core, alive(ONE), alive(ident(3)))
    outputs = receive(core, datagram(ONE, TWO, Announce()))
    feed = only_sent_to(outputs, ONE)
    assert feed.updates is not None
    assert [m.id for m in feed.updates] == [ident(3)]


def test_empty_feed_has_zero_count() -> None:
    core = new_core(TWO)
    outputs = receive(core, datagram(ONE, TWO, Announce()))
    feed = only_sent_to(outputs, ONE)
    assert feed.updates == []
    assert outputs.sends[0].data.endswith(b"\x00\x00")


def _feed_header_len(long_id: bytes) -> int:
    data = datagram(ident(1, id=long_id), ident(2, id=long_id), Feed())
    return len(data)


def test_feed_is_never_cut_mid_member() -> None:
    long_id = b"x" * 12
    member = alive(ident(3, id=long_id))
    member_len = len(CODEC.encode_member(member))
    # Room for the header, COUNT and all but one byte of a member.
    size = _feed_header_len(long_id) + 2 + member_len - 1
    config = Config(max_packet_size=size)
    one = new_core(ident(1, id=long_id), config=config)
    apply(one, member)

    outputs = receive(
        one, datagram(ident(2, id=long_id), ident(1, id=long_id), Announce())
    )
    [send] = outputs.sends
    assert len(send.data) == size - member_len + 1
    assert parse(send.data).updates == []

    two = new_core(ident(2, id=long_id), config=config)
    receive(two, send.data)
    assert two.num_members() == 1


def test_feed_packs_estimated_member_count() -> None:
    core = new_core()
    apply(core, *(alive(ident(number)) for number in range(2, 256)))
    assert core.num_members() == 254

    outputs = receive(core, datagram(ident(300), ident(1), Announce()))
    feed = only_sent_to(outputs, ident(300))
    # foca assumes an identity takes half of the header and COUNT, and
    # samples as many members as would fit at that size, at least 5.
    header_len = len(datagram(ident(1), ident(300), Feed()))
    remaining = 1400 - header_len - 2
    estimate = max(remaining // ((1400 - remaining) // 2), 5)
    assert feed.updates is not None
    assert len(feed.updates) == estimate
    assert feed.size <= 1400


def test_feed_stops_at_first_misfit() -> None:
    core = new_core(config=Config(max_packet_size=200))
    apply(core, *(alive(ident(number, id=b"m" * 30)) for number in range(2, 40)))
    outputs = receive(core, datagram(ident(300), ident(1), Announce()))
    feed = only_sent_to(outputs, ident(300))
    member_len = len(CODEC.encode_member(alive(ident(2, id=b"m" * 30))))
    assert feed.updates is not None
    assert len(feed.updates) >= 1
    assert feed.size <= 200
    assert feed.size + member_len > 200


def test_feed_sample_differs_per_reply() -> None:
    core = new_core()
    apply(core, *(alive(ident(number)) for number in range(2, 256)))
    announce = datagram(ident(300), ident(1), Announce())
    first = only_sent_to(receive(core, announce), ident(300)).updates
    second = only_sent_to(receive(core, announce), ident(300)).updates
    assert first is not None
    assert second is not None
    assert {m.id for m in first} != {m.id for m in second}


def test_feed_carries_current_state_not_backlog() -> None:
    core = new_core(TWO)
    apply(core, suspect(ident(3), 4))
    apply(core, alive(ident(3), 5))
    outputs = receive(core, datagram(ONE, TWO, Announce()))
    feed = only_sent_to(outputs, ONE)
    assert feed.updates is not None
    assert alive(ident(3), 5) in feed.updates


def test_feed_does_not_consume_backlog() -> None:
    core = new_core(TWO, config=Config(max_transmissions=1))
    apply(core, alive(ident(3)), alive(ident(4)))
    assert core.updates_backlog() == 2
    receive(core, datagram(ONE, TWO, Announce()))
    # The sender's own Alive update joined the backlog; nothing left it.
    assert core.updates_backlog() == 3


def test_feed_members_merge_into_joiner() -> None:
    core = new_core(ONE)
    feed = datagram(TWO, ONE, Feed(), [alive(ident(3)), suspect(ident(4), 1)])
    receive(core, feed)
    states = {m.id: (m.state, m.incarnation) for m in core.iter_members()}
    assert states == {
        TWO: (State.ALIVE, 0),
        ident(3): (State.ALIVE, 0),
        ident(4): (State.SUSPECT, 1),
    }

"""SwimCore.handle_data: receive-side checks in foca's order, and replies."""

from __future__ import annotations

import pytest

from swim_py.config import Config
from swim_py.errors import (
    CustomBroadcastError,
    DataFromOurselvesError,
    DataTooBigError,
    DecodeError,
    IndirectForOurselvesError,
    MalformedPacketError,
)
from swim_py.events import (
    Active,
    ConnectionState,
    DataReceived,
    MemberUp,
    ProbeRandomMember,
    Rejoin,
)
from swim_py.payload import (
    Ack,
    Announce,
    Broadcast,
    Feed,
    ForwardedAck,
    Gossip,
    IndirectAck,
    IndirectPing,
    Message,
    Ping,
    PingReq,
    State,
    TurnUndead,
)
from tests.helpers.craft import (
    CODEC,
    ME,
    alive,
    apply,
    datagram,
    down,
    frame_items,
    ident,
    new_core,
    only_sent_to,
    receive,
    suspect,
)

TWO = ident(2)
THREE = ident(3)


def test_oversized_datagram_is_rejected() -> None:
    core = new_core()
    with pytest.raises(DataTooBigError):
        core.handle_data(bytes(1401))
    assert core.take_outputs().sends == []


def test_datagram_of_max_size_is_accepted() -> None:
    core = new_core()
    data = datagram(TWO, ME, Gossip(), count=True)
    item = bytes(1400 - len(data) - 2)
    data += frame_items(item)
    assert len(data) == 1400
    # No handler, so the tail fails, but only after the size check passed.
    with pytest.raises(CustomBroadcastError):
        core.handle_data(data)
    assert core.num_members() == 1


def test_undecodable_header_raises_decode_error() -> None:
    core = new_core()
    with pytest.raises(DecodeError):
        core.handle_data(b"hue")


def test_data_from_own_identity_is_rejected() -> None:
    core = new_core()
    with pytest.raises(DataFromOurselvesError):
        core.handle_data(datagram(ME, ME, Announce()))


def test_data_from_own_address_is_rejected() -> None:
    core = new_core()
    with pytest.raises(DataFromOurselvesError):
        core.handle_data(datagram(ident(1, renewal=5), ME, Announce()))


def test_single_trailing_byte_is_malformed() -> None:
    core = new_core()
    with pytest.raises(MalformedPacketError):
        core.handle_data(datagram(TWO, ME, Ping(1)) + b"\x00")
    assert core.num_members() == 0
    outputs = core.take_outputs()
    assert outputs.sends == []
    assert outputs.notifications == []


def test_announce_with_trailing_byte_is_malformed() -> None:
    core = new_core()
    with pytest.raises(MalformedPacketError):
        core.handle_data(datagram(TWO, ME, Announce()) + b"\x00\x00")
    assert core.num_members() == 0


def test_announce_with_updates_is_malformed() -> None:
    core = new_core()
    with pytest.raises(MalformedPacketError):
        core.handle_data(datagram(TWO, ME, Announce(), [alive(THREE)]))
    assert core.num_members() == 0


def test_datagram_for_other_identity_is_dropped_silently() -> None:
    core = new_core()
    outputs = receive(core, datagram(TWO, ident(1, renewal=3), Ping(1)))
    assert core.num_members() == 0
    assert outputs.sends == []
    assert outputs.notifications == []


def test_datagram_for_other_address_is_dropped_silently() -> None:
    core = new_core()
    outputs = receive(core, datagram(TWO, THREE, Announce()))
    assert core.num_members() == 0
    assert outputs.notifications == []


def test_dropped_datagram_keeps_sender_state() -> None:
    core = new_core()
    apply(core, suspect(TWO, incarnation=1))
    receive(core, datagram(TWO, ident(1, renewal=3), Ping(1), src_incarnation=2))
    [member] = core.iter_members()
    assert member == suspect(TWO, incarnation=1)


def test_announce_to_same_address_is_accepted() -> None:
    core = new_core(ident(1, renewal=255))
    outputs = receive(core, datagram(TWO, ident(1, renewal=42), Announce()))
    assert core.num_members() == 1
    assert only_sent_to(outputs, TWO).message == Feed()


def test_bad_update_raises_decode_error() -> None:
    core = new_core()
    data = datagram(TWO, ME, Gossip(), [alive(THREE)])
    # Claim two updates where only one follows.
    header_len = CODEC.decode_header(data, 0)[1]
    bad = data[:header_len] + b"\x00\x02" + data[header_len + 2 :]
    with pytest.raises(DecodeError):
        core.handle_data(bad)
    assert core.num_members() == 0
    outputs = core.take_outputs()
    assert outputs.notifications == []
    assert outputs.sends == []


def test_trailing_byte_after_updates_is_malformed() -> None:
    core = new_core()
    data = datagram(TWO, ME, Ping(5), [alive(THREE)]) + b"\x00"
    with pytest.raises(MalformedPacketError):
        core.handle_data(data)
    outputs = core.take_outputs()
    assert core.num_members() == 2
    assert only_sent_to(outputs, TWO).message == Ack(5)
    assert outputs.notifications[1:] == [MemberUp(TWO), MemberUp(THREE), Active()]


def test_tail_without_handler_raises_after_reply() -> None:
    core = new_core()
    data = datagram(TWO, ME, Ping(4), count=True, tail=frame_items(b"item"))
    with pytest.raises(CustomBroadcastError):
        core.handle_data(data)
    outputs = core.take_outputs()
    assert only_sent_to(outputs, TWO).message == Ack(4)
    assert core.custom_broadcast_backlog() == 0


def test_notification_order_on_first_contact() -> None:
    core = new_core()
    outputs = receive(core, datagram(TWO, ME, Gossip(), [alive(THREE)]))
    assert outputs.notifications == [
        DataReceived(CODEC.decode_header(datagram(TWO, ME, Gossip()), 0)[0]),
        MemberUp(TWO),
        MemberUp(THREE),
        Active(),
    ]


def test_no_data_received_for_dropped_datagram() -> None:
    core = new_core()
    outputs = receive(core, datagram(TWO, THREE, Ping(1)))
    assert outputs.notifications == []


def test_sender_applied_alive_at_src_incarnation() -> None:
    core = new_core()
    receive(core, datagram(TWO, ME, Gossip(), src_incarnation=7))
    assert list(core.iter_members()) == [alive(TWO, incarnation=7)]


def test_suspect_sender_same_incarnation_stays() -> None:
    core = new_core()
    apply(core, suspect(TWO, incarnation=3))
    receive(core, datagram(TWO, ME, Gossip(), src_incarnation=3))
    assert list(core.iter_members()) == [suspect(TWO, incarnation=3)]


def test_suspect_sender_refutes_with_higher_incarnation() -> None:
    core = new_core()
    apply(core, suspect(TWO, incarnation=3))
    receive(core, datagram(TWO, ME, Gossip(), src_incarnation=4))
    assert list(core.iter_members()) == [alive(TWO, incarnation=4)]


def test_first_datagram_schedules_probe() -> None:
    core = new_core()
    outputs = receive(core, datagram(TWO, ME, Gossip()))
    assert [s.timer for s in outputs.schedules] == [ProbeRandomMember(0)]
    assert outputs.schedules[0].delay == 1.5


REPLIES: list[tuple[str, Message, object, Message]] = [
    ("ping", Ping(7), TWO, Ack(7)),
    ("ping_req", PingReq(THREE, 7), THREE, IndirectPing(TWO, 7)),
    ("indirect_ping", IndirectPing(THREE, 7), TWO, IndirectAck(THREE, 7)),
    ("indirect_ack", IndirectAck(THREE, 7), THREE, ForwardedAck(TWO, 7)),
    ("announce", Announce(), TWO, Feed()),
]


@pytest.mark.parametrize(
    ("message", "reply_to", "reply"),
    [pytest.param(m, d, r, id=name) for name, m, d, r in REPLIES],
)
def test_message_gets_foca_reply(
    message: Message, reply_to: object, reply: Message
) -> None:
    core = new_core()
    outputs = receive(core, datagram(TWO, ME, message))
    assert len(outputs.sends) == 1
    assert outputs.sends[0].dst == reply_to
    assert only_sent_to(outputs, outputs.sends[0].dst).message == reply


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(Gossip(), id="gossip"),
        pytest.param(Feed(), id="feed"),
        pytest.param(Broadcast(), id="broadcast"),
        pytest.param(Ack(1), id="unexpected-ack"),
        pytest.param(ForwardedAck(THREE, 1), id="unexpected-forwarded-ack"),
    ],
)
def test_message_without_reply(message: Message) -> None:
    core = new_core()
    outputs = receive(core, datagram(TWO, ME, message))
    assert outputs.sends == []
    assert core.num_members() == 1


def test_ping_req_target_may_be_unknown() -> None:
    core = new_core()
    outputs = receive(core, datagram(TWO, ME, PingReq(ident(9), 3)))
    assert only_sent_to(outputs, ident(9)).message == IndirectPing(TWO, 3)
    assert core.num_members() == 1


@pytest.mark.parametrize(
    "message",
    [
        pytest.param(PingReq(ME, 1), id="ping_req"),
        pytest.param(IndirectPing(ME, 1), id="indirect_ping"),
        pytest.param(IndirectAck(ME, 1), id="indirect_ack"),
        pytest.param(ForwardedAck(ME, 1), id="forwarded_ack"),
    ],
)
def test_indirect_message_naming_us_raises(message: Message) -> None:
    core = new_core()
    data = datagram(TWO, ME, message, [alive(THREE)])
    with pytest.raises(IndirectForOurselvesError):
        core.handle_data(data)
    outputs = core.take_outputs()
    assert core.num_members() == 2
    assert outputs.sends == []
    assert Active() in outputs.notifications


def test_indirect_error_wins_over_tail_error() -> None:
    core = new_core()
    data = datagram(TWO, ME, PingReq(ME, 1), count=True, tail=frame_items(b"x"))
    with pytest.raises(IndirectForOurselvesError):
        core.handle_data(data)


def test_turn_undead_updates_are_applied() -> None:
    core = new_core()
    receive(core, datagram(TWO, ME, Gossip()))
    outputs = receive(core, datagram(TWO, ME, TurnUndead(), [alive(THREE)]))
    assert MemberUp(THREE) in outputs.notifications
    assert Rejoin(ident(1, renewal=1)) in outputs.notifications


def test_broadcast_message_has_no_count() -> None:
    core = new_core()
    # Two bytes that would be a COUNT of 1 in any other message.
    data = datagram(TWO, ME, Broadcast(), tail=frame_items(b"\x00\x01x"))
    with pytest.raises(CustomBroadcastError):
        core.handle_data(data)
    assert core.num_members() == 1


def test_undead_node_applies_but_never_replies() -> None:
    core = new_core()
    apply(core, alive(THREE))
    core.leave_cluster()
    core.take_outputs()
    assert core.connection_state is ConnectionState.UNDEAD

    outputs = receive(core, datagram(TWO, ME, Ping(1), [alive(ident(4))]))
    assert outputs.sends == []
    assert core.num_members() == 3


def test_disconnected_node_replies_once_connected() -> None:
    core = new_core()
    assert core.num_members() == 0
    outputs = receive(core, datagram(TWO, ME, Ping(2)))
    assert core.connection_state is ConnectionState.CONNECTED
    assert only_sent_to(outputs, TWO).message == Ack(2)


def test_datagram_leaving_us_idle_gets_no_reply() -> None:
    core = new_core()
    apply(core, alive(THREE))
    # The sender is applied Alive, then its own update declares it Down.
    data = datagram(TWO, ME, Ping(3), [down(TWO), down(THREE)])
    outputs = receive(core, data)
    assert core.connection_state is ConnectionState.DISCONNECTED
    assert outputs.sends == []


def test_feed_members_are_applied() -> None:
    core = new_core()
    receive(core, datagram(TWO, ME, Feed(), [alive(THREE), suspect(ident(4), 2)]))
    states = {m.id: m.state for m in core.iter_members()}
    assert states == {TWO: State.ALIVE, THREE: State.ALIVE, ident(4): State.SUSPECT}
    assert core.updates_backlog() == 3


def test_max_packet_size_limits_receive() -> None:
    core = new_core(config=Config(max_packet_size=100))
    with pytest.raises(DataTooBigError):
        core.handle_data(bytes(101))

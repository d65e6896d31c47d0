"""Updates about ourselves, identity changes, leaving and TurnUndead."""

from __future__ import annotations

import pytest

from swim_py.config import Config
from swim_py.errors import NotUndeadError, SameIdentityError
from swim_py.events import (
    Active,
    ChangeSuspectToDown,
    ConnectionState,
    Defunct,
    Idle,
    MemberDown,
    MemberUp,
    ProbeRandomMember,
    Rejoin,
)
from swim_py.payload import MAX_INCARNATION, Announce, Gossip, Ping, State, TurnUndead
from tests.helpers.craft import (
    ME,
    alive,
    apply,
    datagram,
    down,
    fire,
    ident,
    new_core,
    only_sent_to,
    receive,
    scheduled,
    sent,
    suspect,
    unrenewable,
)

TWO = ident(2)
THREE = ident(3)


def test_suspicion_is_refuted_by_raising_incarnation() -> None:
    core = new_core()
    apply(core, suspect(ME))
    assert core.incarnation == 1


def test_refutation_at_max_incarnation_goes_undead() -> None:
    core = new_core(unrenewable(1))
    apply(core, suspect(unrenewable(1), MAX_INCARNATION - 1))
    assert core.incarnation == MAX_INCARNATION
    before = core.connection_state

    outputs = apply(core, suspect(unrenewable(1), MAX_INCARNATION))
    assert before is ConnectionState.DISCONNECTED
    assert core.connection_state is ConnectionState.UNDEAD
    assert Defunct() in outputs.notifications


def test_suspicion_at_max_incarnation_rejoins() -> None:
    core = new_core()
    apply(core, suspect(ME, MAX_INCARNATION - 1))
    outputs = apply(core, suspect(ME, 0))
    assert core.identity == ident(1, renewal=1)
    assert core.incarnation == 0
    assert Rejoin(ident(1, renewal=1)) in outputs.notifications


def test_stale_suspicion_keeps_incarnation() -> None:
    core = new_core()
    apply(core, suspect(ME, 10))
    assert core.incarnation == 11
    apply(core, suspect(ME, 10))
    assert core.incarnation == 11


def test_higher_suspicion_raises_past_it() -> None:
    core = new_core()
    apply(core, suspect(ME, 3))
    apply(core, suspect(ME, 40))
    assert core.incarnation == 41


def test_being_suspected_always_gossips() -> None:
    core = new_core()
    apply(core, alive(TWO))
    for _ in range(5):
        outputs = apply(core, suspect(ME))
        assert only_sent_to(outputs, TWO).message == Gossip()


def test_alive_update_about_us_is_ignored() -> None:
    core = new_core()
    apply(core, alive(TWO))
    outputs = apply(core, alive(ME, 30))
    assert core.incarnation == 0
    assert outputs.sends == []
    assert core.num_members() == 1


def test_refutation_spreads_by_src_incarnation() -> None:
    # Member one suspects two and three; only three learns about it.
    one = new_core(ident(1))
    two = new_core(TWO)
    three = new_core(THREE)
    everyone = [alive(ident(1)), alive(TWO), alive(THREE)]
    for core in (one, two, three):
        apply(core, *everyone)
    apply(one, suspect(TWO), suspect(THREE))
    apply(three, suspect(THREE))
    assert three.incarnation == 1

    for core in (two, three):
        core.announce(ident(1))
        [send] = core.take_outputs().sends
        receive(one, send.data)

    outputs = fire(one, ChangeSuspectToDown(TWO, 0, 0))
    assert MemberDown(TWO) in outputs.notifications
    outputs = fire(one, ChangeSuspectToDown(THREE, 0, 0))
    assert {m.id for m in one.iter_members()} == {THREE}
    assert outputs.notifications == []


def test_down_update_about_us_rejoins() -> None:
    core = new_core()
    outputs = apply(core, alive(TWO), alive(THREE), alive(ident(4)), down(ME))
    renewed = ident(1, renewal=1)
    assert core.identity == renewed
    assert Rejoin(renewed) in outputs.notifications
    assert Defunct() not in outputs.notifications
    gossips = [p for _, p in sent(outputs) if p.message == Gossip()]
    assert len(gossips) == 3
    assert all(p.header.src == renewed for p in gossips)
    assert all(down(ME) in (p.updates or []) for p in gossips)


def test_rejoin_from_update_reconnects_at_once() -> None:
    # As in foca, the connection state is adjusted after the whole batch of
    # updates, so a rejoin from a Down update reconnects at once. A rejoin
    # from a TurnUndead message waits for a message to the new identity.
    core = new_core()
    apply(core, alive(TWO))
    outputs = apply(core, down(ME))
    assert outputs.sends
    assert outputs.notifications == [Rejoin(ident(1, renewal=1)), Active()]
    assert core.connection_state is ConnectionState.CONNECTED


def test_rejoin_from_turn_undead_stays_disconnected() -> None:
    core = new_core()
    apply(core, alive(TWO))
    outputs = receive(core, datagram(TWO, ME, TurnUndead()))
    assert outputs.notifications[-1] == Rejoin(ident(1, renewal=1))
    assert core.connection_state is ConnectionState.DISCONNECTED


def test_down_update_unrenewable_goes_defunct() -> None:
    core = new_core(unrenewable(1))
    apply(core, alive(TWO))
    outputs = apply(core, down(unrenewable(1)))
    assert core.connection_state is ConnectionState.UNDEAD
    assert outputs.notifications == [Defunct()]


def test_change_identity_gossips_at_once() -> None:
    core = new_core()
    apply(core, alive(TWO))
    core.change_identity(ident(99))
    outputs = core.take_outputs()
    assert core.updates_backlog() > 0
    gossip = only_sent_to(outputs, TWO)
    assert gossip.message == Gossip()
    assert gossip.updates


def test_change_identity_to_same_identity_raises() -> None:
    core = new_core()
    with pytest.raises(SameIdentityError):
        core.change_identity(ME)


def test_change_identity_bumps_timer_token() -> None:
    core = new_core()
    core.change_identity(ident(2))
    [start] = scheduled(apply(core, alive(THREE)), ProbeRandomMember)
    assert start.timer == ProbeRandomMember(1)


def test_change_identity_keeps_members() -> None:
    core = new_core()
    apply(core, alive(TWO), suspect(ME, 4))
    assert core.incarnation == 5
    core.change_identity(ident(1, renewal=1))
    assert core.incarnation == 0
    assert core.num_members() == 1
    assert core.connection_state is ConnectionState.DISCONNECTED


def test_change_identity_waits_for_message_to_new() -> None:
    core = new_core()
    apply(core, alive(TWO))
    renewed = ident(1, renewal=1)
    core.change_identity(renewed)
    core.take_outputs()

    outputs = receive(core, datagram(TWO, ME, Ping(1)))
    assert outputs.notifications == []
    assert outputs.sends == []

    outputs = receive(core, datagram(TWO, renewed, Ping(2)))
    assert Active() in outputs.notifications
    assert only_sent_to(outputs, TWO).header.src == renewed


def test_change_identity_while_undead_queues_nothing() -> None:
    core = new_core(config=Config(max_transmissions=1))
    apply(core, alive(TWO))
    core.leave_cluster()
    core.take_outputs()
    assert core.updates_backlog() == 0
    core.change_identity(ident(1, renewal=1))
    assert core.updates_backlog() == 0


def test_leave_cluster_gossips_our_down_update() -> None:
    core = new_core()
    apply(core, alive(TWO))
    core.leave_cluster()
    outputs = core.take_outputs()
    gossip = only_sent_to(outputs, TWO)
    assert gossip.message == Gossip()
    assert gossip.updates is not None
    assert down(ME) in gossip.updates
    assert outputs.notifications == [Defunct()]
    assert core.connection_state is ConnectionState.UNDEAD


def test_leave_cluster_gossips_once_per_member() -> None:
    core = new_core(config=Config(num_indirect_probes=5))
    apply(core, alive(TWO))
    core.leave_cluster()
    assert len(sent(core.take_outputs())) == 1


def test_leave_cluster_cancels_timers() -> None:
    core = new_core()
    [start] = scheduled(apply(core, alive(TWO)), ProbeRandomMember)
    core.leave_cluster()
    core.take_outputs()
    outputs = fire(core, start.timer)
    assert outputs.sends == []


def test_reuse_down_identity_requires_undead() -> None:
    core = new_core()
    with pytest.raises(NotUndeadError):
        core.reuse_down_identity()


def test_reuse_down_identity_reconnects() -> None:
    core = new_core()
    apply(core, alive(TWO))
    core.leave_cluster()
    core.reuse_down_identity()
    core.take_outputs()
    assert core.connection_state is ConnectionState.DISCONNECTED
    outputs = apply(core, alive(TWO))
    assert Active() in outputs.notifications
    assert core.identity == ME


def test_previous_identity_is_not_learned() -> None:
    core = new_core(ident(1, renewal=1))
    outputs = apply(core, alive(ident(1)))
    assert core.num_members() == 0
    assert list(core.iter_membership_state()) == [down(ident(1))]
    assert MemberUp(ident(1)) not in outputs.notifications
    assert core.updates_backlog() == 1


def test_turn_undead_from_active_sender_renews() -> None:
    core = new_core()
    apply(core, alive(TWO))
    outputs = receive(core, datagram(TWO, ME, TurnUndead()))
    assert core.identity == ident(1, renewal=1)
    assert Rejoin(ident(1, renewal=1)) in outputs.notifications


def test_turn_undead_unrenewable_goes_defunct() -> None:
    core = new_core(unrenewable(1))
    apply(core, alive(TWO))
    outputs = receive(core, datagram(TWO, unrenewable(1), TurnUndead()))
    assert core.connection_state is ConnectionState.UNDEAD
    assert Defunct() in outputs.notifications


def test_turn_undead_from_down_sender_renews() -> None:
    core = new_core(config=Config(notify_down_members=True))
    apply(core, down(TWO))
    outputs = receive(core, datagram(TWO, ME, TurnUndead()))
    renewed = ident(1, renewal=1)
    assert core.identity == renewed
    reply = only_sent_to(outputs, TWO)
    assert reply.message == TurnUndead()
    assert reply.header.src == renewed


def test_turn_undead_from_down_sender_unnotified() -> None:
    core = new_core()
    apply(core, down(TWO))
    outputs = receive(core, datagram(TWO, ME, TurnUndead()))
    assert core.identity == ident(1, renewal=1)
    assert outputs.sends == []


def test_down_member_gets_turn_undead() -> None:
    core = new_core(config=Config(notify_down_members=True))
    apply(core, down(TWO))
    outputs = receive(core, datagram(TWO, ME, Announce(), src_incarnation=1))
    assert only_sent_to(outputs, TWO).message == TurnUndead()
    assert core.num_members() == 0


def test_down_member_updates_are_ignored() -> None:
    core = new_core(config=Config(notify_down_members=True))
    apply(core, down(TWO), alive(ident(5)))
    outputs = receive(core, datagram(TWO, ME, Gossip(), [alive(THREE)]))
    assert THREE not in {m.id for m in core.iter_members()}
    assert [p.message for _, p in sent(outputs)] == [TurnUndead()]


def test_down_member_unnotified_gets_no_reply() -> None:
    core = new_core()
    apply(core, down(TWO), alive(ident(5)))
    outputs = receive(core, datagram(TWO, ME, Ping(1)))
    assert outputs.sends == []


def test_notification_triggers() -> None:
    core = new_core()
    outputs = apply(core, alive(TWO))
    assert outputs.notifications == [MemberUp(TWO), Active()]

    # Newer or stale news about an active member notifies nothing.
    outputs = apply(core, alive(TWO), suspect(TWO), alive(TWO, 10))
    assert [
        n for n in outputs.notifications if isinstance(n, (MemberUp, MemberDown))
    ] == []

    assert apply(core, suspect(THREE)).notifications == [MemberUp(THREE)]
    assert apply(core, down(THREE)).notifications == [MemberDown(THREE)]
    assert apply(core, down(THREE)).notifications == []
    assert apply(core, down(ident(4))).notifications == []

    outputs = apply(core, down(TWO))
    assert outputs.notifications == [MemberDown(TWO), Idle()]
    outputs = apply(core, alive(ident(5)))
    assert outputs.notifications == [MemberUp(ident(5)), Active()]

    core_unrenewable = new_core(unrenewable(1))
    apply(core_unrenewable, alive(ident(5)))
    outputs = apply(core_unrenewable, down(unrenewable(1)))
    assert outputs.notifications == [Defunct()]
    # While undead, members are still maintained, but we stay inactive.
    assert apply(core_unrenewable, down(ident(5))).notifications == [
        MemberDown(ident(5))
    ]
    assert apply(core_unrenewable, alive(ident(6))).notifications == [
        MemberUp(ident(6))
    ]

    core_unrenewable.reuse_down_identity()
    assert apply(core_unrenewable, alive(ident(6))).notifications == [Active()]


def test_feed_alive_about_us_changes_nothing() -> None:
    core = new_core()
    receive(core, datagram(TWO, ME, Gossip(), [alive(ME, 3)]))
    assert core.incarnation == 0
    assert core.num_members() == 1


def test_replies_carry_refuted_incarnation() -> None:
    core = new_core()
    outputs = receive(core, datagram(TWO, ME, Ping(1), [suspect(ME)]))
    ack = [p for _, p in sent(outputs) if p.message != Gossip()]
    assert len(ack) == 1
    assert ack[0].header.src_incarnation == 1
    assert all(p.header.src_incarnation == 1 for _, p in sent(outputs))
    assert State.SUSPECT not in {m.state for m in core.iter_members()}


def test_forged_next_renewal_stays_down() -> None:
    # foca 1.0 does the same: the Alive about our next identity is stored as
    # Down (another identity at our address), then Down about us makes the
    # node renew to exactly that identity, which stays in the table as Down.
    core = new_core()
    apply(core, alive(TWO))
    next_identity = ME.renew()
    assert next_identity is not None

    receive(
        core,
        datagram(TWO, ME, Gossip(), [alive(next_identity), down(ME)]),
    )

    assert core.identity == next_identity
    record = next(m for m in core.iter_membership_state() if m.id.addr == ME.addr)
    assert record.id == next_identity
    assert record.state is State.DOWN
    assert next_identity not in {member.id for member in core.iter_members()}

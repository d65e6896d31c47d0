"""Address conflicts: two identities at one address."""

from __future__ import annotations

from swim_py.config import Config
from swim_py.events import ChangeSuspectToDown, MemberDown, MemberUp, Rename
from swim_py.payload import Feed, TurnUndead
from tests.helpers.craft import (
    ME,
    alive,
    apply,
    datagram,
    down,
    fire,
    ident,
    new_core,
    probing_core,
    receive,
    scheduled,
    sent,
    suspect,
)


def test_newer_identity_replaces_known_member() -> None:
    core = new_core()
    apply(core, alive(ident(2)))
    outputs = apply(core, alive(ident(2, renewal=1)))
    assert list(core.iter_members()) == [alive(ident(2, renewal=1))]
    assert outputs.notifications == [Rename(ident(2), ident(2, renewal=1))]


def test_older_identity_loses_conflict() -> None:
    core = new_core()
    apply(core, alive(ident(2, renewal=1)))
    for update in (alive(ident(2)), suspect(ident(2)), down(ident(2))):
        outputs = apply(core, update)
        assert list(core.iter_members()) == [alive(ident(2, renewal=1))]
        assert outputs.notifications == []
        assert outputs.schedules == []


def test_conflict_tie_goes_to_newcomer() -> None:
    core = new_core()
    apply(core, alive(ident(2, id=b"a")))
    outputs = apply(core, alive(ident(2, id=b"b")))
    assert outputs.notifications == [Rename(ident(2, id=b"a"), ident(2, id=b"b"))]


def test_rename_to_down_identity_notification_order() -> None:
    core = new_core()
    apply(core, alive(ident(2)), alive(ident(3)))
    outputs = apply(core, down(ident(2, renewal=1)))
    assert outputs.notifications == [
        Rename(ident(2), ident(2, renewal=1)),
        MemberDown(ident(2, renewal=1)),
    ]


def test_rename_of_down_record_notification_order() -> None:
    core = new_core()
    apply(core, alive(ident(3)), down(ident(2)))
    outputs = apply(core, suspect(ident(2, renewal=1)))
    assert outputs.notifications == [
        Rename(ident(2), ident(2, renewal=1)),
        MemberUp(ident(2, renewal=1)),
    ]
    assert core.num_members() == 2


def test_older_identities_change_nothing() -> None:
    core = new_core()
    apply(core, alive(ident(3)))
    for renewal in range(3):
        apply(core, alive(ident(2, renewal=renewal)))
    for renewal in range(2):
        for update in (
            alive(ident(2, renewal=renewal)),
            down(ident(2, renewal=renewal)),
        ):
            outputs = apply(core, update)
            assert outputs.notifications == []
            assert outputs.sends == []
    assert alive(ident(2, renewal=2)) in list(core.iter_members())


def test_data_from_stale_identity_is_discarded() -> None:
    core = new_core()
    apply(core, alive(ident(2)), alive(ident(2, renewal=1)))
    assert core.num_members() == 1

    outputs = receive(core, datagram(ident(2), ME, Feed(), [alive(ident(3))]))
    assert core.num_members() == 1
    assert outputs.sends == []

    receive(core, datagram(ident(2, renewal=1), ME, Feed(), [alive(ident(3))]))
    assert core.num_members() == 2


def test_stale_identity_gets_turn_undead() -> None:
    core = new_core(config=Config(notify_down_members=True))
    apply(core, alive(ident(2, renewal=1)))
    outputs = receive(core, datagram(ident(2), ME, Feed()))
    [(dst, reply)] = sent(outputs)
    assert dst == ident(2)
    assert reply.message == TurnUndead()


def test_old_suspicion_spares_renewed_identity() -> None:
    probing = probing_core(1)
    core = probing.core
    fire(core, probing.send_indirect_probe)
    renewed = probing.probed.renew()
    assert renewed is not None
    apply(core, alive(renewed))

    outputs = fire(core, ChangeSuspectToDown(probing.probed, 0, 0))
    assert list(core.iter_members()) == [alive(renewed)]
    assert outputs.notifications == []


def test_failed_probe_of_renamed_member() -> None:
    probing = probing_core(1)
    core = probing.core
    fire(core, probing.send_indirect_probe)
    renewed = probing.probed.renew()
    assert renewed is not None
    apply(core, alive(renewed))
    outputs = fire(core, probing.next_probe)
    assert list(core.iter_members()) == [alive(renewed)]
    # As in foca, the record at the address is active, so a suspicion timer
    # for the old identity is still scheduled. It loses the conflict later.
    [timer] = scheduled(outputs, ChangeSuspectToDown)
    assert timer.timer == ChangeSuspectToDown(probing.probed, 0, 0)


def test_update_for_our_address_becomes_down() -> None:
    core = new_core(ident(1, renewal=2))
    apply(core, alive(ident(2)))
    apply(core, suspect(ident(1, renewal=1), 9))
    assert down(ident(1, renewal=1)) in list(core.iter_membership_state())
    core.gossip()
    [(_, gossip)] = sent(core.take_outputs())
    assert gossip.updates is not None
    assert down(ident(1, renewal=1)) in gossip.updates

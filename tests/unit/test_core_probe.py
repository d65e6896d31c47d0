"""The probe cycle: Ping, indirect probes, suspicion and Down."""

from __future__ import annotations

import pytest

from swim_py.config import Config
from swim_py.errors import IncompleteProbeCycleError, NotConnectedError
from swim_py.events import (
    ChangeSuspectToDown,
    Idle,
    MemberDown,
    MemberSuspect,
    ProbeRandomMember,
    RemoveDown,
    Rename,
    SendIndirectProbe,
)
from swim_py.payload import (
    Ack,
    ForwardedAck,
    Ping,
    PingReq,
    State,
    TurnUndead,
)
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


def test_first_probe_number_is_one() -> None:
    probing = probing_core(2)
    assert probing.probe_number == 1


def test_probe_schedules_indirect_and_next() -> None:
    core = new_core()
    [start] = scheduled(apply(core, alive(ident(2))), ProbeRandomMember)
    outputs = fire(core, start.timer)
    [indirect] = scheduled(outputs, SendIndirectProbe)
    [next_probe] = scheduled(outputs, ProbeRandomMember)
    assert indirect.timer == SendIndirectProbe(ident(2), 0)
    assert indirect.delay == 0.5
    assert next_probe.timer == ProbeRandomMember(0)
    assert next_probe.delay == 1.5


def test_probe_ack_skips_indirect_stage() -> None:
    probing = probing_core(5)
    core = probing.core
    receive(core, datagram(probing.probed, ME, Ack(probing.probe_number)))
    outputs = fire(core, probing.send_indirect_probe)
    assert outputs.sends == []

    outputs = fire(core, probing.next_probe)
    assert scheduled(outputs, ChangeSuspectToDown) == []
    assert all(m.state is State.ALIVE for m in core.iter_members())


def test_ack_with_wrong_probe_number_is_ignored() -> None:
    probing = probing_core(5)
    core = probing.core
    wrong = (probing.probe_number + 1) % 256
    receive(core, datagram(probing.probed, ME, Ack(wrong)))
    outputs = fire(core, probing.send_indirect_probe)
    assert all(isinstance(p.message, PingReq) for _, p in sent(outputs))
    assert len(outputs.sends) == 3


def test_ack_from_other_member_is_ignored() -> None:
    probing = probing_core(5)
    core = probing.core
    other = next(m for m in probing.members if m != probing.probed)
    receive(core, datagram(other, ME, Ack(probing.probe_number)))
    outputs = fire(core, probing.send_indirect_probe)
    assert len(outputs.sends) == 3


def test_indirect_stage_sends_ping_reqs() -> None:
    probing = probing_core(5)
    outputs = fire(probing.core, probing.send_indirect_probe)
    messages = sent(outputs)
    dsts = [dst for dst, _ in messages]
    assert len(dsts) == 3
    assert len(set(dsts)) == 3
    assert probing.probed not in dsts
    assert all(dst.addr != probing.probed.addr for dst in dsts)
    assert ME not in dsts
    for _, parsed in messages:
        assert parsed.message == PingReq(probing.probed, probing.probe_number)


def test_forwarded_ack_from_outsider_is_ignored() -> None:
    probing = probing_core(5)
    core = probing.core
    helpers = [dst for dst, _ in sent(fire(core, probing.send_indirect_probe))]
    outsider = next(m for m in probing.members if m not in helpers)
    if outsider == probing.probed:
        outsider = ident(42)
    ack = ForwardedAck(probing.probed, probing.probe_number)
    receive(core, datagram(outsider, ME, ack))
    outputs = fire(core, probing.next_probe)
    [timer] = scheduled(outputs, ChangeSuspectToDown)
    assert timer.timer.member_id == probing.probed  # type: ignore[union-attr]


@pytest.mark.parametrize("helper_index", [0, 1, 2])
def test_forwarded_ack_from_any_helper_succeeds(helper_index: int) -> None:
    probing = probing_core(5)
    core = probing.core
    helpers = [dst for dst, _ in sent(fire(core, probing.send_indirect_probe))]
    # The origin is not compared with the target, as in foca.
    ack = ForwardedAck(ident(99), probing.probe_number)
    receive(core, datagram(helpers[helper_index], ME, ack))
    outputs = fire(core, probing.next_probe)
    assert scheduled(outputs, ChangeSuspectToDown) == []


def test_forwarded_ack_wrong_number_ignored() -> None:
    probing = probing_core(5)
    core = probing.core
    helpers = [dst for dst, _ in sent(fire(core, probing.send_indirect_probe))]
    ack = ForwardedAck(probing.probed, (probing.probe_number + 1) % 256)
    receive(core, datagram(helpers[0], ME, ack))
    outputs = fire(core, probing.next_probe)
    assert len(scheduled(outputs, ChangeSuspectToDown)) == 1


def test_failed_probe_suspects_target() -> None:
    probing = probing_core(3)
    core = probing.core
    fire(core, probing.send_indirect_probe)
    outputs = fire(core, probing.next_probe)

    [timer] = scheduled(outputs, ChangeSuspectToDown)
    assert timer.timer == ChangeSuspectToDown(probing.probed, 0, 0)
    assert timer.delay == 3.0
    assert MemberSuspect(probing.probed) in outputs.notifications
    states = {m.id: m.state for m in core.iter_members()}
    assert states[probing.probed] is State.SUSPECT


def test_suspicion_uses_probe_start_incarnation() -> None:
    probing = probing_core(1)
    core = probing.core
    fire(core, probing.send_indirect_probe)
    # The target refutes an unrelated suspicion meanwhile.
    apply(core, alive(probing.probed, 4))
    outputs = fire(core, probing.next_probe)
    [timer] = scheduled(outputs, ChangeSuspectToDown)
    assert timer.timer == ChangeSuspectToDown(probing.probed, 0, 0)
    assert list(core.iter_members()) == [alive(probing.probed, 4)]


def test_failed_probe_of_suspect_schedules_again() -> None:
    probing = probing_core(1)
    core = probing.core
    fire(core, probing.send_indirect_probe)
    outputs = fire(core, probing.next_probe)
    assert len(scheduled(outputs, ChangeSuspectToDown)) == 1
    [indirect] = scheduled(outputs, SendIndirectProbe)
    [next_probe] = scheduled(outputs, ProbeRandomMember)

    fire(core, indirect.timer)
    outputs = fire(core, next_probe.timer)
    assert len(scheduled(outputs, ChangeSuspectToDown)) == 1
    assert MemberSuspect(probing.probed) not in outputs.notifications


def test_late_ack_before_next_probe_still_counts() -> None:
    probing = probing_core(3)
    core = probing.core
    fire(core, probing.send_indirect_probe)
    receive(core, datagram(probing.probed, ME, Ack(probing.probe_number)))
    outputs = fire(core, probing.next_probe)
    assert scheduled(outputs, ChangeSuspectToDown) == []


def test_missing_indirect_timer_raises_incomplete_cycle() -> None:
    probing = probing_core(2)
    core = probing.core
    with pytest.raises(IncompleteProbeCycleError):
        core.handle_timer(probing.next_probe)
    outputs = core.take_outputs()
    assert scheduled(outputs, ChangeSuspectToDown) == []
    assert all(m.state is State.ALIVE for m in core.iter_members())


def test_incomplete_probe_cycle_starts_new_probe() -> None:
    probing = probing_core(2)
    core = probing.core
    with pytest.raises(IncompleteProbeCycleError):
        core.handle_timer(probing.next_probe)
    outputs = core.take_outputs()
    [(_, ping)] = sent(outputs)
    assert ping.message == Ping(probing.probe_number + 1)
    assert len(scheduled(outputs, SendIndirectProbe)) == 1
    assert len(scheduled(outputs, ProbeRandomMember)) == 1


def test_probe_timer_disconnected_raises() -> None:
    core = new_core()
    with pytest.raises(NotConnectedError):
        core.handle_timer(ProbeRandomMember(0))


def test_probe_timer_with_stale_token_is_ignored() -> None:
    core = new_core()
    outputs = fire(core, ProbeRandomMember(7))
    assert outputs.sends == []
    assert outputs.schedules == []


def test_renewing_mid_probe_ignores_stale_timer() -> None:
    probing = probing_core(3)
    core = probing.core
    core.change_identity(ME.renew())  # type: ignore[arg-type]
    core.take_outputs()
    outputs = fire(core, probing.next_probe)
    assert outputs.sends == []
    assert outputs.schedules == []


def test_going_idle_mid_probe_clears_probe() -> None:
    probing = probing_core(2)
    core = probing.core
    outputs = apply(core, *(down(member) for member in probing.members))
    assert Idle() in outputs.notifications

    # Reconnecting starts probing with a new token and a clean probe.
    [start] = scheduled(apply(core, alive(ident(9))), ProbeRandomMember)
    assert start.timer == ProbeRandomMember(1)
    outputs = fire(core, start.timer)
    [(dst, ping)] = sent(outputs)
    assert dst == ident(9)
    assert isinstance(ping.message, Ping)


def test_no_indirect_stage_when_target_renamed() -> None:
    probing = probing_core(1)
    core = probing.core
    renewed = probing.probed.renew()
    assert renewed is not None
    outputs = apply(core, alive(renewed))
    assert Rename(probing.probed, renewed) in outputs.notifications
    outputs = fire(core, probing.send_indirect_probe)
    assert outputs.sends == []


def test_no_indirect_stage_when_target_went_down() -> None:
    probing = probing_core(3)
    core = probing.core
    apply(core, down(probing.probed))
    outputs = fire(core, probing.send_indirect_probe)
    assert outputs.sends == []


def test_indirect_stage_stale_token_ignored() -> None:
    probing = probing_core(3)
    core = probing.core
    stale = SendIndirectProbe(probing.probed, probing.send_indirect_probe.token + 1)
    assert fire(core, stale).sends == []
    # The real timer never fired, so the next probe finds an incomplete cycle.
    with pytest.raises(IncompleteProbeCycleError):
        core.handle_timer(probing.next_probe)


def test_indirect_stage_for_other_member_counts() -> None:
    probing = probing_core(3)
    core = probing.core
    other = next(m for m in probing.members if m != probing.probed)
    assert fire(core, SendIndirectProbe(other, 0)).sends == []
    outputs = fire(core, probing.next_probe)
    assert len(scheduled(outputs, ChangeSuspectToDown)) == 1


def test_suspect_timer_declares_member_down() -> None:
    probing = probing_core(2)
    core = probing.core
    fire(core, probing.send_indirect_probe)
    [timer] = scheduled(fire(core, probing.next_probe), ChangeSuspectToDown)

    outputs = fire(core, timer.timer)
    assert MemberDown(probing.probed) in outputs.notifications
    [remove] = scheduled(outputs, RemoveDown)
    assert remove.timer == RemoveDown(probing.probed)
    assert core.num_members() == 1
    assert outputs.sends == []


def test_last_member_down_goes_idle() -> None:
    probing = probing_core(1)
    core = probing.core
    fire(core, probing.send_indirect_probe)
    [timer] = scheduled(fire(core, probing.next_probe), ChangeSuspectToDown)
    outputs = fire(core, timer.timer)
    assert outputs.notifications[-1] == Idle()


def test_refuted_suspicion_is_not_declared_down() -> None:
    core = new_core()
    apply(core, suspect(ident(2)), alive(ident(3)))
    receive(core, datagram(ident(2), ME, Ping(1), src_incarnation=1))
    outputs = fire(core, ChangeSuspectToDown(ident(2), 0, 0))
    assert MemberDown(ident(2)) not in outputs.notifications
    assert alive(ident(2), 1) in list(core.iter_members())


def test_declaring_down_sends_turn_undead() -> None:
    probing = probing_core(2, Config(notify_down_members=True))
    core = probing.core
    fire(core, probing.send_indirect_probe)
    fire(core, probing.next_probe)
    outputs = fire(core, ChangeSuspectToDown(probing.probed, 0, 0))
    [(dst, message)] = sent(outputs)
    assert dst == probing.probed
    assert message.message == TurnUndead()


def test_turn_undead_sent_after_refutation() -> None:
    # foca 1.0 sends TurnUndead whenever the address is still known, even
    # when the member refuted and stays Alive. swim_py copies it.
    core = new_core(config=Config(notify_down_members=True))
    apply(core, suspect(ident(2)), alive(ident(3)))
    receive(core, datagram(ident(2), ME, ForwardedAck(ident(5), 0), src_incarnation=1))
    outputs = fire(core, ChangeSuspectToDown(ident(2), 0, 0))
    assert alive(ident(2), 1) in list(core.iter_members())
    [(dst, message)] = sent(outputs)
    assert dst == ident(2)
    assert message.message == TurnUndead()


def test_suspect_timer_for_unknown_member_ignored() -> None:
    core = new_core(config=Config(notify_down_members=True))
    apply(core, alive(ident(3)))
    outputs = fire(core, ChangeSuspectToDown(ident(2), 0, 0))
    assert outputs.sends == []
    assert outputs.notifications == []


def test_suspect_timer_with_stale_token_ignored() -> None:
    core = new_core()
    apply(core, suspect(ident(2)))
    outputs = fire(core, ChangeSuspectToDown(ident(2), 0, 5))
    assert outputs.notifications == []
    assert core.num_members() == 1


def test_remove_down_needs_exact_down_identity() -> None:
    core = new_core()
    apply(core, down(ident(2, renewal=1)), alive(ident(3)))
    core.change_identity(ident(1, renewal=1))
    fire(core, RemoveDown(ident(2)))
    fire(core, RemoveDown(ident(3)))
    assert len(list(core.iter_membership_state())) == 2
    fire(core, RemoveDown(ident(2, renewal=1)))
    assert {m.id for m in core.iter_membership_state()} == {ident(3)}


def test_removed_down_identity_can_join_again() -> None:
    core = new_core()
    apply(core, alive(ident(3)), down(ident(2)))
    fire(core, RemoveDown(ident(2)))
    apply(core, alive(ident(2)))
    assert ident(2) in {m.id for m in core.iter_members()}


def test_probe_number_wraps_after_255() -> None:
    core = new_core()
    [start] = scheduled(apply(core, alive(ident(2))), ProbeRandomMember)
    timer = start.timer
    numbers = []
    for _ in range(257):
        outputs = fire(core, timer)
        [(_, ping)] = sent(outputs)
        assert isinstance(ping.message, Ping)
        numbers.append(ping.message.probe_number)
        receive(core, datagram(ident(2), ME, Ack(ping.message.probe_number)))
        [indirect] = scheduled(outputs, SendIndirectProbe)
        fire(core, indirect.timer)
        timer = scheduled(outputs, ProbeRandomMember)[0].timer
    assert numbers[:2] == [1, 2]
    assert numbers[254:257] == [255, 0, 1]


def test_probe_number_survives_identity_change() -> None:
    probing = probing_core(1)
    core = probing.core
    core.change_identity(ident(1, renewal=1))
    [start] = scheduled(apply(core, alive(ident(5))), ProbeRandomMember)
    outputs = fire(core, start.timer)
    pings = [p.message for _, p in sent(outputs) if isinstance(p.message, Ping)]
    assert pings == [Ping(probing.probe_number + 1)]

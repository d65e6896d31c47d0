"""Periodic announce, gossip and announce-to-down timers, and set_config."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from swim_py.config import Config, PeriodicParams
from swim_py.errors import InvalidConfigError
from swim_py.events import (
    ConnectionState,
    PeriodicAnnounce,
    PeriodicAnnounceDown,
    PeriodicGossip,
    ProbeRandomMember,
    Timer,
)
from swim_py.payload import Announce, Gossip, Message
from tests.helpers.craft import (
    alive,
    apply,
    down,
    fire,
    ident,
    new_core,
    scheduled,
    sent,
    suspect,
)

PARAMS = PeriodicParams(frequency=0.5, num_members=2)

# (config field, timer factory, message sent, whether it goes to Down members)
PERIODIC: list[tuple[str, Callable[[int], Timer], Message, bool]] = [
    ("periodic_announce", PeriodicAnnounce, Announce(), False),
    ("periodic_gossip", PeriodicGossip, Gossip(), False),
    ("periodic_announce_to_down_members", PeriodicAnnounceDown, Announce(), True),
]
PERIODIC_PARAMS = [pytest.param(*row, id=row[0]) for row in PERIODIC]


@pytest.mark.parametrize(("field", "make_timer", "message", "to_down"), PERIODIC_PARAMS)
def test_periodic_timer_reschedules_and_sends(
    field: str, make_timer: Callable[[int], Timer], message: Message, to_down: bool
) -> None:
    core = new_core(config=Config.simple().replace(**{field: PARAMS}))
    outputs = apply(
        core, alive(ident(2)), suspect(ident(3)), down(ident(4)), down(ident(5))
    )
    assert core.num_members() == 2
    [first] = [s for s in outputs.schedules if s.timer == make_timer(0)]
    assert first.delay == 0.5

    outputs = fire(core, make_timer(0))
    [again] = [s for s in outputs.schedules if s.timer == make_timer(0)]
    assert again.delay == 0.5
    expected = {ident(4), ident(5)} if to_down else {ident(2), ident(3)}
    messages = sent(outputs)
    assert {dst for dst, _ in messages} == expected
    assert all(parsed.message == message for _, parsed in messages)


@pytest.mark.parametrize(("field", "make_timer", "message", "to_down"), PERIODIC_PARAMS)
def test_periodic_timer_cannot_be_enabled(
    field: str, make_timer: Callable[[int], Timer], message: Message, to_down: bool
) -> None:
    core = new_core()
    with pytest.raises(InvalidConfigError, match=field):
        core.set_config(Config.simple().replace(**{field: PARAMS}))
    assert getattr(core.config, field) is None


@pytest.mark.parametrize(("field", "make_timer", "message", "to_down"), PERIODIC_PARAMS)
def test_periodic_timer_can_be_disabled(
    field: str, make_timer: Callable[[int], Timer], message: Message, to_down: bool
) -> None:
    core = new_core(config=Config.simple().replace(**{field: PARAMS}))
    apply(core, alive(ident(2)), down(ident(4)))
    core.set_config(Config.simple())
    outputs = fire(core, make_timer(0))
    assert outputs.schedules == []
    assert outputs.sends == []


@pytest.mark.parametrize(("field", "make_timer", "message", "to_down"), PERIODIC_PARAMS)
def test_periodic_timer_ignored_when_disconnected(
    field: str, make_timer: Callable[[int], Timer], message: Message, to_down: bool
) -> None:
    core = new_core(config=Config.simple().replace(**{field: PARAMS}))
    apply(core, down(ident(4)))
    assert core.connection_state is ConnectionState.DISCONNECTED
    outputs = fire(core, make_timer(0))
    assert outputs.schedules == []
    assert outputs.sends == []


@pytest.mark.parametrize(("field", "make_timer", "message", "to_down"), PERIODIC_PARAMS)
def test_periodic_timer_stale_token_ignored(
    field: str, make_timer: Callable[[int], Timer], message: Message, to_down: bool
) -> None:
    core = new_core(config=Config.simple().replace(**{field: PARAMS}))
    apply(core, alive(ident(2)), down(ident(4)))
    outputs = fire(core, make_timer(1))
    assert outputs.schedules == []
    assert outputs.sends == []


@pytest.mark.parametrize(("field", "make_timer", "message", "to_down"), PERIODIC_PARAMS)
def test_periodic_timer_restarts_on_reconnect(
    field: str, make_timer: Callable[[int], Timer], message: Message, to_down: bool
) -> None:
    core = new_core(config=Config.simple().replace(**{field: PARAMS}))
    apply(core, alive(ident(2)))
    apply(core, down(ident(2)))
    outputs = apply(core, alive(ident(3)))
    assert [
        s.timer for s in outputs.schedules if type(s.timer) is type(make_timer(0))
    ] == [make_timer(1)]


def test_periodic_gossip_skips_empty_backlogs() -> None:
    config = Config(periodic_gossip=PeriodicParams(frequency=0.2, num_members=3))
    core = new_core(config=config)
    apply(core, alive(ident(2)))
    for _ in range(10):
        core.gossip()
    core.take_outputs()
    outputs = fire(core, PeriodicGossip(0))
    assert outputs.sends == []
    assert len(outputs.schedules) == 1


def test_periodic_announce_uses_new_parameters() -> None:
    core = new_core(config=Config(periodic_announce=PARAMS))
    apply(core, *(alive(ident(n)) for n in range(2, 8)))
    core.set_config(
        Config(periodic_announce=PeriodicParams(frequency=2.0, num_members=4))
    )
    outputs = fire(core, PeriodicAnnounce(0))
    assert len(outputs.sends) == 4
    assert outputs.schedules[0].delay == 2.0


def test_connecting_schedules_timers_in_order() -> None:
    config = Config(
        periodic_announce=PARAMS,
        periodic_announce_to_down_members=PARAMS,
        periodic_gossip=PARAMS,
    )
    core = new_core(config=config)
    outputs = apply(core, alive(ident(2)))
    assert [s.timer for s in outputs.schedules] == [
        ProbeRandomMember(0),
        PeriodicAnnounce(0),
        PeriodicAnnounceDown(0),
        PeriodicGossip(0),
    ]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"probe_period": 2.0}, id="probe_period"),
        pytest.param({"probe_rtt": 0.4}, id="probe_rtt"),
    ],
)
def test_probe_timings_fixed_at_runtime(change: dict[str, float]) -> None:
    core = new_core()
    with pytest.raises(InvalidConfigError):
        core.set_config(Config.simple().replace(**change))
    assert core.config == Config.simple()


def test_other_fields_change_at_runtime() -> None:
    core = new_core()
    new = Config.simple().replace(
        max_transmissions=3,
        num_indirect_probes=1,
        suspect_to_down_after=9.0,
        notify_down_members=True,
    )
    core.set_config(new)
    assert core.config == new
    [timer] = scheduled(apply(core, alive(ident(2))), ProbeRandomMember)
    assert timer.delay == 1.5

"""Timer ordering and the shape of events."""

from __future__ import annotations

import dataclasses

import pytest

from swim_py.events import (
    Active,
    ChangeSuspectToDown,
    MemberUp,
    PeriodicAnnounce,
    PeriodicAnnounceDown,
    PeriodicGossip,
    ProbeRandomMember,
    RemoveDown,
    SendIndirectProbe,
    Timer,
    timer_sort_key,
)
from tests.helpers.craft import ident


def test_timer_sort_key_matches_foca_order() -> None:
    timers: list[Timer] = [
        PeriodicAnnounceDown(0),
        RemoveDown(ident(2)),
        PeriodicGossip(0),
        PeriodicAnnounce(0),
        ChangeSuspectToDown(ident(2), 0, 0),
        ProbeRandomMember(0),
        SendIndirectProbe(ident(2), 0),
    ]
    ordered = sorted(timers, key=timer_sort_key)
    assert [type(timer) for timer in ordered] == [
        SendIndirectProbe,
        ProbeRandomMember,
        ChangeSuspectToDown,
        PeriodicAnnounce,
        PeriodicGossip,
        RemoveDown,
        PeriodicAnnounceDown,
    ]


def test_timer_sort_key_ignores_fields() -> None:
    assert timer_sort_key(ProbeRandomMember(0)) == timer_sort_key(ProbeRandomMember(9))


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(MemberUp(ident(2)), id="notification"),
        pytest.param(ProbeRandomMember(1), id="timer"),
        pytest.param(Active(), id="fieldless"),
    ],
)
def test_events_are_frozen_and_hashable(event: object) -> None:
    assert hash(event) == hash(event)
    fields = dataclasses.fields(event)  # type: ignore[arg-type]
    if fields:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, fields[0].name, None)


def test_timers_match_positionally() -> None:
    match SendIndirectProbe(ident(2), 3):
        case SendIndirectProbe(probed_id, token):
            assert probed_id == ident(2)
            assert token == 3
        case _:
            pytest.fail("SendIndirectProbe did not match its own pattern")

"""The member table: merge table, conflicts, probe order and random picks."""

from __future__ import annotations

import random

import pytest

from swim_py.members import Conflict, Members, update_overrides
from swim_py.payload import Member, State
from tests.helpers.craft import alive, down, ident, suspect

A, S, D = State.ALIVE, State.SUSPECT, State.DOWN

# (current state, incoming state, incoming incarnation relative to the
# current incarnation 5, whether the update applies)
MERGE_TABLE = [
    (A, A, -1, False),
    (A, A, 0, False),
    (A, A, 1, True),
    (A, S, -1, False),
    (A, S, 0, True),
    (A, S, 1, True),
    (A, D, -1, True),
    (A, D, 0, True),
    (A, D, 1, True),
    (S, A, -1, False),
    (S, A, 0, False),
    (S, A, 1, True),
    (S, S, -1, False),
    (S, S, 0, False),
    (S, S, 1, True),
    (S, D, -1, True),
    (S, D, 0, True),
    (S, D, 1, True),
    (D, A, -1, False),
    (D, A, 0, False),
    (D, A, 1, False),
    (D, S, -1, False),
    (D, S, 0, False),
    (D, S, 1, False),
    (D, D, -1, False),
    (D, D, 0, False),
    (D, D, 1, False),
]


def table() -> Members:
    return Members(random.Random(7))


@pytest.mark.parametrize(
    ("current", "incoming", "delta", "applies"),
    [
        pytest.param(c, i, d, a, id=f"{c.name}(5)<-{i.name}({5 + d})")
        for c, i, d, a in MERGE_TABLE
    ],
)
def test_members_merge_table(
    current: State, incoming: State, delta: int, applies: bool
) -> None:
    members = table()
    members.apply(Member(ident(2), 5, current))

    summary = members.apply(Member(ident(2), 5 + delta, incoming))

    assert (
        update_overrides(Member(ident(2), 5, current), 5 + delta, incoming) is applies
    )
    assert summary.apply_successful is applies
    stored = members.get(ident(2).addr)
    assert stored is not None
    expected = Member(ident(2), 5 + delta, incoming) if applies else None
    if expected is not None:
        assert stored == expected
    else:
        assert stored == Member(ident(2), 5, current)


def test_members_insert_unknown_down_member() -> None:
    members = table()
    summary = members.apply(down(ident(2)))
    assert summary.apply_successful
    assert not summary.is_active_now
    assert not summary.changed_active_set
    assert len(members) == 1
    assert members.num_active == 0


def test_members_insert_active_member() -> None:
    members = table()
    summary = members.apply(suspect(ident(2)))
    assert summary.apply_successful
    assert summary.changed_active_set
    assert members.num_active == 1


def test_members_are_unique_by_address() -> None:
    members = table()
    members.apply(alive(ident(2, renewal=1)))
    members.apply(alive(ident(2, renewal=2)))
    assert len(members) == 1
    assert list(members)[0].id == ident(2, renewal=2)


def test_members_counts_active_members() -> None:
    members = table()
    members.apply(alive(ident(2)))
    members.apply(alive(ident(3)))
    members.apply(down(ident(2)))
    assert members.num_active == 1
    members.apply(alive(ident(2, renewal=1)))
    assert members.num_active == 2


def test_members_newer_identity_replaces() -> None:
    members = table()
    members.apply(alive(ident(2), incarnation=9))
    summary = members.apply(down(ident(2, renewal=1)))
    assert summary.conflict is Conflict.REPLACED
    assert summary.replaced == ident(2)
    assert summary.apply_successful
    assert summary.changed_active_set
    assert members.get(ident(2).addr) == down(ident(2, renewal=1))


def test_members_conflict_replaces_down_record() -> None:
    members = table()
    members.apply(down(ident(2)))
    summary = members.apply(suspect(ident(2, renewal=1), incarnation=0))
    assert summary.conflict is Conflict.REPLACED
    assert summary.is_active_now
    assert summary.changed_active_set


def test_members_conflict_older_identity_loses() -> None:
    members = table()
    members.apply(alive(ident(2, renewal=3)))
    for update in (alive(ident(2)), suspect(ident(2)), down(ident(2))):
        summary = members.apply(update)
        assert summary.conflict is Conflict.LOST
        assert not summary.apply_successful
        assert summary.is_active_now
        assert members.get(ident(2).addr) == alive(ident(2, renewal=3))


def test_members_conflict_tie_goes_to_newcomer() -> None:
    # Neither identity wins: foca keeps the stored one only if it wins.
    members = table()
    members.apply(alive(ident(2, id=b"old")))
    summary = members.apply(alive(ident(2, id=b"new")))
    assert summary.conflict is Conflict.REPLACED
    assert members.get(ident(2).addr) == alive(ident(2, id=b"new"))


def test_members_apply_existing_unknown_address() -> None:
    members = table()
    assert members.apply_existing_if(alive(ident(2)), lambda _m: True) is None
    assert len(members) == 0


def test_members_failed_condition_changes_nothing() -> None:
    members = table()
    members.apply(alive(ident(2), incarnation=1))
    summary = members.apply_existing_if(
        down(ident(2), incarnation=0), lambda m: m.incarnation == 0
    )
    assert summary is not None
    assert summary.conflict is Conflict.NO_CONFLICT
    assert not summary.apply_successful
    assert members.num_active == 1


def test_members_failed_condition_after_conflict() -> None:
    members = table()
    members.apply(alive(ident(2), incarnation=1))
    summary = members.apply_existing_if(
        down(ident(2, renewal=1)), lambda m: m.incarnation == 0
    )
    assert summary is not None
    assert summary.conflict is Conflict.FAILED_CONDITION
    assert members.get(ident(2).addr) == alive(ident(2), incarnation=1)


def test_members_became_suspect_only_from_alive() -> None:
    members = table()
    members.apply(alive(ident(2)))
    assert members.apply(suspect(ident(2))).became_suspect
    assert not members.apply(suspect(ident(2), incarnation=1)).became_suspect
    assert not members.apply(suspect(ident(3))).became_suspect


def test_members_remove_needs_exact_identity() -> None:
    members = table()
    members.apply(down(ident(2, renewal=1)))
    assert members.remove_if_down(ident(2)) is None
    assert members.remove_if_down(ident(2, renewal=1)) == down(ident(2, renewal=1))
    assert len(members) == 0


def test_members_remove_keeps_active_member() -> None:
    members = table()
    members.apply(alive(ident(2)))
    assert members.remove_if_down(ident(2)) is None
    assert len(members) == 1


def test_members_remove_keeps_index() -> None:
    members = table()
    for number in range(2, 8):
        members.apply(down(ident(number)))
    members.remove_if_down(ident(4))
    for number in (2, 3, 5, 6, 7):
        stored = members.get(ident(number).addr)
        assert stored is not None
        assert stored.id == ident(number)
    assert members.get(ident(4).addr) is None


def test_members_is_active_exact_identity() -> None:
    members = table()
    members.apply(alive(ident(2, renewal=1)))
    assert members.is_active(ident(2, renewal=1))
    assert not members.is_active(ident(2))


def test_members_next_visits_each_member_once() -> None:
    members = table()
    for number in range(2, 12):
        members.apply(alive(ident(number)))
    expected = {ident(number) for number in range(2, 12)}
    for _ in range(5):
        visited = []
        for _ in range(len(expected)):
            member = members.next()
            assert member is not None
            visited.append(member.id)
        assert set(visited) == expected
        assert len(visited) == len(expected)


def test_members_next_skips_down_members() -> None:
    members = table()
    members.apply(alive(ident(2)))
    for number in range(3, 8):
        members.apply(down(ident(number)))
    for _ in range(10):
        member = members.next()
        assert member is not None
        assert member.id == ident(2)


def test_members_next_reshuffles_between_passes() -> None:
    members = table()
    for number in range(2, 12):
        members.apply(alive(ident(number)))
    orders = set()
    for _ in range(6):
        order = []
        for _ in range(10):
            member = members.next()
            assert member is not None
            order.append(member.id.addr.port)
        orders.add(tuple(order))
    assert len(orders) > 1


def test_members_next_without_active_member() -> None:
    members = table()
    assert members.next() is None
    members.apply(down(ident(2)))
    assert members.next() is None


def test_members_next_wraps_around() -> None:
    members = table()
    members.apply(alive(ident(2)))
    members.apply(alive(ident(3)))
    first = members.next()
    assert first is not None
    members.apply(down(first.id))
    for _ in range(3):
        member = members.next()
        assert member is not None
        assert member.id != first.id


def test_members_choose_active_count_and_filter() -> None:
    members = table()
    for number in range(2, 12):
        members.apply(alive(ident(number)))
    members.apply(down(ident(12)))
    chosen = members.choose_active(3, lambda id: id != ident(2))
    ids = [member.id for member in chosen]
    assert len(ids) == 3
    assert len(set(ids)) == 3
    assert ident(2) not in ids
    assert ident(12) not in ids


def test_members_choose_active_when_fewer() -> None:
    members = table()
    members.apply(alive(ident(2)))
    members.apply(suspect(ident(3)))
    members.apply(down(ident(4)))
    chosen = {member.id for member in members.choose_active(5)}
    assert chosen == {ident(2), ident(3)}


def test_members_choose_down_returns_only_down() -> None:
    members = table()
    members.apply(alive(ident(2)))
    members.apply(down(ident(3)))
    members.apply(down(ident(4)))
    chosen = {member.id for member in members.choose_down(5)}
    assert chosen == {ident(3), ident(4)}


def test_members_choose_is_roughly_uniform() -> None:
    members = table()
    for number in range(2, 12):
        members.apply(alive(ident(number)))
    counts = dict.fromkeys(range(2, 12), 0)
    for _ in range(3000):
        for member in members.choose_active(2):
            counts[member.id.addr.port - 7000] += 1
    # Each member is expected 600 times out of 6000 picks.
    assert min(counts.values()) > 450
    assert max(counts.values()) < 750


def test_members_use_injected_rng() -> None:
    def order(seed: int) -> list[int]:
        members = Members(random.Random(seed))
        for number in range(2, 20):
            members.apply(alive(ident(number)))
        return [m.id.addr.port for m in members]

    assert order(1) == order(1)
    assert order(1) != order(2)


def reference_choose(
    records: list[Member], rng: random.Random, count: int, exclude: object
) -> list[Member]:
    """Return foca's reservoir sample of active records other than ``exclude``."""
    chosen: list[Member] = []
    seen = 0
    for member in records:
        if not member.is_active or member.id == exclude:
            continue
        seen += 1
        if len(chosen) < count:
            chosen.append(member)
            continue
        replace_at = rng.randrange(seen)
        if replace_at < count:
            chosen[replace_at] = member
    return chosen


class PlainRandom(random.Random):
    """A subclass that overrides random(), so its _randbelow skips getrandbits."""

    def random(self) -> float:
        return super().random()


@pytest.mark.parametrize("rng_class", [random.Random, PlainRandom])
@pytest.mark.parametrize("count", [0, 1, 3, 40])
def test_members_choose_draws_as_reference(
    rng_class: type[random.Random], count: int
) -> None:
    # The optimized sampler must pick the same members and leave the
    # generator in the same state as the plain reservoir loop.
    for seed in range(30):
        layout = random.Random(seed)
        records = [
            Member(ident(number), 0, layout.choice([A, S, D]))
            for number in range(2, 2 + layout.randrange(1, 120))
        ]
        exclude = layout.choice(records).id if seed % 2 else None
        members = Members(rng_class(seed))
        for record in records:
            members.apply(record)
        expected_rng = rng_class(seed)
        for record in records:
            # Replays the insertion draws that Members.apply made.
            expected_rng.randrange(records.index(record) + 1)
        expected = reference_choose(list(members), expected_rng, count, exclude)
        chosen = members.choose_active(count, exclude=exclude)
        assert chosen == expected, f"seed {seed}"
        assert members._rng.random() == expected_rng.random(), f"seed {seed}"

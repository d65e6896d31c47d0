"""The member table: one record per address, merge rules and random picks.

The table never contains our own current identity, but it may hold a Down
record of one of our previous identities (same address). Every random choice
draws from the ``random.Random`` given to the constructor.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from swim_py.identity import Address, Identity
from swim_py.payload import Member, State

__all__ = ["ApplySummary", "Conflict", "Members", "update_overrides"]

# A probe cursor value that forces a shuffle on the next pick.
_SHUFFLE_NEXT = 2**64 - 1


def update_overrides(current: Member, incarnation: int, state: State) -> bool:
    """Return whether an update about the same identity replaces ``current``.

    The SWIM suspicion order, as foca 1.0 implements it:

    ============  ===========  =============  ==========
    current       Alive(j)     Suspect(j)     Down(j)
    ============  ===========  =============  ==========
    Alive(i)      j > i        j >= i         always
    Suspect(i)    j > i        j > i          always
    Down(i)       never        never          never
    ============  ===========  =============  ==========
    """
    if current.state is State.DOWN:
        return False
    if state is State.DOWN:
        return True
    if current.state is State.ALIVE and state is State.SUSPECT:
        return incarnation >= current.incarnation
    return incarnation > current.incarnation


class Conflict(enum.Enum):
    """The relation between an update's identity and the record at its address."""

    NO_CONFLICT = "no_conflict"
    # A different identity at the address replaced the record.
    REPLACED = "replaced"
    # The stored identity won the address conflict, so the update was discarded.
    LOST = "lost"
    # The update would have replaced the record, but the condition failed.
    FAILED_CONDITION = "failed_condition"


@dataclass(frozen=True, slots=True)
class ApplySummary:
    """The outcome of applying one update to the table."""

    is_active_now: bool
    apply_successful: bool
    changed_active_set: bool
    conflict: Conflict = Conflict.NO_CONFLICT
    # The identity that was replaced, when ``conflict`` is REPLACED.
    replaced: Identity | None = None
    # The record was Alive and is now Suspect under the same identity.
    became_suspect: bool = False


class Members:
    """Member records, unique by ``Identity.addr``, in probe order.

    Probe targets come round-robin from a list that is shuffled at the start
    of every pass. New records are swapped into a random position, so a
    newcomer is probed within the current pass with fair odds.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._records: list[Member] = []
        # Position of each address in ``_records``.
        self._index: dict[Address, int] = {}
        self._cursor = 0
        self._num_active = 0

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Member]:
        return iter(self._records)

    @property
    def num_active(self) -> int:
        return self._num_active

    def iter_active(self) -> Iterator[Member]:
        return (member for member in self._records if member.is_active)

    def get(self, addr: Address) -> Member | None:
        """Return the record stored for ``addr``, if any."""
        position = self._index.get(addr)
        return None if position is None else self._records[position]

    def is_active(self, id: Identity) -> bool:
        """Return whether exactly this identity is stored and active."""
        member = self.get(id.addr)
        return member is not None and member.id == id and member.is_active

    def next(self) -> Member | None:
        """Return the next active member to probe, or None when there is none."""
        if self._cursor >= len(self._records):
            self._rng.shuffle(self._records)
            self._reindex()
            self._cursor = 0

        position = self._find_active(self._cursor, len(self._records))
        if position is not None:
            self._cursor = position + 1
            return self._records[position]

        position = self._find_active(0, self._cursor)
        if position is None:
            return None
        # We wrapped around, so the next call must start a new shuffled pass,
        # even if members join in between.
        self._cursor = _SHUFFLE_NEXT
        return self._records[position]

    def choose_active(
        self, count: int, accept: Callable[[Identity], bool] = lambda _id: True
    ) -> list[Member]:
        """Return up to ``count`` random active members whose id ``accept`` takes."""
        return self._choose(count, lambda m: m.is_active and accept(m.id))

    def choose_down(self, count: int) -> list[Member]:
        """Return up to ``count`` random Down members."""
        return self._choose(count, lambda m: not m.is_active)

    def remove_if_down(self, id: Identity) -> Member | None:
        """Remove and return the record of exactly ``id`` if it is Down."""
        position = self._index.get(id.addr)
        if position is None:
            return None
        member = self._records[position]
        if member.id != id or member.is_active:
            return None
        last = self._records.pop()
        del self._index[id.addr]
        if position < len(self._records):
            self._records[position] = last
            self._index[last.id.addr] = position
        return member

    def apply(self, update: Member) -> ApplySummary:
        """Merge ``update`` into the table, inserting it if its address is new."""
        summary = self.apply_existing_if(update, lambda _member: True)
        if summary is not None:
            return summary
        self._insert(update)
        return ApplySummary(
            is_active_now=update.is_active,
            apply_successful=True,
            changed_active_set=update.is_active,
        )

    def apply_existing_if(
        self, update: Member, condition: Callable[[Member], bool]
    ) -> ApplySummary | None:
        """Merge ``update`` into the record at its address if ``condition`` holds.

        Returns None when the address is unknown. When the stored identity
        differs from the update's, the stored one is kept only if it wins the
        address conflict (a tie goes to the update). Otherwise the update
        replaces the whole record, whatever the states and incarnations. The
        condition is tested after the conflict, against the stored record.
        """
        position = self._index.get(update.id.addr)
        if position is None:
            return None
        known = self._records[position]

        replacing = known.id != update.id
        if replacing and known.id.win_addr_conflict(update.id):
            return ApplySummary(known.is_active, False, False, Conflict.LOST)

        if not condition(known):
            conflict = Conflict.FAILED_CONDITION if replacing else Conflict.NO_CONFLICT
            return ApplySummary(known.is_active, False, False, conflict)

        if not replacing and not update_overrides(
            known, update.incarnation, update.state
        ):
            return ApplySummary(known.is_active, False, False)

        self._records[position] = update
        changed = known.is_active != update.is_active
        if changed:
            self._num_active += 1 if update.is_active else -1
        return ApplySummary(
            is_active_now=update.is_active,
            apply_successful=True,
            changed_active_set=changed,
            conflict=Conflict.REPLACED if replacing else Conflict.NO_CONFLICT,
            replaced=known.id if replacing else None,
            became_suspect=not replacing
            and known.state is State.ALIVE
            and update.state is State.SUSPECT,
        )

    def _insert(self, member: Member) -> None:
        # Append, then swap with a random position in [0, len).
        self._records.append(member)
        last = len(self._records) - 1
        self._index[member.id.addr] = last
        swap = self._rng.randrange(len(self._records))
        if swap != last:
            other = self._records[swap]
            self._records[swap] = member
            self._records[last] = other
            self._index[member.id.addr] = swap
            self._index[other.id.addr] = last
        if member.is_active:
            self._num_active += 1

    def _reindex(self) -> None:
        self._index = {member.id.addr: i for i, member in enumerate(self._records)}

    def _find_active(self, start: int, stop: int) -> int | None:
        records = self._records
        for position in range(start, min(stop, len(records))):
            if records[position].is_active:
                return position
        return None

    def _choose(self, count: int, accept: Callable[[Member], bool]) -> list[Member]:
        # Reservoir sampling over the records that ``accept`` takes.
        chosen: list[Member] = []
        seen = 0
        for member in self._records:
            if not accept(member):
                continue
            seen += 1
            if len(chosen) < count:
                chosen.append(member)
                continue
            replace_at = self._rng.randrange(seen)
            if replace_at < count:
                chosen[replace_at] = member
        return chosen

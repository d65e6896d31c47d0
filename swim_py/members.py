"""The member table: one record per address, merge rules and random picks.

The table never contains an active record of our own current identity. It
may contain a Down record at our address: one of our previous identities, or our
current identity itself when an update named it before we renewed to it (an
Alive about any other identity at our address is stored as Down, as foca 1.0
does). Every random choice draws from the ``random.Random`` given to the
constructor.
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


# The outcomes that change nothing. ApplySummary is immutable, so these are
# shared instead of built for every update that repeats what is known.
_UNCHANGED_ACTIVE = ApplySummary(True, False, False)
_UNCHANGED_INACTIVE = ApplySummary(False, False, False)
_INSERTED_ACTIVE = ApplySummary(True, True, True)
_INSERTED_INACTIVE = ApplySummary(False, True, False)


class Members:
    """Member records, unique by ``Identity.addr``, in probe order.

    Probe targets come round-robin from a list that is shuffled at the start
    of every pass. New records are swapped into a random position, so a
    newcomer is probed within the current pass with fair odds.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        # rng.randrange(n) with n > 0 returns rng._randbelow(n) in CPython's
        # random module, so calling it directly draws the same numbers
        # while skipping randrange's argument checks, which dominate a
        # reservoir sample of a large table.
        self._randbelow: Callable[[int], int] = getattr(
            rng, "_randbelow", rng.randrange
        )
        # Whether _randbelow is the getrandbits loop of random.Random, which
        # _sample_rest_with_getrandbits then runs inline.
        self._randbelow_is_getrandbits = getattr(
            type(rng), "_randbelow", None
        ) is getattr(random.Random, "_randbelow_with_getrandbits", False)
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
        self,
        count: int,
        accept: Callable[[Identity], bool] | None = None,
        *,
        exclude: Identity | None = None,
    ) -> list[Member]:
        """Return up to ``count`` random active members other than ``exclude``.

        ``accept``, if given, must also take the member's id.
        """
        return self._choose(count, True, accept, exclude)

    def choose_down(self, count: int) -> list[Member]:
        """Return up to ``count`` random Down members."""
        return self._choose(count, False, None, None)

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
        position = self._index.get(update.id.addr)
        if position is not None:
            known = self._records[position]
            if known.id is update.id or known.id == update.id:
                # The common case of apply_existing_if: same identity and no
                # condition, so only the suspicion order decides.
                if not update_overrides(known, update.incarnation, update.state):
                    return _UNCHANGED_ACTIVE if known.is_active else _UNCHANGED_INACTIVE
            summary = self.apply_existing_if(update, None)
            assert summary is not None, "the address is in the index"
            return summary
        self._insert(update)
        return _INSERTED_ACTIVE if update.is_active else _INSERTED_INACTIVE

    def apply_existing_if(
        self, update: Member, condition: Callable[[Member], bool] | None
    ) -> ApplySummary | None:
        """Merge ``update`` into the record at its address if ``condition`` holds.

        A ``condition`` of None always holds. Returns None when the address
        is unknown. When the stored identity
        differs from the update's, the stored one is kept only if it wins the
        address conflict (a tie goes to the update). Otherwise the update
        replaces the whole record, whatever the states and incarnations. The
        condition is tested after the conflict, against the stored record.
        """
        position = self._index.get(update.id.addr)
        if position is None:
            return None
        known = self._records[position]

        known_id = known.id
        replacing = known_id is not update.id and known_id != update.id
        if replacing and known_id.win_addr_conflict(update.id):
            return ApplySummary(known.is_active, False, False, Conflict.LOST)

        if condition is not None and not condition(known):
            if replacing:
                return ApplySummary(
                    known.is_active, False, False, Conflict.FAILED_CONDITION
                )
            return _UNCHANGED_ACTIVE if known.is_active else _UNCHANGED_INACTIVE

        if not replacing and not update_overrides(
            known, update.incarnation, update.state
        ):
            return _UNCHANGED_ACTIVE if known.is_active else _UNCHANGED_INACTIVE

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
        swap = self._randbelow(len(self._records))
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

    def _choose(
        self,
        count: int,
        active: bool,
        accept: Callable[[Identity], bool] | None,
        exclude: Identity | None,
    ) -> list[Member]:
        # Reservoir sampling over the records in the wanted state that pass
        # ``exclude`` and ``accept``. It draws the same numbers in the same
        # order as foca's loop: one per candidate once ``count`` are chosen.
        down = State.DOWN
        records = self._records
        if active:
            candidates = [member for member in records if member.state is not down]
        else:
            candidates = [member for member in records if member.state is down]
        if exclude is not None:
            # Comparing the cached hashes first skips Identity.__eq__ for
            # nearly every member.
            exclude_hash = exclude._hash
            candidates = [
                member
                for member in candidates
                if member.id is not exclude
                and (member.id._hash != exclude_hash or member.id != exclude)
            ]
        if accept is not None:
            candidates = [member for member in candidates if accept(member.id)]

        chosen = candidates[: max(count, 0)]
        if len(candidates) <= count:
            return chosen
        if self._randbelow_is_getrandbits:
            self._sample_rest_with_getrandbits(candidates, chosen, count)
            return chosen
        randbelow = self._randbelow
        for seen in range(len(chosen) + 1, len(candidates) + 1):
            replace_at = randbelow(seen)
            if replace_at < count:
                chosen[replace_at] = candidates[seen - 1]
        return chosen

    def _sample_rest_with_getrandbits(
        self, candidates: list[Member], chosen: list[Member], count: int
    ) -> None:
        # The reservoir loop with random.Random._randbelow_with_getrandbits
        # inlined: draw k = seen.bit_length() bits until the value is below
        # seen. The draws are the same, each without a Python call.
        getrandbits = self._rng.getrandbits
        seen = len(chosen)
        bits = seen.bit_length()
        next_power = 1 << bits
        for member in candidates[seen:]:
            seen += 1
            if seen == next_power:
                bits += 1
                next_power <<= 1
            replace_at = getrandbits(bits)
            while replace_at >= seen:
                replace_at = getrandbits(bits)
            if replace_at < count:
                chosen[replace_at] = member

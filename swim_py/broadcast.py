"""Dissemination backlogs and the custom broadcast handler interface.

SwimCore keeps two ``Broadcasts`` backlogs: cluster updates keyed by address,
and custom broadcast items keyed by the handler's keys. Each item is sent in
at most ``max_transmissions`` packets. A packet takes the items with the most
transmissions left first, the longest first among those. An item that does
not fit is skipped for that packet and keeps its count.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Generic, TypeVar

from swim_py.identity import Identity

__all__ = [
    "MAX_ITEMS_PER_PACKET",
    "MAX_ITEM_SIZE",
    "BroadcastHandler",
    "Broadcasts",
    "NoCustomBroadcast",
]

K = TypeVar("K")

# COUNT is a u16, so a packet carries at most 65535 updates.
MAX_ITEMS_PER_PACKET = 0xFFFF
# A custom broadcast item's length prefix is a big-endian u16.
MAX_ITEM_SIZE = 0xFFFF
LENGTH_PREFIX_SIZE = 2


class BroadcastHandler(abc.ABC, Generic[K]):
    """Decides which custom broadcast items are new and where they may go.

    The core calls ``receive_item`` for each item of a received datagram and
    for each ``add_broadcast`` call. A returned key queues the item for
    retransmission. Items whose key the new key ``invalidates`` leave the
    backlog first.
    """

    @abc.abstractmethod
    def receive_item(self, data: bytes, sender: Identity | None) -> K | None:
        """Return a key if ``data`` is new information, or None if it is stale.

        ``sender`` is the datagram's ``src``, or None for ``add_broadcast``.
        Returning a key for every item retransmits for ever. Raise any
        Exception to reject the item: the core raises CustomBroadcastError and
        ignores the rest of that datagram's items.
        """

    def should_add_broadcast_data(self, member: Identity) -> bool:
        """Return whether messages to ``member`` may carry custom broadcasts.

        False only leaves the items out, the message is still sent.
        ``broadcast()`` also uses it to pick recipients.
        """
        return True

    def invalidates(self, new_key: K, old_key: K) -> bool:
        """Return whether storing ``new_key`` drops the pending ``old_key`` item."""
        return new_key == old_key


class NoCustomBroadcast(BroadcastHandler[bytes]):
    """The default handler, which rejects every item.

    As with foca's ``NoCustomBroadcast``, a datagram with a broadcast tail is
    still processed and replied to, and then raises CustomBroadcastError.
    """

    def receive_item(self, data: bytes, sender: Identity | None) -> bytes | None:
        raise ValueError(
            "custom broadcasts are disabled: pass a BroadcastHandler to SwimCore"
        )


class _Entry(Generic[K]):
    __slots__ = ("key", "data", "remaining_tx", "seq")

    def __init__(self, key: K, data: bytes, remaining_tx: int, seq: int) -> None:
        self.key = key
        self.data = data
        self.remaining_tx = remaining_tx
        self.seq = seq

    def priority(self) -> tuple[int, int, int]:
        # Highest remaining_tx first, then longest. Ties go to the item queued
        # first, where foca's heap leaves them in an unspecified order.
        return (-self.remaining_tx, -len(self.data), self.seq)


class Broadcasts(Generic[K]):
    """A backlog of encoded items, each sent at most ``max_tx`` times.

    ``invalidates(new_key, old_key)`` selects the pending items that a new
    item replaces. With None, a new item replaces only the item with an equal
    key, which is found through a dict instead of a scan.
    """

    def __init__(self, invalidates: Callable[[K, K], bool] | None = None) -> None:
        self._invalidates = invalidates
        self._entries: list[_Entry[K]] = []
        self._by_key: dict[K, _Entry[K]] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def items(self) -> list[tuple[K, bytes, int]]:
        """Return ``(key, data, remaining_tx)`` of each pending item, in send order."""
        ordered = sorted(self._entries, key=_Entry.priority)
        return [(entry.key, entry.data, entry.remaining_tx) for entry in ordered]

    def add_or_replace(self, key: K, data: bytes, max_tx: int) -> None:
        """Drop the items that ``key`` invalidates, then queue ``data``.

        The new item is sent at most ``max_tx`` times.
        """
        if max_tx < 1:
            raise ValueError(f"invalid max_tx {max_tx}: expected at least 1")
        if self._invalidates is None:
            old = self._by_key.pop(key, None)
            if old is not None:
                self._entries.remove(old)
        else:
            invalidates = self._invalidates
            self._entries = [e for e in self._entries if not invalidates(key, e.key)]
        entry = _Entry(key, data, max_tx, self._seq)
        self._seq += 1
        self._entries.append(entry)
        if self._invalidates is None:
            self._by_key[key] = entry

    def fill(
        self, buffer: bytearray, max_size: int, max_items: int = MAX_ITEMS_PER_PACKET
    ) -> int:
        """Append items to ``buffer`` while it stays within ``max_size`` bytes.

        Returns the number of items written. Each written item loses one
        transmission, and an item with none left leaves the backlog.
        """
        return self._fill(buffer, max_size, max_items, prefix=False)

    def fill_with_len_prefix(
        self, buffer: bytearray, max_size: int, max_items: int = MAX_ITEMS_PER_PACKET
    ) -> int:
        """Append items framed as ``u16 BE length + bytes``, like ``fill``."""
        return self._fill(buffer, max_size, max_items, prefix=True)

    def _fill(
        self, buffer: bytearray, max_size: int, max_items: int, *, prefix: bool
    ) -> int:
        if not self._entries:
            return 0
        overhead = LENGTH_PREFIX_SIZE if prefix else 0
        written = 0
        exhausted: list[_Entry[K]] = []
        for entry in sorted(self._entries, key=_Entry.priority):
            room = max_size - len(buffer)
            if room <= 0 or written >= max_items:
                break
            if room < len(entry.data) + overhead:
                continue
            if prefix:
                buffer += len(entry.data).to_bytes(LENGTH_PREFIX_SIZE, "big")
            buffer += entry.data
            written += 1
            entry.remaining_tx -= 1
            if entry.remaining_tx == 0:
                exhausted.append(entry)
        for entry in exhausted:
            self._remove(entry)
        return written

    def _remove(self, entry: _Entry[K]) -> None:
        self._entries.remove(entry)
        if self._invalidates is None:
            del self._by_key[entry.key]

"""Broadcast handlers for tests."""

from __future__ import annotations

from swim_py.broadcast import BroadcastHandler
from swim_py.identity import Identity


class FirstByteHandler(BroadcastHandler[int]):
    """Keys items by their first byte and keeps every item it is given.

    A larger first byte invalidates a smaller one. Keeping every item would
    retransmit for ever in a cluster, which is fine for a single core.
    """

    def receive_item(self, data: bytes, sender: Identity | None) -> int | None:
        return data[0]

    def invalidates(self, new_key: int, old_key: int) -> bool:
        return new_key > old_key


class VersionedHandler(BroadcastHandler[tuple[int, int]]):
    """Items are an 8-byte key and a 2-byte version, both big-endian.

    An item is new when its version is above the highest seen for its key.
    Items of another length are rejected. ``blocked`` members never get
    custom broadcasts.
    """

    def __init__(self, blocked: frozenset[Identity] = frozenset()) -> None:
        self.versions: dict[int, int] = {}
        self.senders: list[Identity | None] = []
        self.blocked = blocked

    @staticmethod
    def item(key: int, version: int) -> bytes:
        return key.to_bytes(8, "big") + version.to_bytes(2, "big")

    def receive_item(
        self, data: bytes, sender: Identity | None
    ) -> tuple[int, int] | None:
        if len(data) != 10:
            raise ValueError(f"invalid item of {len(data)} bytes: expected 10")
        self.senders.append(sender)
        key = int.from_bytes(data[:8], "big")
        version = int.from_bytes(data[8:], "big")
        if self.versions.get(key, -1) >= version:
            return None
        self.versions[key] = version
        return (key, version)

    def invalidates(self, new_key: tuple[int, int], old_key: tuple[int, int]) -> bool:
        return new_key[0] == old_key[0] and new_key[1] > old_key[1]

    def should_add_broadcast_data(self, member: Identity) -> bool:
        return member not in self.blocked


class BytesHandler(BroadcastHandler[bytes]):
    """Keys items by their bytes: every distinct item is new, a repeat is stale."""

    def __init__(self) -> None:
        self.seen: set[bytes] = set()

    def receive_item(self, data: bytes, sender: Identity | None) -> bytes | None:
        if data in self.seen:
            return None
        self.seen.add(data)
        return data

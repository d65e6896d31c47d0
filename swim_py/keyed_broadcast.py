"""A ready-made custom broadcast handler: versioned values under string keys."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError as _ProtobufDecodeError

from swim_py.broadcast import BroadcastHandler
from swim_py.codec._generated import swim_pb2 as pb
from swim_py.identity import Identity

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KeyedItem:
    """One ``swim.v1.KeyedBroadcast`` item."""

    key: str
    version: int
    data: bytes

    def encode(self) -> bytes:
        """Return the item's protobuf bytes, ready for ``Swim.add_broadcast``."""
        message = pb.KeyedBroadcast(key=self.key, version=self.version, data=self.data)
        return message.SerializeToString(deterministic=True)

    @classmethod
    def decode(cls, data: bytes) -> KeyedItem:
        """Parse an item; raise ValueError when the bytes are not a KeyedBroadcast."""
        message = pb.KeyedBroadcast()
        try:
            message.ParseFromString(data)
        except _ProtobufDecodeError as exc:
            raise ValueError(f"invalid KeyedBroadcast item: {exc}") from None
        return cls(message.key, message.version, bytes(message.data))


@dataclass(frozen=True, slots=True)
class KeyedVersion:
    """The broadcast key the core stores: a key and the version it carries."""

    key: str
    version: int


class KeyedBroadcastHandler(BroadcastHandler[KeyedVersion]):
    """Accept an item when its version is newer than any seen for its key.

    This is the handler that ``rust_peer`` implements too, so Python and Rust
    nodes relay each other's items. A newer version replaces the pending
    retransmissions of older ones. ``on_item`` is called with every new item
    and its sender (None for a local ``add_broadcast``).
    """

    def __init__(
        self, on_item: Callable[[KeyedItem, Identity | None], None] | None = None
    ) -> None:
        self._latest: dict[str, int] = {}
        self.on_item = on_item

    def latest_version(self, key: str) -> int | None:
        """Return the newest version seen for ``key``, or None."""
        return self._latest.get(key)

    def receive_item(self, data: bytes, sender: Identity | None) -> KeyedVersion | None:
        item = KeyedItem.decode(data)
        known = self._latest.get(item.key)
        if known is not None and item.version <= known:
            return None
        self._latest[item.key] = item.version
        if self.on_item is not None:
            self.on_item(item, sender)
        return KeyedVersion(item.key, item.version)

    def invalidates(self, new_key: KeyedVersion, old_key: KeyedVersion) -> bool:
        return new_key.key == old_key.key and new_key.version > old_key.version

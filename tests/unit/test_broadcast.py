"""The dissemination backlog and the broadcast handler defaults."""

from __future__ import annotations

import pytest

from swim_py.broadcast import BroadcastHandler, Broadcasts, NoCustomBroadcast
from swim_py.identity import Identity
from tests.helpers.craft import ident


def fill(
    backlog: Broadcasts[str], max_size: int = 1000, max_items: int = 65535
) -> bytes:
    buffer = bytearray()
    backlog.fill(buffer, max_size, max_items)
    return bytes(buffer)


def test_backlog_replaces_item_with_same_key() -> None:
    backlog: Broadcasts[str] = Broadcasts()
    backlog.add_or_replace("AA", b"AAabc", 5)
    backlog.add_or_replace("AA", b"AAcba", 5)
    assert len(backlog) == 1
    assert fill(backlog) == b"AAcba"


def test_backlog_sends_item_at_most_max_tx_times() -> None:
    backlog: Broadcasts[str] = Broadcasts()
    backlog.add_or_replace("AA", b"AAcba", 5)
    for _ in range(5):
        assert fill(backlog) == b"AAcba"
    assert len(backlog) == 0
    assert fill(backlog) == b""


def test_backlog_full_buffer_takes_nothing() -> None:
    backlog: Broadcasts[str] = Broadcasts()
    backlog.add_or_replace("a", b"a super long value", 1)
    buffer = bytearray(b"12345")
    assert backlog.fill(buffer, 5) == 0
    assert buffer == b"12345"
    assert len(backlog) == 1


def test_backlog_sends_largest_first() -> None:
    backlog: Broadcasts[str] = Broadcasts()
    backlog.add_or_replace("00", b"00hi", 10)
    backlog.add_or_replace("01", b"01hello", 10)
    backlog.add_or_replace("02", b"02hey", 10)
    assert fill(backlog) == b"01hello02hey00hi"


def test_backlog_sends_most_remaining_first() -> None:
    backlog: Broadcasts[str] = Broadcasts()
    backlog.add_or_replace("10", b"100", 1)
    backlog.add_or_replace("20", b"200", 2)
    backlog.add_or_replace("30", b"300", 3)
    assert fill(backlog) == b"300200100"
    assert fill(backlog) == b"300200"
    assert fill(backlog) == b"300"
    assert len(backlog) == 0


def test_backlog_respects_max_items() -> None:
    backlog: Broadcasts[str] = Broadcasts()
    backlog.add_or_replace("fo", b"foo", 10)
    backlog.add_or_replace("ba", b"bar", 10)
    backlog.add_or_replace("ba", b"baz", 10)
    assert fill(backlog, max_items=0) == b""
    assert len(fill(backlog, max_items=2)) == 6


def test_backlog_skips_misfit_without_using_it() -> None:
    backlog: Broadcasts[str] = Broadcasts()
    backlog.add_or_replace("big", b"B" * 20, 1)
    backlog.add_or_replace("small", b"s" * 5, 1)
    assert fill(backlog, max_size=10) == b"sssss"
    assert [key for key, _, _ in backlog.items()] == ["big"]
    assert backlog.items()[0][2] == 1


def test_backlog_fill_appends_to_buffer() -> None:
    backlog: Broadcasts[str] = Broadcasts()
    backlog.add_or_replace("x", b"xyz", 2)
    buffer = bytearray(b"HEAD")
    assert backlog.fill(buffer, 7) == 1
    assert buffer == b"HEADxyz"


def test_backlog_len_prefix_framing() -> None:
    backlog: Broadcasts[str] = Broadcasts()
    backlog.add_or_replace("fo", b"foo", 10)
    backlog.add_or_replace("ba", b"barr", 10)
    backlog.add_or_replace("ba", b"bazz", 10)
    buffer = bytearray()
    assert backlog.fill_with_len_prefix(buffer, 1000, 0) == 0
    assert backlog.fill_with_len_prefix(buffer, 1000, 2) == 2
    assert buffer == b"\x00\x04bazz\x00\x03foo"


def test_backlog_len_prefix_counts_prefix_bytes() -> None:
    backlog: Broadcasts[str] = Broadcasts()
    backlog.add_or_replace("a", b"abcd", 1)
    buffer = bytearray()
    assert backlog.fill_with_len_prefix(buffer, 5) == 0
    assert backlog.fill_with_len_prefix(buffer, 6) == 1


def test_backlog_custom_invalidation() -> None:
    def newer(new: tuple[str, int], old: tuple[str, int]) -> bool:
        return new[0] == old[0] and new[1] > old[1]

    backlog: Broadcasts[tuple[str, int]] = Broadcasts(newer)
    backlog.add_or_replace(("k", 1), b"k1", 3)
    backlog.add_or_replace(("j", 1), b"j1", 3)
    backlog.add_or_replace(("k", 2), b"k2", 3)
    assert sorted(key for key, _, _ in backlog.items()) == [("j", 1), ("k", 2)]
    # An item that invalidates nothing is simply added.
    backlog.add_or_replace(("k", 1), b"k1", 3)
    assert len(backlog) == 3


def test_backlog_new_item_gets_full_transmissions() -> None:
    backlog: Broadcasts[str] = Broadcasts()
    backlog.add_or_replace("a", b"a1", 3)
    fill(backlog)
    backlog.add_or_replace("a", b"a2", 3)
    assert backlog.items() == [("a", b"a2", 3)]


def test_backlog_rejects_zero_max_tx() -> None:
    backlog: Broadcasts[str] = Broadcasts()
    with pytest.raises(ValueError, match="max_tx"):
        backlog.add_or_replace("a", b"a", 0)


def test_no_custom_broadcast_rejects_every_item() -> None:
    handler = NoCustomBroadcast()
    with pytest.raises(ValueError, match="disabled"):
        handler.receive_item(b"anything", None)


class _Keep(BroadcastHandler[bytes]):
    def receive_item(self, data: bytes, sender: Identity | None) -> bytes | None:
        return data


def test_broadcast_handler_defaults() -> None:
    handler = _Keep()
    assert handler.should_add_broadcast_data(ident(2))
    assert handler.invalidates(b"a", b"a")
    assert not handler.invalidates(b"a", b"b")

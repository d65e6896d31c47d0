"""Verdicts on hand-made datagrams: which error counters a datagram raised.

A send_datagram step keeps the target's ``stats`` from just before the send
as a baseline. The verdict is the rise of each error counter since then.
Verdicts on the same datagram kind are compared across every node that got
one, so a Python and a Rust node that classify a datagram differently fail
the run with both counters named.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.cluster import Node
from conformance.contract import StatsReply

# Error classes that come from timers or from sending, not from handling a
# received datagram. Background traffic can raise them at any time, so they
# are left out of verdicts.
BACKGROUND_CLASSES = frozenset({"incomplete_probe_cycle", "not_connected"})


@dataclass
class Injection:
    """Datagrams of one kind sent to one node process, and what they raised.

    ``baseline`` is the node's ``stats`` just before the send. ``counted_as``
    and ``sender_addr`` name the ``received`` counter that the datagram
    should raise, when it passes the ``dst`` check. ``verdict`` is the rise
    of each error counter when an expect_errors step settled it, or None
    before that.
    """

    node: Node
    kind: str
    repeat: int
    baseline: StatsReply
    counted_as: str | None = None
    sender_addr: str = ""
    verdict: dict[str, int] | None = None
    errors_seen: dict[str, int] = field(default_factory=dict)
    received_seen: int = 0

    @property
    def label(self) -> str:
        return f"{self.node.name} ({self.node.implementation.name})"

    def observe(self, stats: StatsReply) -> dict[str, int]:
        """Store and return how much each datagram error class rose."""
        self.errors_seen = {}
        for name, count in sorted(stats.errors.items()):
            rise = count - self.baseline.errors.get(name, 0)
            if rise > 0 and name not in BACKGROUND_CLASSES:
                self.errors_seen[name] = rise
        if self.counted_as is not None:
            self.received_seen = self._received(stats) - self._received(self.baseline)
        return self.errors_seen

    def _received(self, stats: StatsReply) -> int:
        assert self.counted_as is not None
        return stats.received.get(self.sender_addr, {}).get(self.counted_as, 0)

    def missing_received(self) -> str | None:
        """Describe a datagram that passed the ``dst`` check but was not counted.

        The stand-in sender's own traffic can only add to the counter, so a
        rise below ``repeat`` means that the node left datagrams out.
        """
        if self.counted_as is None or self.received_seen >= self.repeat:
            return None
        return (
            f"{self.label} counted {self.received_seen} of the {self.repeat} "
            f"{self.kind} datagram(s) in received as {self.counted_as} from "
            f"{self.sender_addr}; they pass the dst check, so the peer contract "
            "counts them before the error"
        )

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "node": self.node.name,
            "impl": self.node.implementation.name,
            "kind": self.kind,
            "repeat": self.repeat,
            "errors": self.verdict if self.verdict is not None else self.errors_seen,
            "settled": self.verdict is not None,
        }
        if self.counted_as is not None:
            result["received"] = {self.counted_as: self.received_seen}
        return result


def format_rise(rises: Mapping[str, int]) -> str:
    """Return ``decode +1, malformed_packet +2``, or ``no error``."""
    if not rises:
        return "no error"
    return ", ".join(f"{name} +{count}" for name, count in sorted(rises.items()))


def disagreement(injection: Injection, others: Sequence[Injection]) -> str | None:
    """Describe how ``injection``'s settled verdict differs from earlier ones.

    Compares the set of error classes that rose, with every settled
    verdict on the same kind on another node. Returns None when all agree.
    """
    assert injection.verdict is not None
    mine = set(injection.verdict)
    for other in others:
        if other is injection or other.kind != injection.kind:
            continue
        if other.verdict is None or other.node is injection.node:
            continue
        if set(other.verdict) != mine:
            return (
                f"nodes disagree on datagram kind {injection.kind}: "
                f"{other.label} counted {format_rise(other.verdict)}, "
                f"{injection.label} counted {format_rise(injection.verdict)}"
            )
    return None

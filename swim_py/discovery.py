"""Discovery plug-ins: where a node finds peers to announce to."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from swim_py.identity import Address


class Discovery(Protocol):
    """A source of peer addresses, asked at start and while disconnected."""

    async def peers(self) -> Sequence[Address]: ...


class StaticDiscovery:
    """A fixed list of peer addresses (``"IP:PORT"`` text or ``Address``)."""

    def __init__(self, peers: Iterable[str | Address]) -> None:
        self._peers = tuple(
            peer if isinstance(peer, Address) else Address.parse(peer) for peer in peers
        )

    async def peers(self) -> Sequence[Address]:
        return self._peers

"""What a scenario run looked like over time: fault windows, samples, traffic.

``FaultWindows`` records when each node was out (killed, stopped, paused or
disconnected) and when each link was cut. From that it finds the
``member_down`` events that no fault explains: the false positives of a run.

``TimelineSampler`` requests every running node's member list at a fixed
interval while the run goes on, and draws the counts of alive, suspect and
down members per node as a PNG (timeline_png.py), with the run's action
steps as markers.

``traffic_summary`` turns the relay's per-node counters (process runtime)
or the nodes' own ``received`` counts (other runtimes) into datagrams and
bytes per node per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conformance.contract import Event, Identity, StatsReply
from conformance.errors import HarnessError
from conformance.faults import OUTSIDER, Link, LinkFault
from conformance.timeline_png import render_timeline

if TYPE_CHECKING:
    from conformance.cluster import Cluster, Node

logger = logging.getLogger(__name__)

Counts = tuple[int, int, int]

# Seconds by which a node's rejoin event may follow, in its timestamps, the
# moment another node already saw the renewed identity.
_ORDER_SLACK = 0.1


class FaultWindows:
    """When each node was out and each link was cut, in wall-clock seconds."""

    def __init__(self) -> None:
        # Per node: [start, end] pairs. The end is None while the node is still out.
        self._out: dict[str, list[list[float | None]]] = {}
        # (time, cut links) for each change of the link faults.
        self._cuts: list[tuple[float, frozenset[Link]]] = []

    def node_out(self, name: str, at: float) -> None:
        windows = self._out.setdefault(name, [])
        if not windows or windows[-1][1] is not None:
            windows.append([at, None])

    def node_back(self, name: str, at: float) -> None:
        windows = self._out.get(name)
        if windows and windows[-1][1] is None:
            windows[-1][1] = at

    def links(self, at: float, faults: Mapping[Link, LinkFault]) -> None:
        self._cuts.append(
            (at, frozenset(link for link, fault in faults.items() if fault.cut))
        )

    def _node_was_out(self, name: str, start: float, end: float) -> bool:
        for began, ended in self._out.get(name, []):
            assert began is not None
            if began <= end and (ended is None or ended >= start):
                return True
        return False

    def _link_was_cut(self, name: str, start: float, end: float) -> bool:
        """Return whether a link from or to node ``name`` was cut between the times."""
        for index, (at, cut) in enumerate(self._cuts):
            until = self._cuts[index + 1][0] if index + 1 < len(self._cuts) else None
            overlaps = at <= end and (until is None or until >= start)
            if overlaps and any(name in link for link in cut):
                return True
        return False

    def false_downs(
        self,
        timeline: Sequence[Event],
        grace: float,
        identities: Sequence[tuple[str, float, Identity]] = (),
        names: Iterable[str] = (),
    ) -> list[str]:
        """Describe each member_down that no fault explains.

        A member_down from observer O about node N is explained when N or O
        was out, or a link between N and any node was cut, at some time in
        the ``grace`` seconds before the event. O counts because a node cut
        off the network or paused stops hearing from every other node.
        A suspicion raised during a fault turns into Down up to
        suspect_to_down_after later, and a node that declared N down across
        a cut spreads that Down to O once the cut heals. It is also
        explained when N had already moved on to a newer identity:
        ``identities`` lists when each node took each identity (its ready
        lines and rejoin events), and the old identity of a renewed node
        is down by definition. ``names`` are the run's node names, whose
        UTF-8 bytes are their identity ids. A member that no node of the run
        owns (a forged sender) is not counted.
        """
        known = {*names, *self._known_names(), *(event.node for event in timeline)}
        names_by_id = {name.encode().hex(): name for name in known}
        found = []
        for event in timeline:
            if event.kind != "member_down":
                continue
            try:
                member = event.identity_field("member")
            except Exception:  # noqa: BLE001 (a malformed event is reported elsewhere)
                continue
            name = names_by_id.get(member.id)
            if name is None:
                continue
            start = event.ts - grace
            if (
                self._node_was_out(name, start, event.ts)
                or self._node_was_out(event.node, start, event.ts)
                or self._link_was_cut(name, start, event.ts)
            ):
                continue
            if any(
                owner == name
                and taken_at <= event.ts + _ORDER_SLACK
                and (newer.renewal, newer.addr) != (member.renewal, member.addr)
                and newer.renewal >= member.renewal
                for owner, taken_at, newer in identities
            ):
                continue
            found.append(
                f"{event.node} declared {name} ({member}) down at {event.ts:.3f}"
            )
        return found

    def _known_names(self) -> set[str]:
        names = set(self._out)
        for _, cut in self._cuts:
            for first, second in cut:
                names.update((first, second))
        return names


class TimelineSampler:
    """Samples every running node's member counts until ``stop``."""

    def __init__(self, cluster: Cluster, *, interval: float, reply_timeout: float):
        self._cluster = cluster
        self._interval = interval
        self._reply_timeout = reply_timeout
        self._task: asyncio.Task[None] | None = None
        # Per node: (wall-clock time, counts or None when it did not reply).
        self.samples: dict[str, list[tuple[float, Counts | None]]] = {}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.gather(
                *(self._sample(name) for name in list(self._cluster.nodes))
            )
            await asyncio.sleep(self._interval)

    async def _sample(self, name: str) -> None:
        node = self._cluster.nodes.get(name)
        counts: Counts | None = None
        if node is not None and node.running() and not node.process.paused:
            try:
                reply = await asyncio.wait_for(
                    self._cluster.members(name), self._reply_timeout
                )
            except (HarnessError, TimeoutError):
                counts = None
            else:
                alive = suspect = down = 0
                for member in reply.members:
                    if member.state == "alive":
                        alive += 1
                    elif member.state == "suspect":
                        suspect += 1
                    else:
                        down += 1
                counts = (alive, suspect, down)
        series = self.samples.setdefault(name, [])
        # One "no data" sample marks a whole stretch without replies.
        if counts is None and series and series[-1][1] is None:
            return
        series.append((time.time(), counts))

    def render(
        self,
        path: Path,
        *,
        title: str,
        started_at: float,
        ended_at: float,
        markers: Sequence[tuple[float, str]],
    ) -> None:
        duration = max(ended_at - started_at, 0.001)
        series: dict[str, list[tuple[float, Counts | None]]] = {}
        for name in sorted(self.samples, key=_node_order):
            points = []
            last = -1.0
            for at, counts in self.samples[name]:
                offset = max(at - started_at, last)
                points.append((offset, counts))
                last = offset
            series[name] = points
        if not series:
            series = {"(no samples)": []}
        render_timeline(
            path,
            title=title,
            duration=duration,
            series=series,
            markers=[(at - started_at, label) for at, label in markers],
        )


def _node_order(name: str) -> tuple[int, str]:
    digits = name.lstrip("n")
    return (int(digits), name) if digits.isdigit() else (1 << 30, name)


def traffic_summary(
    relay: Mapping[str, Mapping[str, int]] | None,
    stats: Sequence[tuple[Node, StatsReply]],
    seconds: float,
    nodes: int,
) -> dict[str, Any]:
    """Datagrams (and bytes, when the relay counted them) per node per second.

    The relay counts what each node sent, faults applied or not. Without a
    relay, the sum of what the nodes decoded and accepted is used instead, so
    lost and rejected datagrams are missing from it.
    """
    seconds = max(seconds, 0.001)
    if relay is not None:
        per_node = {
            name: dict(counters) for name, counters in relay.items() if name != OUTSIDER
        }
        datagrams = sum(counters["datagrams"] for counters in per_node.values())
        sent_bytes = sum(counters["bytes"] for counters in per_node.values())
        return {
            "source": "relay",
            "seconds": round(seconds, 3),
            "datagrams_per_node_per_second": round(datagrams / nodes / seconds, 2),
            "bytes_per_node_per_second": round(sent_bytes / nodes / seconds, 1),
            "dropped": sum(counters["dropped"] for counters in per_node.values()),
            "per_node": per_node,
        }
    received = 0
    for _, reply in stats:
        for per_type in reply.received.values():
            received += sum(per_type.values())
    return {
        "source": "received counts",
        "seconds": round(seconds, 3),
        "datagrams_per_node_per_second": round(received / nodes / seconds, 2),
        "bytes_per_node_per_second": None,
    }

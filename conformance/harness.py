"""Run scenarios against a mix of node implementations.

``run_scenario`` starts a Cluster for one scenario and mix, executes the
steps in order and returns a RunResult. A failed expectation or a
misbehaving node makes the result fail but raises nothing. Every node the
run started is ended, also on cancellation (Ctrl-C). Each expectation
polls the nodes until it is met or its bound, evaluated from the run's
config, runs out. expect_never_down instead waits out its whole window.

A scenario with a step that the runtime cannot run (see
``RuntimeKind.unavailable_steps``) is not started: its result is marked
unavailable, with the reason, and counts neither as passed nor as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.bounds import Bound
from conformance.cluster import Cluster, Node, Timing
from conformance.contract import (
    Identity,
    MembersReply,
    StatsReply,
    broadcast_fields,
)
from conformance.datagrams import (
    DATAGRAM_KINDS,
    DatagramSender,
    build_datagram,
    build_update,
)
from conformance.errors import ExpectationFailed, HarnessError
from conformance.faults import LinkFaults, links_between
from conformance.impls import Implementation, mix_layout
from conformance.runtime import PROCESS_RUNTIME, RuntimeKind
from conformance.scenario import (
    STEP_KINDS,
    BroadcastStep,
    ConnectStep,
    DisconnectStep,
    ExpectBroadcastStep,
    ExpectCrossTrafficStep,
    ExpectDownStep,
    ExpectErrorsStep,
    ExpectNeverDownStep,
    ExpectNoErrorsStep,
    ExpectPartitionedStep,
    ExpectRejoinedStep,
    ExpectStableStep,
    ExpectViewStep,
    HealStep,
    KillStep,
    LinkFaultStep,
    PartitionStep,
    PauseStep,
    RestartAllStep,
    RestartStep,
    ResumeStep,
    Scenario,
    SendDatagramStep,
    SendUpdateStep,
    StartStep,
    Step,
    StopStep,
    WaitConvergedStep,
)
from conformance.timeline import FaultWindows, TimelineSampler, traffic_summary
from conformance.verdicts import Injection, disagreement, format_rise

logger = logging.getLogger(__name__)

# Number of merged-timeline events a failed result keeps for the report.
LAST_EVENTS = 25


@dataclass(frozen=True)
class RunOptions:
    """Settings shared by every run of a suite.

    ``config_overrides`` apply after each scenario's own overrides.
    ``slack_ms`` replaces each scenario's slack allowance when set.
    ``runtime`` decides where the nodes run.
    """

    report_dir: Path
    registry: Mapping[str, Implementation]
    seed: str
    timing: Timing = Timing()
    config_overrides: tuple[tuple[str, Any], ...] = ()
    slack_ms: int | None = None
    runtime: RuntimeKind = PROCESS_RUNTIME


@dataclass(frozen=True)
class Measurement:
    """A measured duration next to the bound it had to stay within, in seconds."""

    seconds: float
    bound_seconds: float


@dataclass(frozen=True)
class PausedNode:
    """A node's identity and incarnation just before a pause step stopped it."""

    identity: Identity
    incarnation: int
    paused_at: float


@dataclass
class RunResult:
    """The outcome of one scenario in one mix.

    ``unavailable`` is the reason the runtime could not run the scenario;
    such a result has ``passed`` False but is not a failure.
    """

    scenario: str
    mix: str
    passed: bool
    error: str | None = None
    unavailable: str | None = None
    duration_seconds: float = 0.0
    measurements: dict[str, Measurement] = field(default_factory=dict)
    wire_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    errors_by_node: dict[str, dict[str, int]] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    last_events: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    datagram_verdicts: list[dict[str, Any]] = field(default_factory=list)
    run_dir: str = ""
    started_at: float = 0.0
    # member_down events for a node that no fault excused (see timeline.py).
    false_downs: list[str] = field(default_factory=list)
    traffic: dict[str, Any] = field(default_factory=dict)
    timeline_png: str | None = None
    # The bound variables of the run (probe_period and the rest), in seconds.
    variables: dict[str, float] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return f"{self.scenario}-{self.mix}"

    @property
    def status(self) -> str:
        """Return ``passed``, ``failed`` or ``unavailable``."""
        if self.unavailable is not None:
            return "unavailable"
        return "passed" if self.passed else "failed"

    def versions(self) -> dict[str, list[str]]:
        """Return the version strings from the ready lines, per implementation."""
        seen: dict[str, set[str]] = {}
        for node in self.nodes:
            seen.setdefault(node["impl"], set()).add(node["version"])
        return {impl: sorted(versions) for impl, versions in sorted(seen.items())}

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "scenario": self.scenario,
            "mix": self.mix,
            "passed": self.passed,
            "status": self.status,
        }
        if self.error is not None:
            result["error"] = self.error
        if self.unavailable is not None:
            result["unavailable"] = self.unavailable
        for name, measurement in sorted(self.measurements.items()):
            result[f"{name}_seconds"] = round(measurement.seconds, 3)
            result[f"{name}_bound_seconds"] = round(measurement.bound_seconds, 3)
        result.update(
            {
                "duration_seconds": round(self.duration_seconds, 3),
                "run_dir": self.run_dir,
                "wire_counts": self.wire_counts,
                "errors_by_node": self.errors_by_node,
                "nodes": self.nodes,
                "notes": self.notes,
            }
        )
        if self.unavailable is None:
            result["false_positives"] = len(self.false_downs)
            if self.false_downs:
                result["false_downs"] = self.false_downs[:20]
            result["traffic"] = self.traffic
            result["timeline_png"] = self.timeline_png
        if self.datagram_verdicts:
            result["datagram_verdicts"] = self.datagram_verdicts
        if not self.passed and self.unavailable is None:
            result["last_events"] = self.last_events
        return result


def _merge_overrides(
    first: Sequence[tuple[str, Any]], second: Sequence[tuple[str, Any]]
) -> tuple[tuple[str, Any], ...]:
    merged = dict(first)
    merged.update(second)
    return tuple(merged.items())


class ScenarioRun:
    """The state of one scenario run while its steps execute."""

    def __init__(self, scenario: Scenario, mix: str, options: RunOptions) -> None:
        self.scenario = scenario
        self.mix = mix
        self.options = options
        self.layout = mix_layout(mix, scenario.nodes, options.registry)

        overrides = _merge_overrides(
            scenario.config.overrides, options.config_overrides
        )
        self.config = scenario.config.build(dict(options.config_overrides))
        slack_ms = (
            options.slack_ms if options.slack_ms is not None else scenario.slack_ms
        )
        self.variables = {
            **self.config.bound_variables(),
            "nodes": float(len(scenario.nodes)),
            "slack": slack_ms / 1000,
        }
        # Poll ten times per probe period, with the interval clamped to
        # 20..200 ms, so polling stays cheap and measurements stay precise.
        self.poll_interval = min(0.2, max(0.02, self.variables["probe_period"] / 10))

        self.run_dir = options.report_dir / "runs" / f"{scenario.name}-{mix}"
        self.cluster = Cluster(
            run_dir=self.run_dir,
            preset=scenario.config.preset,
            overrides=overrides,
            config=self.config,
            timing=options.timing,
            seed=f"{options.seed}/{scenario.name}/{mix}",
            runtime=options.runtime.new_runtime(f"{scenario.name}-{mix}"),
        )
        self.result = RunResult(
            scenario=scenario.name,
            mix=mix,
            passed=False,
            run_dir=str(self.run_dir),
            variables=dict(self.variables),
        )

        # Wall-clock and monotonic time of the last action step; bounds count from it.
        self.reference = time.time()
        self.reference_monotonic = time.monotonic()
        self.down_identity: dict[str, Identity] = {}
        self.down_at: dict[str, float] = {}
        # Wall-clock time just before each restart's spawn: a restarted node may
        # announce, and others may react, before the harness reads its ready line.
        self.restart_began: dict[str, float] = {}
        self.broadcasts: dict[str, tuple[BroadcastStep, float]] = {}
        self.stats_snapshots: list[tuple[Node, StatsReply]] = []
        # Every node's stats at its end, filled in when the run ends.
        self.all_stats: list[tuple[Node, StatsReply]] = []
        self.paused: dict[str, PausedNode] = {}
        # Opened by the first send_datagram step.
        self.datagrams: DatagramSender | None = None
        self.injections: list[Injection] = []
        self.faults = LinkFaults()
        # When each node was killed, paused or cut off, and each link cut.
        self.windows = FaultWindows()
        # Wall-clock time and description of each action step, for the timeline.
        self.markers: list[tuple[float, str]] = []
        self.sampler = TimelineSampler(
            self.cluster,
            interval=min(1.0, max(0.2, self.variables["probe_period"] / 2)),
            reply_timeout=options.timing.reply,
        )

    def _mark(self, at: float | None = None) -> None:
        # `at` is an earlier wall-clock time, such as the moment of a SIGKILL.
        now, now_monotonic = time.time(), time.monotonic()
        self.reference = at if at is not None else now
        self.reference_monotonic = now_monotonic - (now - self.reference)

    def unavailable_reason(self) -> str | None:
        """Return why the runtime cannot run this scenario, or None if it can."""
        runtime = self.options.runtime
        for index, step in enumerate(self.scenario.steps):
            kind = _step_kind(step)
            reason = runtime.unavailable_steps.get(kind)
            if reason is None and isinstance(step, LinkFaultStep):
                reason = runtime.fault_unavailable(step.fault)
            if reason is not None:
                return (
                    f"step {index + 1} ({_describe_step(step)}) is not available "
                    f"in the {runtime.name} runtime: {reason}"
                )
        return None

    async def run(self) -> RunResult:
        self.result.started_at = time.time()
        reason = self.unavailable_reason()
        if reason is not None:
            self.result.unavailable = reason
            return self.result
        started = time.monotonic()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            for index, step in enumerate(self.scenario.steps):
                try:
                    await self._execute(step)
                except HarnessError as error:
                    raise HarnessError(
                        f"step {index + 1} ({_describe_step(step)}): {error}"
                    ) from None
            self.cluster.check_health()
            if self.cluster.problems:
                raise HarnessError("; ".join(self.cluster.problems))
            self.result.passed = True
        except HarnessError as error:
            self.result.error = str(error)
        except Exception as error:
            # A bug in the harness fails this run but keeps the rest of the suite.
            logger.exception("internal error in %s", self.result.run_id)
            self.result.error = (
                f"internal harness error: {type(error).__name__}: {error}\n"
                + traceback.format_exc()
            )
        finally:
            await self.sampler.stop()
            try:
                # A run that failed or was cancelled may leave nodes paused.
                await self.cluster.resume_all()
                await self._collect_final_stats()
            finally:
                if self.datagrams is not None:
                    self.datagrams.close()
                await self.cluster.close()
                self.result.duration_seconds = time.monotonic() - started
                self._finish()
        return self.result

    async def _execute(self, step: Step) -> None:
        handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            StartStep: self._start,
            WaitConvergedStep: self._wait_converged,
            KillStep: self._kill,
            StopStep: self._stop,
            RestartStep: self._restart,
            ExpectDownStep: self._expect_down,
            ExpectRejoinedStep: self._expect_rejoined,
            BroadcastStep: self._broadcast,
            ExpectBroadcastStep: self._expect_broadcast,
            ExpectCrossTrafficStep: self._expect_cross_traffic,
            ExpectNoErrorsStep: self._expect_no_errors,
            PauseStep: self._pause,
            ResumeStep: self._resume,
            DisconnectStep: self._disconnect,
            ConnectStep: self._connect,
            SendDatagramStep: self._send_datagram,
            ExpectErrorsStep: self._expect_errors,
            ExpectNeverDownStep: self._expect_never_down,
            RestartAllStep: self._restart_all,
            SendUpdateStep: self._send_update,
            ExpectViewStep: self._expect_view,
            LinkFaultStep: self._link_fault,
            PartitionStep: self._partition,
            HealStep: self._heal,
            ExpectPartitionedStep: self._expect_partitioned,
            ExpectStableStep: self._expect_stable,
        }
        await handlers[type(step)](step)
        if isinstance(step, _ACTION_STEPS):
            # Every action step moves the reference to the moment it acted.
            self.markers.append((self.reference, _describe_step(step)))
        if isinstance(step, StartStep):
            self.sampler.start()

    async def _poll(
        self, bound: Bound, check: Callable[[], Awaitable[str | None]]
    ) -> float:
        """Call ``check`` until it returns None, and return the wall-clock time it did.

        ``check`` returns a description of what is still missing. When the
        bound, counted from the last action step, runs out first, raise
        ExpectationFailed with that description.
        """
        limit = bound.seconds(self.variables)
        deadline = self.reference_monotonic + limit
        while True:
            self.cluster.check_health()
            missing = await check()
            if missing is None:
                return time.time()
            if time.monotonic() >= deadline:
                raise ExpectationFailed(
                    f"not satisfied within {limit:.2f} s (bound {bound}): {missing}"
                )
            await asyncio.sleep(self.poll_interval)

    async def _observe(
        self,
        bound: Bound,
        check: Callable[[], str | None] | None = None,
        since: float | None = None,
    ) -> None:
        """Wait until the bound, counted from the last action step, has passed.

        This is a deliberate observation window, not a deadline. ``check``
        returns a description of a violation, which ends the wait at once
        with ExpectationFailed. ``since``, a monotonic time, replaces the
        last action step as the start of the window.
        """
        limit = bound.seconds(self.variables)
        start = self.reference_monotonic if since is None else since
        deadline = start + limit
        while True:
            self.cluster.check_health()
            violation = check() if check else None
            if violation is not None:
                raise ExpectationFailed(
                    f"within the {limit:.2f} s window (bound {bound}): {violation}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(self.poll_interval, remaining))

    def _record(self, measure: str | None, seconds: float, bound: Bound) -> None:
        if measure is not None:
            self.result.measurements[measure] = Measurement(
                seconds=max(0.0, seconds), bound_seconds=bound.seconds(self.variables)
            )

    async def _members_of_running(self) -> dict[str, MembersReply]:
        # A paused node cannot reply, and only expect_down may run meanwhile.
        nodes = [node for node in self.cluster.running() if not node.process.paused]
        replies = await asyncio.gather(
            *(self.cluster.members(node.name) for node in nodes)
        )
        return {node.name: reply for node, reply in zip(nodes, replies, strict=True)}

    def _latest_event_ts(
        self, observer: str, kind: str, name: str, identity: Identity, since: float
    ) -> float | None:
        times = [
            event.ts
            for event in self.cluster.events_of(observer, since)
            if event.kind == kind and event.identity_field(name) == identity
        ]
        return max(times) if times else None

    # Action steps.

    async def _start(self, step: StartStep) -> None:
        if step.seed == "previous":
            running = self.cluster.running()
            # Seeds are advertised addresses: through the relay in the process runtime.
            previous = running[0].identity.addr if running else None
            for name in step.nodes:
                seeds = [previous] if previous else []
                node = await self.cluster.start_node(
                    name, self.layout[name], seeds=seeds
                )
                previous = node.identity.addr
        else:
            seeds = (
                []
                if step.seed == "none"
                else [self.cluster.node(step.seed).identity.addr]
            )
            outcomes = await asyncio.gather(
                *(
                    self.cluster.start_node(name, self.layout[name], seeds=seeds)
                    for name in step.nodes
                ),
                return_exceptions=True,
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        self._mark()

    async def _snapshot_stats(self, name: str) -> None:
        # The stats of a node die with its process, so keep them for the wire counts.
        node = self.cluster.node(name)
        try:
            self.stats_snapshots.append((node, await self.cluster.stats(name)))
            await self.cluster.members(name)
        except HarnessError as error:
            self.result.notes.append(
                f"stats of {name} before it went down are lost: {error}"
            )

    async def _kill(self, step: KillStep) -> None:
        await self._snapshot_stats(step.node)
        self.down_identity[step.node] = self.cluster.node(step.node).identity
        self.down_at[step.node] = await self.cluster.kill(step.node)
        self.windows.node_out(step.node, self.down_at[step.node])
        self._mark(self.down_at[step.node])

    async def _stop(self, step: StopStep) -> None:
        await self._snapshot_stats(step.node)
        self.down_identity[step.node] = self.cluster.node(step.node).identity
        self.windows.node_out(step.node, time.time())
        self.down_at[step.node] = await self.cluster.stop(step.node)
        self._mark(self.down_at[step.node])

    async def _restart(self, step: RestartStep) -> None:
        if step.seed is not None:
            seed = self.cluster.node(step.seed).identity.addr
        else:
            seed = next(
                node.identity.addr
                for node in self.cluster.running()
                if node.name != step.node
            )
        self.restart_began[step.node] = time.time()
        await self.cluster.restart(
            step.node, renewed=step.identity == "renewed", seeds=[seed]
        )
        self.windows.node_back(step.node, time.time())
        self._mark()

    async def _restart_all(self, step: RestartAllStep) -> None:
        names = list(self.scenario.nodes)
        addresses = {name: self.cluster.node(name).identity.addr for name in names}
        began = time.time()
        for name in names:
            self.restart_began[name] = began
        outcomes = await asyncio.gather(
            *(
                self.cluster.restart(
                    name,
                    renewed=step.identity == "renewed",
                    seeds=[addresses[other] for other in names if other != name],
                )
                for name in names
            ),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        now = time.time()
        for name in names:
            self.windows.node_back(name, now)
        # Bounds count from the spawn of the first node: the nodes announce
        # to each other while the others are still starting.
        self._mark(began)

    async def _broadcast(self, step: BroadcastStep) -> None:
        sent_at = time.time()
        reply = await self.cluster.request(
            step.node,
            "broadcast",
            key=step.key,
            version=step.version,
            data=step.data,
            send=step.send,
        )
        if reply.get("added") is not True:
            raise ExpectationFailed(
                f"{step.node} replied added={reply.get('added')!r} to a broadcast "
                f"with the new key {step.key!r}, expected true"
            )
        self.broadcasts[step.key] = (step, sent_at)
        self._mark()

    async def _pause(self, step: PauseStep) -> None:
        reply = await self.cluster.members(step.node)
        paused_at = await self.cluster.pause(step.node)
        self.paused[step.node] = PausedNode(
            reply.identity, reply.incarnation, paused_at
        )
        self.windows.node_out(step.node, paused_at)
        # expect_down and expect_rejoined treat a pause like a kill and the
        # resume like a restart.
        self.down_identity[step.node] = reply.identity
        self.down_at[step.node] = paused_at
        self._mark(paused_at)

    async def _resume(self, step: ResumeStep) -> None:
        if step.after is not None:
            await self._observe(step.after)
        resumed_at = await self.cluster.resume(step.node)
        self.windows.node_back(step.node, resumed_at)
        self.restart_began[step.node] = resumed_at
        self._mark(resumed_at)

    async def _disconnect(self, step: DisconnectStep) -> None:
        # expect_down and expect_rejoined treat the cut like a kill and the
        # reconnection like a restart.
        self.down_identity[step.node] = (await self.cluster.members(step.node)).identity
        self.down_at[step.node] = await self.cluster.disconnect(step.node)
        self.windows.node_out(step.node, self.down_at[step.node])
        self._mark(self.down_at[step.node])

    async def _connect(self, step: ConnectStep) -> None:
        if step.after is not None:
            await self._observe(step.after)
        connected_at = await self.cluster.connect(step.node)
        self.restart_began[step.node] = connected_at
        self.windows.node_back(step.node, connected_at)
        self._mark(connected_at)

    async def _apply_faults(self) -> float:
        """Hand the fault state to the runtime; return the time it took effect."""
        await self.cluster.runtime.set_links(self.faults.snapshot())
        applied_at = time.time()
        self.windows.links(applied_at, self.faults.snapshot())
        self.result.notes.append(
            "link faults at +{:.1f} s: {}".format(
                applied_at - self.result.started_at,
                "; ".join(self.faults.describe()) or "none",
            )
        )
        return applied_at

    async def _link_fault(self, step: LinkFaultStep) -> None:
        self.faults.set(
            links_between(step.sources, step.destinations, step.both_ways),
            step.fault,
        )
        self._mark(await self._apply_faults())

    async def _partition(self, step: PartitionStep) -> None:
        inside = set(step.nodes)
        outside = [name for name in self.scenario.nodes if name not in inside]
        if step.direction in ("both", "outbound"):
            self.faults.cut(links_between(step.nodes, outside, both_ways=False))
        if step.direction in ("both", "inbound"):
            self.faults.cut(links_between(outside, step.nodes, both_ways=False))
        # expect_down and expect_rejoined treat the partition like a kill of
        # each node inside and the heal like a restart.
        before = time.time()
        for name in step.nodes:
            node = self.cluster.nodes.get(name)
            if node is not None and node.running():
                self.down_identity[name] = node.identity
                self.down_at[name] = before
        self._mark(await self._apply_faults())

    async def _heal(self, step: HealStep) -> None:
        cut = {name for link in self.faults.links for name in link}
        self.faults.heal()
        healed_at = await self._apply_faults()
        for name in cut:
            self.restart_began[name] = healed_at
        self._mark(healed_at)

    def _cut_between(self, first: str, second: str) -> bool:
        return self.faults.is_cut(first, second) or self.faults.is_cut(second, first)

    def _stand_in_sender(self, target: Node) -> Node:
        # A node of the target's implementation, so that a datagram the
        # target accepts counts as traffic within one implementation and
        # stays out of the cross-implementation wire counts.
        for node in self.cluster.running():
            if (
                node is not target
                and node.implementation == target.implementation
                and not node.process.paused
            ):
                return node
        raise HarnessError(
            f"no other running {target.implementation.name} node to name as the "
            f"sender of datagrams to {target.name}; the scenario needs at least "
            "two nodes of each implementation in the mix"
        )

    async def _send_datagram(self, step: SendDatagramStep) -> None:
        target = self.cluster.node(step.node)
        kind = DATAGRAM_KINDS[step.kind]
        target_identity = (await self.cluster.members(step.node)).identity
        if kind.uses_sender:
            sender = self._stand_in_sender(target)
            sender_identity = (await self.cluster.members(sender.name)).identity
        else:
            sender_identity = target_identity
        data = build_datagram(
            step.kind, target_identity, sender_identity, self.config.max_packet_size
        )
        baseline = await self.cluster.stats(step.node)
        if self.datagrams is None:
            self.datagrams = self.cluster.runtime.datagram_sender()
        for _ in range(step.repeat):
            self.datagrams.send(data, target.bind)
        self.injections.append(
            Injection(
                target,
                step.kind,
                step.repeat,
                baseline,
                counted_as=kind.counted_as,
                sender_addr=sender_identity.addr,
            )
        )
        logger.info(
            "sent %d %s datagram(s) of %d bytes from %s to %s",
            step.repeat,
            step.kind,
            len(data),
            self.datagrams.address,
            step.node,
        )
        self._mark()

    async def _send_update(self, step: SendUpdateStep) -> None:
        target = self.cluster.node(step.node)
        target_identity = (await self.cluster.members(step.node)).identity
        sender = self._stand_in_sender(target)
        sender_identity = (await self.cluster.members(sender.name)).identity
        about = (await self.cluster.members(step.about)).identity

        data = build_update(
            target_identity,
            sender_identity,
            about,
            step.state,
            step.incarnation,
            unknown_fields=step.unknown_fields,
        )
        if self.datagrams is None:
            self.datagrams = self.cluster.runtime.datagram_sender()

        sent_at = time.time()
        # expect_rejoined checks a node that had to give up its identity.
        self.down_identity[step.about] = about
        self.restart_began[step.about] = sent_at
        for _ in range(step.repeat):
            self.datagrams.send(data, target.bind)
        logger.info(
            "sent %s %d Gossip(s) that mark %s %s at incarnation %d%s",
            step.node,
            step.repeat,
            about,
            step.state,
            step.incarnation,
            " with unknown fields" if step.unknown_fields else "",
        )
        self._mark(sent_at)

    # Expectations.

    async def _expect_view(self, step: ExpectViewStep) -> None:
        async def check() -> str | None:
            replies = await self._members_of_running()
            own = replies.get(step.member)
            if own is None:
                return f"{step.member} is not running"
            problems = []
            if own.incarnation != step.incarnation:
                problems.append(
                    f"{step.member} reports incarnation {own.incarnation}, "
                    f"expected {step.incarnation}"
                )
            for observer, reply in replies.items():
                if observer == step.member:
                    continue
                entry = next(
                    (e for e in reply.members if e.member == own.identity), None
                )
                if entry is None:
                    problems.append(f"{observer} does not list {own.identity}")
                elif (entry.state, entry.incarnation) != (
                    step.state,
                    step.incarnation,
                ):
                    problems.append(
                        f"{observer} lists {own.identity} as {entry.state} at "
                        f"incarnation {entry.incarnation}"
                    )
            return _summarize(problems)

        if step.within is not None:
            seen_at = await self._poll(step.within, check)
            self._record(step.measure, seen_at - self.reference, step.within)
            return
        assert step.during is not None
        deadline = time.monotonic() + step.during.seconds(self.variables)
        while True:
            problem = await check()
            if problem is not None:
                raise ExpectationFailed(
                    f"within the {step.during.seconds(self.variables):.2f} s "
                    f"window (bound {step.during}): {problem}"
                )
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(self.poll_interval)

    async def _wait_converged(self, step: WaitConvergedStep) -> None:
        async def check() -> str | None:
            replies = await self._members_of_running()
            identities = {name: reply.identity for name, reply in replies.items()}
            missing = []
            for observer, reply in replies.items():
                for name, identity in identities.items():
                    if name == observer:
                        continue
                    state = reply.state_of(identity)
                    if state != "alive":
                        missing.append(
                            f"{observer} lists {name} ({identity}) "
                            f"as {state or 'absent'}"
                        )
            return _summarize(missing)

        seen_at = await self._poll(step.within, check)
        self._record(
            step.measure, self._converged_at(seen_at) - self.reference, step.within
        )

    def _converged_at(self, seen_at: float) -> float:
        # The precise time is the latest member_up that completed a view. A node
        # that listed a member without emitting the event leaves the poll time.
        latest = 0.0
        running = self.cluster.running()
        for observer in running:
            for target in running:
                if observer is target:
                    continue
                ts = self._latest_event_ts(
                    observer.name, "member_up", "member", target.identity, 0.0
                )
                if ts is None:
                    return seen_at
                latest = max(latest, ts)
        return min(latest, seen_at) if latest else seen_at

    async def _expect_down(self, step: ExpectDownStep) -> None:
        target = self.down_identity[step.node]
        killed_at = self.down_at[step.node]

        def observes(observer: str) -> bool:
            # A disconnected or partitioned node is still running, but it is
            # the target. In a partition only the other side declares it down.
            if observer == step.node:
                return False
            if not any(fault.cut for fault in self.faults.links.values()):
                return True
            return self._cut_between(observer, step.node)

        async def check() -> str | None:
            replies = await self._members_of_running()
            missing = []
            for observer, reply in replies.items():
                if not observes(observer):
                    continue
                if (
                    self._latest_event_ts(
                        observer, "member_down", "member", target, killed_at
                    )
                    is None
                ):
                    missing.append(f"{observer} emitted no member_down for {target}")
                state = reply.state_of(target)
                if state != "down":
                    missing.append(f"{observer} lists {target} as {state or 'absent'}")
            return _summarize(missing)

        await self._poll(step.within, check)
        times = [
            self._latest_event_ts(node.name, "member_down", "member", target, killed_at)
            or killed_at
            for node in self.cluster.running()
            if observes(node.name)
        ]
        self._record_spread(step.measure, times, killed_at, step.within)

    def _record_spread(
        self, measure: str | None, times: Sequence[float], since: float, bound: Bound
    ) -> None:
        """Record the latest of ``times`` as ``measure``, the earliest as ``_first``."""
        if measure is None or not times:
            return
        self._record(measure, max(times) - since, bound)
        self._record(f"{measure}_first", min(times) - since, bound)

    async def _expect_partitioned(self, step: ExpectPartitionedStep) -> None:
        since = self.reference

        async def check() -> str | None:
            replies = await self._members_of_running()
            identities = {name: reply.identity for name, reply in replies.items()}
            missing = []
            for observer, reply in replies.items():
                for name, identity in identities.items():
                    if name == observer or not self._cut_between(observer, name):
                        continue
                    if (
                        self._latest_event_ts(
                            observer, "member_down", "member", identity, since
                        )
                        is None
                    ):
                        missing.append(
                            f"{observer} emitted no member_down for {name} ({identity})"
                        )
                    state = reply.state_of(identity)
                    if state != "down":
                        missing.append(
                            f"{observer} lists {name} ({identity}) "
                            f"as {state or 'absent'}"
                        )
            return _summarize(missing)

        await self._poll(step.within, check)
        times = []
        running = self.cluster.running()
        for observer in running:
            for target in running:
                if observer is not target and self._cut_between(
                    observer.name, target.name
                ):
                    ts = self._latest_event_ts(
                        observer.name, "member_down", "member", target.identity, since
                    )
                    if ts is not None:
                        times.append(ts)
        self._record_spread(step.measure, times, since, step.within)

    async def _expect_stable(self, step: ExpectStableStep) -> None:
        began, began_monotonic = time.time(), time.monotonic()
        baseline = await self._current_stats()
        limit = step.during.seconds(self.variables)

        def changes() -> str | None:
            found = [
                f"{node.name} emitted {event.kind} at +{event.ts - began:.2f} s"
                for node in self.cluster.running()
                for event in node.events
                if event.ts >= began
                and event.kind in ("member_down", "member_up", "rename")
            ]
            return _summarize(found)

        await self._observe(step.during, changes, since=began_monotonic)
        rises = _received_rises(baseline, await self._current_stats(), step.types)
        replies = await self._members_of_running()
        problem = (
            _summarize(rises)
            or self._not_listed_alive(
                {name: reply.identity for name, reply in replies.items()}, replies
            )
            or _summarize(_duplicates(replies))
        )
        if problem is not None:
            raise ExpectationFailed(
                f"at the end of the {limit:.2f} s window (bound {step.during}): "
                f"{problem}"
            )

    async def _expect_rejoined(self, step: ExpectRejoinedStep) -> None:
        previous = self.down_identity[step.node]
        expected = Identity(
            previous.id, previous.addr, previous.renewal + step.renewal_delta
        )
        ready_at = self.reference
        restarted_at = self.restart_began[step.node]
        node = self.cluster.node(step.node)
        renames: set[str] = set()

        async def check() -> str | None:
            replies = await self._members_of_running()
            missing = []
            own = replies[step.node].identity
            if own != expected:
                missing.append(f"{step.node} has identity {own}, expected {expected}")
            if step.rejoin_event and not any(
                event.kind == "rejoin" and event.identity_field("identity") == expected
                for event in node.events
            ):
                missing.append(
                    f"{step.node} emitted no rejoin event with identity {expected}"
                )
            for observer, reply in replies.items():
                if observer == step.node:
                    continue
                # An observer that still listed the old identity as active
                # replaces it in place: foca emits Rename and no MemberUp.
                if self._latest_event_ts(
                    observer, "member_up", "member", expected, restarted_at
                ) is None and not self._renamed(
                    observer, previous, expected, restarted_at
                ):
                    missing.append(
                        f"{observer} emitted neither member_up for {expected} "
                        f"nor rename from {previous}"
                    )
                state = reply.state_of(expected)
                if state != "alive":
                    missing.append(
                        f"{observer} lists {expected} as {state or 'absent'}"
                    )
                for entry in reply.members:
                    if (
                        entry.member.addr == expected.addr
                        and entry.member != expected
                        and entry.state == "alive"
                    ):
                        missing.append(
                            f"{observer} still lists the old identity "
                            f"{entry.member} as alive"
                        )
                if self._renamed(observer, previous, expected, restarted_at):
                    renames.add(observer)
                elif step.rename == "required":
                    missing.append(
                        f"{observer} emitted no rename from {previous} to {expected}"
                    )
            return _summarize(missing)

        await self._poll(step.within, check)
        observers = [n.name for n in self.cluster.running() if n.name != step.node]
        self.result.notes.append(
            f"{step.node} rejoined as {expected}; rename events from {len(renames)} of "
            f"{len(observers)} other nodes"
        )
        latest = max(
            self._latest_event_ts(name, "member_up", "member", expected, restarted_at)
            or self._latest_event_ts(name, "rename", "new", expected, restarted_at)
            or ready_at
            for name in observers
        )
        self._record(step.measure, latest - ready_at, step.within)

    def _renamed(
        self, observer: str, old: Identity, new: Identity, since: float
    ) -> bool:
        return any(
            event.kind == "rename"
            and event.identity_field("old") == old
            and event.identity_field("new") == new
            for event in self.cluster.events_of(observer, since)
        )

    async def _expect_broadcast(self, step: ExpectBroadcastStep) -> None:
        sent, sent_at = self.broadcasts[step.key]
        wanted = (sent.key, sent.version, sent.data)
        arrival: dict[str, float] = {}

        def check_events() -> str | None:
            missing = []
            for node in self.cluster.running():
                if node.name == sent.node:
                    continue
                times = [
                    event.ts
                    for event in self.cluster.events_of(node.name, sent_at)
                    if event.kind == "broadcast" and broadcast_fields(event) == wanted
                ]
                if times:
                    arrival[node.name] = min(times)
                else:
                    missing.append(node.name)
            if not missing:
                return None
            return (
                f"no broadcast event for key {sent.key!r} version {sent.version} "
                f"data {sent.data or '(empty)'} from {sent.node} "
                f"at {', '.join(missing)}"
            )

        async def check() -> str | None:
            return check_events()

        await self._poll(step.within, check)
        self._record(
            step.measure, max(arrival.values(), default=sent_at) - sent_at, step.within
        )

    async def _expect_cross_traffic(self, step: ExpectCrossTrafficStep) -> None:
        labels = sorted(
            {implementation.label for implementation in self.layout.values()}
        )
        pairs = [f"{a}->{b}" for a, b in itertools.permutations(labels, 2)]
        if not pairs:
            return

        async def check() -> str | None:
            counts = _wire_counts(
                await self._current_stats(), self.cluster.impl_by_addr
            )
            missing = [
                f"{pair} {message}"
                for pair in pairs
                for message in step.types
                if counts.get(pair, {}).get(message, 0) == 0
            ]
            if not missing:
                return None
            return "no datagram decoded for " + ", ".join(missing)

        await self._poll(step.within, check)

    async def _current_stats(self) -> list[tuple[Node, StatsReply]]:
        nodes = self.cluster.running()
        replies = await asyncio.gather(
            *(self.cluster.stats(node.name) for node in nodes)
        )
        return [*self.stats_snapshots, *zip(nodes, replies, strict=True)]

    async def _expect_no_errors(self, step: ExpectNoErrorsStep) -> None:
        self.cluster.check_health()
        found = []
        for node in self.cluster.running():
            stats = await self.cluster.stats(node.name)
            for error_class in step.classes:
                count = stats.errors.get(error_class, 0)
                if count:
                    found.append(f"{node.name} counted {count} {error_class}")
        if found:
            raise ExpectationFailed("nodes counted errors: " + ", ".join(found))

    def _latest_injection(self, node: Node) -> Injection | None:
        for injection in reversed(self.injections):
            if injection.node is node:
                return injection
        return None

    async def _expect_errors(self, step: ExpectErrorsStep) -> None:
        injection = self._latest_injection(self.cluster.node(step.node))
        if injection is None:
            raise HarnessError(f"no send_datagram step sent to {step.node} yet")

        async def check() -> str | None:
            rises = injection.observe(await self.cluster.stats(step.node))
            if rises.get(step.error_class, 0) < step.at_least:
                return f"{injection.label} counted {format_rise(rises)}"
            return injection.missing_received()

        try:
            await self._poll(step.within, check)
        except ExpectationFailed as error:
            raise ExpectationFailed(
                f"datagram kind {injection.kind}: expected {step.error_class} "
                f"+{step.at_least} or more; {error}"
                + await self._other_verdicts(injection)
            ) from None
        injection.verdict = dict(injection.errors_seen)
        problem = disagreement(injection, self.injections)
        if problem is not None:
            raise ExpectationFailed(problem)

    async def _other_verdicts(self, injection: Injection) -> str:
        # The same kind on other nodes, settled or not, for the failure message.
        parts = []
        for other in self.injections:
            if other.kind != injection.kind or other.node is injection.node:
                continue
            if other.verdict is not None:
                parts.append(f"{other.label} counted {format_rise(other.verdict)}")
                continue
            # An unsettled injection's baseline is only valid while it is the
            # node's latest one.
            if other.node.running() and other is self._latest_injection(other.node):
                with contextlib.suppress(HarnessError):
                    other.observe(await self.cluster.stats(other.node.name))
                    parts.append(
                        f"{other.label} counted {format_rise(other.errors_seen)} so far"
                    )
        return "; for the same kind " + "; ".join(parts) if parts else ""

    async def _expect_never_down(self, step: ExpectNeverDownStep) -> None:
        names = (
            [node.name for node in self.cluster.running()]
            if step.node == "all"
            else [step.node]
        )
        watched: dict[str, Identity] = {}
        for name in names:
            paused = self.paused.get(name)
            node = self.cluster.node(name)
            # The identity the node had before a pause, unless it restarted since.
            if paused is not None and paused.paused_at >= node.ready.ts:
                watched[name] = paused.identity
            else:
                watched[name] = node.identity

        def declared_down() -> str | None:
            found = []
            for name, identity in watched.items():
                since = self.cluster.node(name).ready.ts
                for observer in self.cluster.running():
                    found += [
                        f"{observer.name} emitted member_down for {name} "
                        f"({identity}) at {event.ts:.3f}"
                        for event in observer.events
                        if event.kind == "member_down"
                        and event.ts >= since
                        and event.identity_field("member") == identity
                    ]
                current = self.cluster.node(name).identity
                if current != identity:
                    found.append(
                        f"{name} changed its identity from {identity} to {current}, "
                        "so it learned that it was declared down"
                    )
            return _summarize(found)

        await self._observe(step.during, declared_down)
        replies = await self._members_of_running()
        problem = declared_down()
        if problem is None and step.alive_at_end:
            problem = self._not_listed_alive(watched, replies)
        if problem is None and step.refuted:
            problem = self._check_refuted(step.node, replies[step.node])
        if problem is not None:
            raise ExpectationFailed(
                f"at the end of the {step.during.seconds(self.variables):.2f} s "
                f"window (bound {step.during}): {problem}"
            )

    @staticmethod
    def _not_listed_alive(
        watched: Mapping[str, Identity], replies: Mapping[str, MembersReply]
    ) -> str | None:
        missing = []
        for name, identity in watched.items():
            for observer, reply in replies.items():
                if observer == name:
                    continue
                state = reply.state_of(identity)
                if state != "alive":
                    missing.append(
                        f"{observer} lists {name} ({identity}) as {state or 'absent'}"
                    )
        return _summarize(missing)

    def _check_refuted(self, name: str, reply: MembersReply) -> str | None:
        before = self.paused[name].incarnation
        if reply.incarnation > before:
            self.result.notes.append(
                f"{name} refuted suspicion: incarnation {before} before the pause, "
                f"{reply.incarnation} after"
            )
            return None
        return (
            f"{name} is still at incarnation {reply.incarnation}, as before the "
            "pause, so it never learned that a node suspected it; a longer pause "
            "makes suspicion more likely"
        )

    # Results.

    async def _collect_final_stats(self) -> None:
        final: list[tuple[Node, StatsReply]] = []
        for node in self.cluster.running():
            try:
                final.append((node, await self.cluster.stats(node.name)))
            except HarnessError as error:
                self.result.notes.append(
                    f"final stats of {node.name} are missing: {error}"
                )
        self.result.datagram_verdicts = [
            injection.to_json() for injection in self.injections
        ]
        everything = [*self.stats_snapshots, *final]
        self.all_stats = everything
        self.result.wire_counts = _wire_counts(everything, self.cluster.impl_by_addr)
        for node, stats in everything:
            key = f"{node.name}.{node.generation}"
            self.result.errors_by_node[key] = {
                k: v for k, v in sorted(stats.errors.items()) if v
            }

    def _finish(self) -> None:
        self.result.nodes = [node.describe() for node in self.cluster.history]
        timeline = self.cluster.merged_timeline()
        ended_at = time.time()
        grace = (
            self.variables["suspect_to_down_after"]
            + 2 * self.variables["probe_period"]
            + self.variables["probe_rtt"]
            + self.variables["slack"]
        )
        identities = [
            (node.name, node.ready.ts, node.ready.identity)
            for node in self.cluster.history
        ]
        for event in timeline:
            if event.kind == "rejoin":
                with contextlib.suppress(Exception):
                    identities.append(
                        (event.node, event.ts, event.identity_field("identity"))
                    )
        self.result.false_downs = self.windows.false_downs(
            timeline, grace, identities, self.scenario.nodes
        )
        self.result.traffic = traffic_summary(
            self.cluster.runtime.traffic(),
            self.all_stats,
            ended_at - self.result.started_at,
            len(self.scenario.nodes),
        )
        png = self.run_dir / "timeline.png"
        try:
            self.sampler.render(
                png,
                title=f"{self.scenario.name} ({self.mix} mix)",
                started_at=self.result.started_at,
                ended_at=ended_at,
                markers=self.markers,
            )
            self.result.timeline_png = str(png)
        except (OSError, ValueError) as error:
            self.result.notes.append(f"could not draw the timeline: {error}")
        self.result.last_events = [event.to_json() for event in timeline[-LAST_EVENTS:]]
        try:
            with (self.run_dir / "timeline.jsonl").open("w", encoding="utf-8") as out:
                for event in timeline:
                    out.write(json.dumps(event.to_json()) + "\n")
        except OSError as error:
            self.result.notes.append(f"could not write the timeline: {error}")


def _summarize(missing: list[str], limit: int = 8) -> str | None:
    if not missing:
        return None
    shown = "; ".join(missing[:limit])
    return shown + (
        f"; and {len(missing) - limit} more" if len(missing) > limit else ""
    )


def _wire_counts(
    stats: Sequence[tuple[Node, StatsReply]], impl_by_addr: Mapping[str, Implementation]
) -> dict[str, dict[str, int]]:
    """Sum received datagrams by ``SENDER->RECEIVER`` label pair and message type.

    Only pairs of different implementations are kept. A sender address that
    no node of the run used counts under the label ``unknown``.
    """
    counts: dict[str, dict[str, int]] = {}
    for node, reply in stats:
        receiver = node.implementation.label
        for sender_addr, per_type in reply.received.items():
            sender_impl = impl_by_addr.get(sender_addr)
            sender = sender_impl.label if sender_impl else "unknown"
            if sender == receiver:
                continue
            pair = counts.setdefault(f"{sender}->{receiver}", {})
            for message, count in per_type.items():
                pair[message] = pair.get(message, 0) + count
    return {
        pair: dict(sorted(per_type.items()))
        for pair, per_type in sorted(counts.items())
    }


def _duplicates(replies: Mapping[str, MembersReply]) -> list[str]:
    """Describe each node that lists two identities of one node as alive."""
    found = []
    for observer, reply in replies.items():
        alive: dict[str, list[str]] = {}
        for entry in reply.members:
            if entry.state != "down":
                alive.setdefault(entry.member.id, []).append(str(entry.member))
        found += [
            f"{observer} lists {' and '.join(names)} as not down"
            for names in alive.values()
            if len(names) > 1
        ]
    return found


def _received_rises(
    before: Sequence[tuple[Node, StatsReply]],
    after: Sequence[tuple[Node, StatsReply]],
    types: Sequence[str],
) -> list[str]:
    """Describe each node whose received count of one of ``types`` went up."""
    totals_before = {
        (node.name, node.generation): _received_totals(reply) for node, reply in before
    }
    rises = []
    for node, reply in after:
        old = totals_before.get((node.name, node.generation), {})
        new = _received_totals(reply)
        for message in types:
            rise = new.get(message, 0) - old.get(message, 0)
            if rise > 0:
                rises.append(f"{node.name} received {rise} more {message}")
    return rises


def _received_totals(reply: StatsReply) -> dict[str, int]:
    totals: dict[str, int] = {}
    for per_type in reply.received.values():
        for message, count in per_type.items():
            totals[message] = totals.get(message, 0) + count
    return totals


# Steps that act on the cluster; each becomes a marker on the timeline.
_ACTION_STEPS = (
    StartStep,
    KillStep,
    StopStep,
    RestartStep,
    RestartAllStep,
    BroadcastStep,
    PauseStep,
    ResumeStep,
    DisconnectStep,
    ConnectStep,
    SendDatagramStep,
    SendUpdateStep,
    LinkFaultStep,
    PartitionStep,
    HealStep,
)


def _step_kind(step: Step) -> str:
    return next(name for name, cls in STEP_KINDS.items() if isinstance(step, cls))


def _describe_step(step: Step) -> str:
    kind = _step_kind(step)
    node = getattr(step, "node", None)
    return f"{kind} {node}" if node else kind


async def run_scenario(scenario: Scenario, mix: str, options: RunOptions) -> RunResult:
    """Run one scenario in one mix; a failure is reported in the result, not raised.

    Raises ScenarioError only when the mix names an unknown implementation.
    """
    run = ScenarioRun(scenario, mix, options)
    return await run.run()


async def run_suite(
    scenarios: Sequence[Scenario],
    mixes: Sequence[str],
    options: RunOptions,
    unavailable: Mapping[str, str] | None = None,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Run every scenario in every mix, one at a time.

    ``unavailable`` maps an implementation name to the reason it cannot run,
    for example a failed cargo build. Runs that need it fail with that
    reason without starting any process.
    """
    results = []
    for scenario in scenarios:
        for mix in mixes:
            layout = mix_layout(mix, scenario.nodes, options.registry)
            blocked = sorted(
                {impl.name for impl in layout.values()} & set(unavailable or {})
            )
            if blocked and unavailable:
                result = RunResult(
                    scenario=scenario.name,
                    mix=mix,
                    passed=False,
                    error="; ".join(
                        f"{name} is unavailable: {unavailable[name]}"
                        for name in blocked
                    ),
                )
            else:
                result = await run_scenario(scenario, mix, options)
            results.append(result)
            if on_result:
                on_result(result)
    return results


def check_mixes(
    mixes: Sequence[str],
    scenarios: Sequence[Scenario],
    registry: Mapping[str, Implementation],
) -> None:
    """Raise ScenarioError if a mix names an implementation the registry lacks."""
    for mix in mixes:
        for scenario in scenarios:
            mix_layout(mix, scenario.nodes, registry)

"""Scenario files: YAML loaded into frozen dataclasses.

A scenario names its node count, its config (a preset plus ``set``
overrides), a slack allowance, named bounds and an ordered list of steps.
The loader rejects unknown keys, unknown node names, bounds with unknown
variables and step orders that cannot run (for example killing a node that
is not running), all before any process starts.

Each step is a one-key mapping, ``- KIND: {ARG: VALUE, ...}``. The kinds and
their arguments are in ``STEP_KINDS`` below; scenarios/README.md describes them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from conformance.bounds import Bound
from conformance.config import (
    SwimConfig,
    apply_overrides,
    parse_field_value,
    preset_config,
)
from conformance.contract import ERROR_CLASSES, MESSAGE_TYPES
from conformance.datagrams import DATAGRAM_KINDS, MAX_INCARNATION
from conformance.errors import ScenarioError
from conformance.faults import LinkFault

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_HEX = re.compile(r"^([0-9a-fA-F]{2})*$")


@dataclass(frozen=True)
class ConfigSpec:
    """A preset name and the overrides applied after it, already validated."""

    preset: str
    overrides: tuple[tuple[str, Any], ...] = ()

    def build(self, extra: Mapping[str, Any] | None = None) -> SwimConfig:
        """Return the config in force: preset, scenario overrides, then ``extra``."""
        config = apply_overrides(preset_config(self.preset), dict(self.overrides))
        return apply_overrides(config, dict(extra or {}))


@dataclass(frozen=True)
class StartStep:
    """Start nodes. ``seed`` is ``previous``, ``none`` or a node name."""

    nodes: tuple[str, ...]
    seed: str = "previous"


@dataclass(frozen=True)
class WaitConvergedStep:
    """Wait until every running node lists every other running node as alive."""

    within: Bound
    measure: str | None = None


@dataclass(frozen=True)
class KillStep:
    """End a node's process with SIGKILL."""

    node: str


@dataclass(frozen=True)
class StopStep:
    """Send ``stop`` to a node and wait for it to exit."""

    node: str


@dataclass(frozen=True)
class RestartStep:
    """Start a stopped node again on its old UDP address.

    ``identity`` is ``renewed`` (renewal + 1) or ``same`` (the identity the
    node had when it stopped). ``seed`` defaults to the first running node.
    """

    node: str
    identity: str
    seed: str | None = None


@dataclass(frozen=True)
class ExpectDownStep:
    """Every other running node emits member_down for the node and lists it
    as down. The node was killed, stopped or disconnected."""

    node: str
    within: Bound
    measure: str | None = None


@dataclass(frozen=True)
class ExpectRejoinedStep:
    """A restarted or reconnected node is back, by default under a renewed
    identity.

    The node's identity must have ``renewal`` equal to its renewal before it
    went down plus ``renewal_delta``. With ``rejoin_event`` the node must emit
    ``rejoin`` with that identity. Every other running node must emit
    member_up for it and list it as alive and its old identity as not alive.
    With ``rename: required`` they must also emit ``rename`` from the old
    identity to the new one.
    """

    node: str
    within: Bound
    renewal_delta: int = 1
    rejoin_event: bool = False
    rename: str = "optional"
    measure: str | None = None


@dataclass(frozen=True)
class BroadcastStep:
    """Send the ``broadcast`` command to a node."""

    node: str
    key: str
    version: int
    data: str
    send: bool


@dataclass(frozen=True)
class ExpectBroadcastStep:
    """Every running node except the origin emits the broadcast event for ``key``."""

    key: str
    within: Bound
    measure: str | None = None


@dataclass(frozen=True)
class ExpectCrossTrafficStep:
    """For each ordered pair of different implementations in the mix, receivers
    of one decoded at least one datagram of each type from senders of the other.
    A mix with one implementation has no pairs, so the step passes at once.
    """

    types: tuple[str, ...]
    within: Bound


@dataclass(frozen=True)
class ExpectNoErrorsStep:
    """No running node counts an error of these classes in its ``stats``."""

    classes: tuple[str, ...]


@dataclass(frozen=True)
class PauseStep:
    """Freeze a node: SIGSTOP to its process group, or in the docker runtime
    the cgroup freezer of its container.

    The node's UDP socket keeps queueing datagrams, which the node handles
    once it is resumed.
    """

    node: str


@dataclass(frozen=True)
class ResumeStep:
    """Continue a paused node, ``after`` past the last action step."""

    node: str
    after: Bound | None = None


@dataclass(frozen=True)
class DisconnectStep:
    """Cut a node off the network that the nodes share.

    The node keeps running and keeps its control connection, but sends and
    receives no datagram until a connect step. Only runtimes that give each
    node its own network link can run it (the docker runtime).
    """

    node: str


@dataclass(frozen=True)
class ConnectStep:
    """Attach a disconnected node to the nodes' network again, at its old
    address, ``after`` past the last action step."""

    node: str
    after: Bound | None = None


@dataclass(frozen=True)
class SendDatagramStep:
    """Send ``repeat`` copies of a hand-made datagram (see datagrams.py) to a node."""

    node: str
    kind: str
    repeat: int = 1


@dataclass(frozen=True)
class ExpectErrorsStep:
    """A node's count of ``error_class`` rose by ``at_least`` since its latest
    send_datagram step.
    """

    node: str
    error_class: str
    at_least: int
    within: Bound


@dataclass(frozen=True)
class ExpectNeverDownStep:
    """No running node declares the node (or, for ``all``, any running node)
    down, until ``during`` past the last action step. Then, unless
    ``alive_at_end`` is False, every running node lists it as alive. With
    ``refuted``, the node's incarnation must also have risen since it was
    paused. Under ongoing packet loss a member may be suspect at any
    moment, so loss scenarios turn ``alive_at_end`` off.
    """

    node: str
    during: Bound
    refuted: bool = False
    alive_at_end: bool = True


@dataclass(frozen=True)
class RestartAllStep:
    """Start every node again at once, each on its old address.

    Every node must have been killed or stopped. Each announces to the old
    addresses of all the others, as a cluster with a static member list
    does after a power cut.
    """

    identity: str


@dataclass(frozen=True)
class SendUpdateStep:
    """Send ``node`` a valid Gossip with one update about node ``about``.

    The update names ``about``'s current identity with ``state`` and
    ``incarnation``. The header's ``src`` is another running node of the
    target's implementation, as for send_datagram. With ``unknown_fields``
    the Header and the Member each carry fields that the schema does not
    define, which a receiver must skip. ``repeat`` sends the same bytes
    that many times, as a replay would.
    """

    node: str
    about: str
    state: str
    incarnation: int
    unknown_fields: bool = False
    repeat: int = 1


@dataclass(frozen=True)
class ExpectViewStep:
    """Every other running node lists ``member``'s current identity in
    ``state`` at ``incarnation``, and ``member`` reports that incarnation
    itself. With ``within`` the step waits until that holds; with
    ``during`` it must hold for the whole window."""

    member: str
    state: str
    incarnation: int
    within: Bound | None = None
    during: Bound | None = None
    measure: str | None = None


@dataclass(frozen=True)
class LinkFaultStep:
    """Set the fault of every link from ``sources`` to ``destinations``.

    With ``both_ways`` the links back get the same fault. A fault with
    every value 0 clears those links.
    """

    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    both_ways: bool
    fault: LinkFault


@dataclass(frozen=True)
class PartitionStep:
    """Cut the links between ``nodes`` and every other node.

    ``direction`` is ``both``, ``outbound`` (only the datagrams that
    ``nodes`` send to the others) or ``inbound`` (only those they receive).
    """

    nodes: tuple[str, ...]
    direction: str = "both"


@dataclass(frozen=True)
class HealStep:
    """Clear every link fault and cut."""


@dataclass(frozen=True)
class ExpectPartitionedStep:
    """Across every cut link, each side lists the other side's running nodes
    as down, and emitted member_down for them."""

    within: Bound
    measure: str | None = None


@dataclass(frozen=True)
class ExpectStableStep:
    """For the whole window no running node emits member_down, member_up or
    rename, and no node receives a datagram of ``types``. Then every
    running node must list every other as alive."""

    during: Bound
    types: tuple[str, ...] = ()


Step = (
    StartStep
    | WaitConvergedStep
    | KillStep
    | StopStep
    | RestartStep
    | ExpectDownStep
    | ExpectRejoinedStep
    | BroadcastStep
    | ExpectBroadcastStep
    | ExpectCrossTrafficStep
    | ExpectNoErrorsStep
    | PauseStep
    | ResumeStep
    | DisconnectStep
    | ConnectStep
    | SendDatagramStep
    | ExpectErrorsStep
    | ExpectNeverDownStep
    | RestartAllStep
    | SendUpdateStep
    | ExpectViewStep
    | LinkFaultStep
    | PartitionStep
    | HealStep
    | ExpectPartitionedStep
    | ExpectStableStep
)

STEP_KINDS: dict[str, type[Step]] = {
    "start": StartStep,
    "wait_converged": WaitConvergedStep,
    "kill": KillStep,
    "stop": StopStep,
    "restart": RestartStep,
    "expect_down": ExpectDownStep,
    "expect_rejoined": ExpectRejoinedStep,
    "broadcast": BroadcastStep,
    "expect_broadcast": ExpectBroadcastStep,
    "expect_cross_traffic": ExpectCrossTrafficStep,
    "expect_no_errors": ExpectNoErrorsStep,
    "pause": PauseStep,
    "resume": ResumeStep,
    "disconnect": DisconnectStep,
    "connect": ConnectStep,
    "send_datagram": SendDatagramStep,
    "expect_errors": ExpectErrorsStep,
    "expect_never_down": ExpectNeverDownStep,
    "restart_all": RestartAllStep,
    "send_update": SendUpdateStep,
    "expect_view": ExpectViewStep,
    "link_fault": LinkFaultStep,
    "partition": PartitionStep,
    "heal": HealStep,
    "expect_partitioned": ExpectPartitionedStep,
    "expect_stable": ExpectStableStep,
}

# The only steps that may run while a node is paused. Any other step would
# send commands to every running node and wait for a paused one to reply.
_STEPS_WHILE_PAUSED = ("pause", "resume", "link_fault", "partition", "heal")


@dataclass(frozen=True)
class Scenario:
    """A loaded, validated scenario."""

    name: str
    description: str
    nodes: tuple[str, ...]
    config: ConfigSpec
    slack_ms: int
    bounds: tuple[tuple[str, Bound], ...]
    steps: tuple[Step, ...]
    source: str = field(default="", compare=False)


def node_names(count: int) -> tuple[str, ...]:
    """Return the names of a scenario's nodes: n0, n1, ..."""
    return tuple(f"n{index}" for index in range(count))


class _Context:
    """Loader state while it checks the steps in order (running nodes, keys)."""

    def __init__(self, where: str, nodes: tuple[str, ...], bounds: dict[str, Bound]):
        self.where = where
        self.nodes = nodes
        self.bounds = bounds
        self.running: set[str] = set()
        self.started: set[str] = set()
        self.restarted: set[str] = set()
        self.broadcast_keys: set[str] = set()
        self.paused: set[str] = set()
        # Nodes paused since they last started.
        self.was_paused: set[str] = set()
        # Nodes that got a send_datagram since they last started.
        self.injected: set[str] = set()
        # Nodes cut off by a disconnect step and not connected again.
        self.disconnected: set[str] = set()
        # Whether a partition step has cut links since the last heal, and
        # the nodes that partition steps put inside.
        self.partitioned = False
        self.cut_nodes: set[str] = set()

    def error(self, message: str) -> ScenarioError:
        return ScenarioError(f"{self.where}: {message}")

    def node(self, value: Any, what: str = "node") -> str:
        if value not in self.nodes:
            raise self.error(
                f"unknown {what} {value!r}; "
                f"this scenario has nodes {', '.join(self.nodes)}"
            )
        return str(value)

    def running_node(self, value: Any, what: str) -> str:
        node = self.node(value)
        if node not in self.running:
            raise self.error(f"{what}: {node} is not running")
        return node

    def bound(self, value: Any, key: str = "within") -> Bound:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(
                f"{key!r} must be a bound name or an expression, got {value!r}"
            )
        text = str(value)
        if text in self.bounds:
            return self.bounds[text]
        try:
            return Bound.parse(text)
        except ScenarioError as error:
            raise self.error(str(error)) from None


def _mapping(value: Any, what: str, ctx_error: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ctx_error(f"{what} must be a mapping, got {value!r}")
    return value


def _check_keys(
    obj: Mapping[str, Any],
    allowed: set[str],
    required: set[str],
    what: str,
    ctx: _Context,
) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ctx.error(
            f"unknown key(s) {', '.join(map(repr, unknown))} in {what}; "
            f"valid keys: {', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(obj))
    if missing:
        raise ctx.error(f"missing key(s) {', '.join(map(repr, missing))} in {what}")


def _measure(value: Any, ctx: _Context) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _NAME.match(value):
        raise ctx.error(f"'measure' must be a lowercase identifier, got {value!r}")
    return value


def _bool(value: Any, what: str, ctx: _Context) -> bool:
    if not isinstance(value, bool):
        raise ctx.error(f"{what} must be true or false, got {value!r}")
    return value


def _parse_step(raw: Any, index: int, ctx: _Context) -> Step:
    what = f"step {index + 1}"
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ctx.error(
            f"{what} must be a mapping with exactly one key (the step kind)"
        )
    kind, args = next(iter(raw.items()))
    if kind not in STEP_KINDS:
        raise ctx.error(
            f"{what}: unknown step kind {kind!r}; valid kinds: {', '.join(STEP_KINDS)}"
        )
    args = _mapping(args if args is not None else {}, f"{what} ({kind})", ctx.error)
    what = f"{what} ({kind})"
    if (
        ctx.paused
        and kind not in _STEPS_WHILE_PAUSED
        and not (kind == "expect_down" and args.get("node") in ctx.paused)
    ):
        raise ctx.error(
            f"{what}: cannot run while {', '.join(sorted(ctx.paused))} is paused, "
            f"because only {' and '.join(_STEPS_WHILE_PAUSED)} steps can; "
            "add a resume step before it"
        )
    parse = _STEP_PARSERS[kind]
    return parse(args, what, ctx)


def _parse_start(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"nodes", "seed"}, set(), what, ctx)
    raw_nodes = args.get("nodes", "all")
    if raw_nodes == "all":
        nodes = ctx.nodes
    elif isinstance(raw_nodes, list) and raw_nodes:
        nodes = tuple(ctx.node(name) for name in raw_nodes)
    else:
        raise ctx.error(
            f"{what}: 'nodes' must be 'all' or a non-empty list of node names"
        )
    seed = args.get("seed", "previous")
    if seed not in ("previous", "none"):
        seed = ctx.node(seed, "seed")
        if seed not in ctx.running:
            raise ctx.error(f"{what}: seed {seed} is not running")
    for name in nodes:
        if name in ctx.started:
            raise ctx.error(f"{what}: {name} was started before; use restart")
    ctx.running.update(nodes)
    ctx.started.update(nodes)
    return StartStep(nodes=nodes, seed=str(seed))


def _parse_wait_converged(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"within", "measure"}, {"within"}, what, ctx)
    if not ctx.running:
        raise ctx.error(f"{what}: no node is running")
    return WaitConvergedStep(
        within=ctx.bound(args["within"]), measure=_measure(args.get("measure"), ctx)
    )


_StepParser = Callable[[dict[str, Any], str, "_Context"], Step]


def _parse_kill_or_stop(kind: type[KillStep] | type[StopStep]) -> _StepParser:
    def parse(args: dict[str, Any], what: str, ctx: _Context) -> Step:
        _check_keys(args, {"node"}, {"node"}, what, ctx)
        node = ctx.node(args["node"])
        if node not in ctx.running:
            raise ctx.error(f"{what}: {node} is not running")
        ctx.running.discard(node)
        ctx.injected.discard(node)
        ctx.was_paused.discard(node)
        ctx.disconnected.discard(node)
        return kind(node=node)

    return parse


def _parse_restart(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"node", "identity", "seed"}, {"node", "identity"}, what, ctx)
    node = ctx.node(args["node"])
    if node not in ctx.started or node in ctx.running:
        raise ctx.error(
            f"{what}: {node} must have been started and then killed or stopped"
        )
    identity = args["identity"]
    if identity not in ("same", "renewed"):
        raise ctx.error(
            f"{what}: 'identity' must be 'same' or 'renewed', got {identity!r}"
        )
    seed = args.get("seed")
    if seed is not None:
        seed = ctx.node(seed, "seed")
        if seed not in ctx.running:
            raise ctx.error(f"{what}: seed {seed} is not running")
    elif not ctx.running:
        raise ctx.error(f"{what}: no running node to seed from")
    ctx.running.add(node)
    ctx.restarted.add(node)
    return RestartStep(node=node, identity=identity, seed=seed)


def _parse_expect_down(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"node", "within", "measure"}, {"node", "within"}, what, ctx)
    node = ctx.node(args["node"])
    if (
        node not in ctx.disconnected
        and node not in ctx.paused
        and not ctx.partitioned
        and (node in ctx.running or node not in ctx.started)
    ):
        raise ctx.error(
            f"{what}: {node} must have been killed, stopped, disconnected, "
            "partitioned or paused"
        )
    return ExpectDownStep(
        node=node,
        within=ctx.bound(args["within"]),
        measure=_measure(args.get("measure"), ctx),
    )


def _parse_expect_rejoined(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    allowed = {"node", "within", "renewal_delta", "rejoin_event", "rename", "measure"}
    _check_keys(args, allowed, {"node", "within"}, what, ctx)
    node = ctx.node(args["node"])
    if node not in ctx.restarted or node not in ctx.running:
        raise ctx.error(f"{what}: {node} must have been restarted or connected")
    delta = args.get("renewal_delta", 1)
    if isinstance(delta, bool) or not isinstance(delta, int) or delta < 0:
        raise ctx.error(f"{what}: 'renewal_delta' must be a non-negative integer")
    rename = args.get("rename", "optional")
    if rename not in ("optional", "required"):
        raise ctx.error(f"{what}: 'rename' must be 'optional' or 'required'")
    return ExpectRejoinedStep(
        node=node,
        within=ctx.bound(args["within"]),
        renewal_delta=delta,
        rejoin_event=_bool(
            args.get("rejoin_event", False), f"{what}: 'rejoin_event'", ctx
        ),
        rename=rename,
        measure=_measure(args.get("measure"), ctx),
    )


def _parse_broadcast(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    keys = {"node", "key", "version", "data", "send"}
    _check_keys(args, keys, keys, what, ctx)
    node = ctx.node(args["node"])
    if node not in ctx.running:
        raise ctx.error(f"{what}: {node} is not running")
    key, version, data = args["key"], args["version"], args["data"]
    if not isinstance(key, str) or not key:
        raise ctx.error(f"{what}: 'key' must be a non-empty string")
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not 0 <= version < 2**64
    ):
        raise ctx.error(f"{what}: 'version' must be an integer in 0..2^64-1")
    if not isinstance(data, str) or not _HEX.match(data):
        raise ctx.error(f"{what}: 'data' must be a string of hex digit pairs")
    ctx.broadcast_keys.add(key)
    return BroadcastStep(
        node=node,
        key=key,
        version=version,
        data=data.lower(),
        send=_bool(args["send"], f"{what}: 'send'", ctx),
    )


def _parse_expect_broadcast(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"key", "within", "measure"}, {"key", "within"}, what, ctx)
    key = args["key"]
    if key not in ctx.broadcast_keys:
        raise ctx.error(f"{what}: no earlier broadcast step uses key {key!r}")
    return ExpectBroadcastStep(
        key=key,
        within=ctx.bound(args["within"]),
        measure=_measure(args.get("measure"), ctx),
    )


def _names_list(
    value: Any, valid: tuple[str, ...], what: str, ctx: _Context
) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ctx.error(f"{what} must be a non-empty list")
    for name in value:
        if name not in valid:
            raise ctx.error(
                f"{what}: unknown name {name!r}; valid names: {', '.join(valid)}"
            )
    return tuple(value)


def _parse_expect_cross_traffic(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"types", "within"}, {"types", "within"}, what, ctx)
    return ExpectCrossTrafficStep(
        types=_names_list(args["types"], MESSAGE_TYPES, f"{what}: 'types'", ctx),
        within=ctx.bound(args["within"]),
    )


def _parse_expect_no_errors(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"classes"}, {"classes"}, what, ctx)
    return ExpectNoErrorsStep(
        classes=_names_list(args["classes"], ERROR_CLASSES, f"{what}: 'classes'", ctx)
    )


def _parse_pause(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"node"}, {"node"}, what, ctx)
    node = ctx.running_node(args["node"], what)
    if node in ctx.paused:
        raise ctx.error(f"{what}: {node} is already paused")
    ctx.paused.add(node)
    ctx.was_paused.add(node)
    return PauseStep(node=node)


def _parse_resume(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"node", "after"}, {"node"}, what, ctx)
    node = ctx.node(args["node"])
    if node not in ctx.paused:
        raise ctx.error(f"{what}: {node} is not paused")
    ctx.paused.discard(node)
    # expect_rejoined checks a node back from a long pause like a restarted one.
    ctx.restarted.add(node)
    after = args.get("after")
    return ResumeStep(
        node=node, after=ctx.bound(after, "after") if after is not None else None
    )


def _parse_disconnect(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"node"}, {"node"}, what, ctx)
    node = ctx.running_node(args["node"], what)
    if node in ctx.disconnected:
        raise ctx.error(f"{what}: {node} is already disconnected")
    ctx.disconnected.add(node)
    return DisconnectStep(node=node)


def _parse_connect(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"node", "after"}, {"node"}, what, ctx)
    node = ctx.node(args["node"])
    if node not in ctx.disconnected:
        raise ctx.error(f"{what}: {node} is not disconnected")
    ctx.disconnected.discard(node)
    # expect_rejoined checks a connected node like a restarted one.
    ctx.restarted.add(node)
    after = args.get("after")
    return ConnectStep(
        node=node, after=ctx.bound(after, "after") if after is not None else None
    )


def _positive_int(value: Any, what: str, ctx: _Context, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value:
        raise ctx.error(f"{what} must be a positive integer, got {value!r}")
    if value > maximum:
        raise ctx.error(f"{what} must be at most {maximum}, got {value}")
    return value


def _parse_send_datagram(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"node", "kind", "repeat"}, {"node", "kind"}, what, ctx)
    node = ctx.running_node(args["node"], what)
    kind = args["kind"]
    if kind not in DATAGRAM_KINDS:
        raise ctx.error(
            f"{what}: unknown datagram kind {kind!r}; valid kinds: "
            f"{', '.join(DATAGRAM_KINDS)}"
        )
    if DATAGRAM_KINDS[kind].uses_sender and len(ctx.running) < 2:
        raise ctx.error(
            f"{what}: kind {kind} names another running node as the sender, "
            "and no other node is running"
        )
    repeat = _positive_int(args.get("repeat", 1), f"{what}: 'repeat'", ctx, 100)
    ctx.injected.add(node)
    return SendDatagramStep(node=node, kind=kind, repeat=repeat)


def _parse_expect_errors(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    keys = {"node", "class", "at_least", "within"}
    _check_keys(args, keys, keys, what, ctx)
    node = ctx.running_node(args["node"], what)
    if node not in ctx.injected:
        raise ctx.error(
            f"{what}: no earlier send_datagram step sends to {node} since it started"
        )
    error_class = args["class"]
    if error_class not in ERROR_CLASSES:
        raise ctx.error(
            f"{what}: unknown error class {error_class!r}; valid classes: "
            f"{', '.join(ERROR_CLASSES)}"
        )
    return ExpectErrorsStep(
        node=node,
        error_class=error_class,
        at_least=_positive_int(args["at_least"], f"{what}: 'at_least'", ctx, 10_000),
        within=ctx.bound(args["within"]),
    )


def _parse_expect_never_down(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(
        args,
        {"node", "during", "refuted", "alive_at_end"},
        {"node", "during"},
        what,
        ctx,
    )
    node = args["node"]
    if node != "all":
        node = ctx.running_node(node, what)
    refuted = _bool(args.get("refuted", False), f"{what}: 'refuted'", ctx)
    if refuted and node == "all":
        raise ctx.error(f"{what}: 'refuted' needs a single node, not 'all'")
    if refuted and node not in ctx.was_paused:
        raise ctx.error(
            f"{what}: 'refuted' needs an earlier pause step for {node} since it started"
        )
    return ExpectNeverDownStep(
        node=node,
        during=ctx.bound(args["during"], "during"),
        refuted=refuted,
        alive_at_end=_bool(
            args.get("alive_at_end", True), f"{what}: 'alive_at_end'", ctx
        ),
    )


def _parse_restart_all(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"identity"}, {"identity"}, what, ctx)
    identity = args["identity"]
    if identity not in ("same", "renewed"):
        raise ctx.error(f"{what}: 'identity' must be 'same' or 'renewed'")
    if ctx.running:
        raise ctx.error(
            f"{what}: {', '.join(sorted(ctx.running))} still running; "
            "kill or stop every node first"
        )
    missing = [name for name in ctx.nodes if name not in ctx.started]
    if missing:
        raise ctx.error(f"{what}: {', '.join(missing)} never started")
    ctx.running.update(ctx.nodes)
    ctx.restarted.update(ctx.nodes)
    return RestartAllStep(identity=identity)


_MEMBER_STATES = ("alive", "suspect", "down")


def _incarnation(value: Any, what: str, ctx: _Context) -> int:
    if value == "max":
        return MAX_INCARNATION
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= MAX_INCARNATION
    ):
        raise ctx.error(
            f"{what} must be an integer in 0..{MAX_INCARNATION} or 'max', got {value!r}"
        )
    return value


def _member_state(value: Any, what: str, ctx: _Context) -> str:
    if value not in _MEMBER_STATES:
        raise ctx.error(
            f"{what} must be one of {', '.join(_MEMBER_STATES)}, got {value!r}"
        )
    return str(value)


def _parse_send_update(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    required = {"node", "about", "state", "incarnation"}
    _check_keys(args, required | {"unknown_fields", "repeat"}, required, what, ctx)
    node = ctx.running_node(args["node"], what)
    about = ctx.running_node(args["about"], what)
    if len(ctx.running) < 2:
        raise ctx.error(f"{what}: the stand-in sender needs another running node")
    # An update that the node cannot refute makes it rejoin, which
    # expect_rejoined then checks like a restart.
    ctx.restarted.add(about)
    return SendUpdateStep(
        node=node,
        about=about,
        state=_member_state(args["state"], f"{what}: 'state'", ctx),
        incarnation=_incarnation(args["incarnation"], f"{what}: 'incarnation'", ctx),
        unknown_fields=_bool(
            args.get("unknown_fields", False), f"{what}: 'unknown_fields'", ctx
        ),
        repeat=_positive_int(args.get("repeat", 1), f"{what}: 'repeat'", ctx, 100),
    )


def _parse_expect_view(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    allowed = {"member", "state", "incarnation", "within", "during", "measure"}
    _check_keys(args, allowed, {"member", "state", "incarnation"}, what, ctx)
    if ("within" in args) == ("during" in args):
        raise ctx.error(f"{what}: give exactly one of 'within' and 'during'")
    return ExpectViewStep(
        member=ctx.running_node(args["member"], what),
        state=_member_state(args["state"], f"{what}: 'state'", ctx),
        incarnation=_incarnation(args["incarnation"], f"{what}: 'incarnation'", ctx),
        within=ctx.bound(args["within"]) if "within" in args else None,
        during=ctx.bound(args["during"], "during") if "during" in args else None,
        measure=_measure(args.get("measure"), ctx),
    )


def _node_set(value: Any, what: str, ctx: _Context) -> tuple[str, ...]:
    if value == "all":
        return ctx.nodes
    if not isinstance(value, list) or not value:
        raise ctx.error(f"{what} must be 'all' or a non-empty list of nodes")
    return tuple(ctx.node(name) for name in value)


_FAULT_KEYS = ("loss", "delay_ms", "jitter_ms", "duplicate", "reorder")


def _parse_link_fault(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    allowed = {"from", "to", "both_ways", *_FAULT_KEYS}
    _check_keys(args, allowed, {"from", "to"}, what, ctx)
    values = {}
    for key in _FAULT_KEYS:
        value = args.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ctx.error(f"{what}: {key!r} must be a number, got {value!r}")
        values[key] = float(value)
    try:
        fault = LinkFault(**values)
    except ValueError as error:
        raise ctx.error(f"{what}: {error}") from None
    return LinkFaultStep(
        sources=_node_set(args["from"], f"{what}: 'from'", ctx),
        destinations=_node_set(args["to"], f"{what}: 'to'", ctx),
        both_ways=_bool(args.get("both_ways", False), f"{what}: 'both_ways'", ctx),
        fault=fault,
    )


def _parse_partition(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"nodes", "direction"}, {"nodes"}, what, ctx)
    nodes = _node_set(args["nodes"], f"{what}: 'nodes'", ctx)
    if len(nodes) >= len(ctx.nodes):
        raise ctx.error(
            f"{what}: 'nodes' must leave at least one node on the other side"
        )
    direction = args.get("direction", "both")
    if direction not in ("both", "outbound", "inbound"):
        raise ctx.error(
            f"{what}: 'direction' must be both, outbound or inbound, got {direction!r}"
        )
    ctx.partitioned = True
    ctx.cut_nodes.update(nodes)
    return PartitionStep(nodes=nodes, direction=direction)


def _parse_heal(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, set(), set(), what, ctx)
    ctx.partitioned = False
    # expect_rejoined checks a node back from a partition like a restarted one.
    ctx.restarted.update(ctx.cut_nodes & ctx.running)
    ctx.cut_nodes.clear()
    return HealStep()


def _parse_expect_partitioned(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"within", "measure"}, {"within"}, what, ctx)
    if not ctx.partitioned:
        raise ctx.error(f"{what}: no partition step since the last heal")
    return ExpectPartitionedStep(
        within=ctx.bound(args["within"]), measure=_measure(args.get("measure"), ctx)
    )


def _parse_expect_stable(args: dict[str, Any], what: str, ctx: _Context) -> Step:
    _check_keys(args, {"during", "types"}, {"during"}, what, ctx)
    types = args.get("types")
    return ExpectStableStep(
        during=ctx.bound(args["during"], "during"),
        types=()
        if types is None
        else _names_list(types, MESSAGE_TYPES, f"{what}: 'types'", ctx),
    )


_STEP_PARSERS: dict[str, _StepParser] = {
    "start": _parse_start,
    "wait_converged": _parse_wait_converged,
    "kill": _parse_kill_or_stop(KillStep),
    "stop": _parse_kill_or_stop(StopStep),
    "restart": _parse_restart,
    "expect_down": _parse_expect_down,
    "expect_rejoined": _parse_expect_rejoined,
    "broadcast": _parse_broadcast,
    "expect_broadcast": _parse_expect_broadcast,
    "expect_cross_traffic": _parse_expect_cross_traffic,
    "expect_no_errors": _parse_expect_no_errors,
    "pause": _parse_pause,
    "resume": _parse_resume,
    "disconnect": _parse_disconnect,
    "connect": _parse_connect,
    "send_datagram": _parse_send_datagram,
    "expect_errors": _parse_expect_errors,
    "expect_never_down": _parse_expect_never_down,
    "restart_all": _parse_restart_all,
    "send_update": _parse_send_update,
    "expect_view": _parse_expect_view,
    "link_fault": _parse_link_fault,
    "partition": _parse_partition,
    "heal": _parse_heal,
    "expect_partitioned": _parse_expect_partitioned,
    "expect_stable": _parse_expect_stable,
}

_TOP_KEYS = {"name", "description", "nodes", "config", "slack_ms", "bounds", "steps"}


def parse_scenario(data: Any, where: str) -> Scenario:
    """Validate parsed YAML and build a Scenario.

    ``where`` names the source (a file path) in error messages.
    """
    ctx = _Context(where, (), {})
    obj = _mapping(data, "a scenario file", ctx.error)
    _check_keys(
        obj, _TOP_KEYS, {"name", "nodes", "config", "steps"}, "the scenario", ctx
    )

    name = obj["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise ctx.error(f"'name' must be a lowercase identifier, got {name!r}")
    description = obj.get("description", "")
    if not isinstance(description, str):
        raise ctx.error("'description' must be a string")
    count = obj["nodes"]
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 64:
        raise ctx.error(f"'nodes' must be an integer in 1..64, got {count!r}")
    slack_ms = obj.get("slack_ms", 2000)
    if isinstance(slack_ms, bool) or not isinstance(slack_ms, int) or slack_ms < 0:
        raise ctx.error(f"'slack_ms' must be a non-negative integer, got {slack_ms!r}")

    config = _parse_config(obj["config"], ctx)
    bounds = _parse_bounds(obj.get("bounds", {}), ctx)
    ctx.nodes = node_names(count)
    ctx.bounds = bounds

    raw_steps = obj["steps"]
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ctx.error("'steps' must be a non-empty list")
    steps = tuple(_parse_step(raw, index, ctx) for index, raw in enumerate(raw_steps))
    if not isinstance(steps[0], StartStep):
        raise ctx.error("the first step must be 'start'")
    if ctx.paused:
        raise ctx.error(
            f"{', '.join(sorted(ctx.paused))} is still paused after the last step; "
            "add a resume step"
        )

    return Scenario(
        name=name,
        description=description.strip(),
        nodes=ctx.nodes,
        config=config,
        slack_ms=slack_ms,
        bounds=tuple(bounds.items()),
        steps=steps,
        source=where,
    )


def _parse_config(raw: Any, ctx: _Context) -> ConfigSpec:
    obj = _mapping(raw, "'config'", ctx.error)
    _check_keys(obj, {"preset", "set"}, {"preset"}, "'config'", ctx)
    preset = obj["preset"]
    overrides = _mapping(obj.get("set", {}), "'config.set'", ctx.error)
    try:
        preset_config(str(preset))
        parsed = tuple(
            (str(k), parse_field_value(str(k), v)) for k, v in overrides.items()
        )
    except ScenarioError as error:
        raise ctx.error(str(error)) from None
    return ConfigSpec(preset=str(preset), overrides=parsed)


def _parse_bounds(raw: Any, ctx: _Context) -> dict[str, Bound]:
    obj = _mapping(raw, "'bounds'", ctx.error)
    bounds = {}
    for name, expression in obj.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ctx.error(f"bound name {name!r} must be a lowercase identifier")
        if not isinstance(expression, str | int | float) or isinstance(
            expression, bool
        ):
            raise ctx.error(f"bound {name!r} must be an expression string")
        try:
            bounds[name] = Bound.parse(str(expression), name)
        except ScenarioError as error:
            raise ctx.error(f"bound {name!r}: {error}") from None
    return bounds


def load_scenario(path: Path) -> Scenario:
    """Load one scenario file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ScenarioError(f"{path}: cannot read scenario: {error}") from None
    return parse_scenario(data, str(path))


def builtin_scenario_dir() -> Path:
    """Return the folder of the scenarios shipped with the package."""
    return Path(str(resources.files("conformance") / "scenarios"))


def load_scenarios(directory: Path | None = None) -> dict[str, Scenario]:
    """Load every ``*.yaml`` in ``directory`` (default: the shipped ones), by name."""
    folder = directory or builtin_scenario_dir()
    scenarios: dict[str, Scenario] = {}
    for path in sorted(folder.glob("*.yaml")):
        scenario = load_scenario(path)
        if scenario.name in scenarios:
            raise ScenarioError(
                f"{path}: scenario name {scenario.name!r} is also used by "
                f"{scenarios[scenario.name].source}"
            )
        scenarios[scenario.name] = scenario
    if not scenarios:
        raise ScenarioError(f"no scenario files (*.yaml) in {folder}")
    return scenarios

"""Link faults in the docker runtime: the tc commands, and the runtime's state.

The tests of the command builder and of the runtime's bookkeeping need no
Docker: the bookkeeping tests replace the fault backend with a recorder.
The tests marked ``docker`` start containers and apply faults with the
backend that the host supports: tc netem, or iptables where the kernel has
no netem. They skip with the reason when Docker or both backends are not
usable, except under CI=true, where they fail. Select them with
``-m docker``. test_docker_iptables.py has the iptables rule builder.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from conformance import docker_runtime as docker_runtime_module
from conformance import netem as netem_module
from conformance.cluster import Cluster, Timing
from conformance.config import apply_overrides, preset_config
from conformance.docker_images import ensure_images
from conformance.docker_runtime import (
    LINK_FAULT_STEPS,
    DockerRuntime,
    DockerRuntimeKind,
    connect_client,
)
from conformance.errors import BuildError, DockerError
from conformance.faults import LinkFault
from conformance.harness import RunOptions, run_scenario
from conformance.impls import PYTHON, RUST, default_registry
from conformance.netem import (
    CHAIN,
    MAX_DISTINCT_FAULTS,
    batch_input,
    device_for_address,
    has_fault_tree,
    link_faults_unavailable,
    netem_options,
    select_backend,
    tree_commands,
)
from conformance.runtime import FaultUnavailable
from conformance.scenario import parse_scenario
from tests.conformance.conftest import in_ci
from tests.helpers.netns import in_netns

CUT = LinkFault(loss=1.0)
LOSS = LinkFault(loss=0.3)


def netem_lines(commands: list[list[str]]) -> list[list[str]]:
    return [command for command in commands if "netem" in command]


def filter_lines(commands: list[list[str]]) -> list[list[str]]:
    return [command for command in commands if command[0] == "filter"]


# netem options of one fault.


def test_cut_is_full_loss() -> None:
    options, child = netem_options(LinkFault(loss=1.0, delay_ms=50, duplicate=0.5))

    assert options == ["loss", "100%"]
    assert child is None


@pytest.mark.parametrize(
    ("loss", "text"),
    [(0.1, "10%"), (0.3, "30%"), (0.125, "12.5%"), (0.0000015, "0.00015%")],
)
def test_loss_as_percent(loss: float, text: str) -> None:
    options, _ = netem_options(LinkFault(loss=loss))

    assert options == ["loss", text]


def test_delay_with_jitter() -> None:
    options, child = netem_options(LinkFault(delay_ms=20, jitter_ms=5.5))

    assert options == ["delay", "20ms", "5.5ms"]
    assert child is None


def test_duplicate_and_loss() -> None:
    options, _ = netem_options(LinkFault(loss=0.05, duplicate=0.25))

    assert options == ["loss", "5%", "duplicate", "25%"]


def test_reorder_without_delay_is_inverted() -> None:
    # 30 % get the 40 ms gap, so netem sends the other 70 % at once.
    options, child = netem_options(LinkFault(reorder=0.3, reorder_gap_ms=40))

    assert options == ["delay", "40ms", "reorder", "70%", "gap", "1"]
    assert child is None


def test_reorder_with_delay_uses_child() -> None:
    fault = LinkFault(delay_ms=10, jitter_ms=2, reorder=0.25, reorder_gap_ms=30)

    options, child = netem_options(fault)

    assert options == ["delay", "10ms", "2ms"]
    assert child == ["delay", "30ms", "reorder", "75%", "gap", "1"]


def test_reorder_all_adds_gap_to_delay() -> None:
    options, child = netem_options(
        LinkFault(delay_ms=5, reorder=1.0, reorder_gap_ms=12.5)
    )

    assert options == ["delay", "17.5ms"]
    assert child is None


def test_reorder_without_gap_changes_nothing() -> None:
    options, child = netem_options(LinkFault(reorder=0.5, reorder_gap_ms=0))

    assert options == []
    assert child is None


# The tree of one source.


def test_tree_empty_when_all_clear() -> None:
    assert tree_commands("eth1", {}) == []
    assert tree_commands("eth1", {"172.29.5.11": LinkFault()}) == []


def test_tree_for_one_cut() -> None:
    commands = tree_commands("eth1", {"172.29.5.11": CUT})

    assert commands == [
        ["qdisc", "add", "dev", "eth1", "root", "handle", "1:", "prio"]
        + ["bands", "3", "priomap", *["0"] * 16],
        ["qdisc", "add", "dev", "eth1", "parent", "1:1", "handle", "10:"]
        + ["pfifo", "limit", "1000"],
        ["qdisc", "add", "dev", "eth1", "parent", "1:3", "handle", "30:"]
        + ["netem", "loss", "100%"],
        ["filter", "add", "dev", "eth1", "parent", "1:", "protocol", "ip"]
        + ["prio", "1", "u32", "match", "ip", "dst", "172.29.5.11/32"]
        + ["flowid", "1:3"],
    ]


def test_tree_equal_faults_share_band() -> None:
    loss = LinkFault(loss=0.1)
    faults = {
        "172.29.5.13": loss,
        "172.29.5.11": loss,
        "172.29.5.12": CUT,
        "172.29.5.14": LinkFault(),
    }

    commands = tree_commands("eth1", faults)

    assert commands[0][commands[0].index("bands") + 1] == "4"
    assert [line[-3:] for line in netem_lines(commands)] == [
        ["netem", "loss", "10%"],
        ["netem", "loss", "100%"],
    ]
    # One filter per faulted destination, none for the clear link.
    routes = [
        (line[line.index("dst") + 1], line[-1]) for line in filter_lines(commands)
    ]
    assert routes == [
        ("172.29.5.11/32", "1:3"),
        ("172.29.5.13/32", "1:3"),
        ("172.29.5.12/32", "1:4"),
    ]


def test_tree_filters_come_last() -> None:
    faults = {f"172.29.5.{host}": LinkFault(loss=host / 100) for host in (11, 12)}

    commands = tree_commands("eth1", faults)

    kinds = [line[0] for line in commands]
    assert kinds == ["qdisc"] * 4 + ["filter"] * 2


def test_tree_band_ids_in_hex() -> None:
    faults = {
        f"172.29.5.{10 + index}": LinkFault(loss=index / 100)
        for index in range(1, MAX_DISTINCT_FAULTS + 1)
    }

    commands = tree_commands("eth1", faults)

    assert commands[0][commands[0].index("bands") + 1] == "16"
    parents = [line[line.index("parent") + 1] for line in netem_lines(commands)]
    handles = [line[line.index("handle") + 1] for line in netem_lines(commands)]
    assert parents[7:] == ["1:a", "1:b", "1:c", "1:d", "1:e", "1:f", "1:10"]
    assert handles[-1] == "100:"
    assert filter_lines(commands)[-1][-1] == "1:10"


def test_tree_reorder_child_below_band() -> None:
    fault = LinkFault(delay_ms=10, reorder=0.5)

    commands = tree_commands("eth1", {"172.29.5.11": fault})

    band, child = netem_lines(commands)
    assert band[band.index("parent") + 1] == "1:3"
    assert band[band.index("handle") + 1] == "30:"
    assert child[child.index("parent") + 1] == "30:1"
    assert child[child.index("handle") + 1] == "31:"


def test_tree_rejects_too_many_faults() -> None:
    faults = {
        f"172.29.5.{10 + index}": LinkFault(loss=index / 100)
        for index in range(1, MAX_DISTINCT_FAULTS + 2)
    }

    with pytest.raises(FaultUnavailable, match="at most 14 netem bands"):
        tree_commands("eth1", faults)


def test_batch_input_one_command_a_line() -> None:
    text = batch_input([["qdisc", "del", "dev", "eth1", "root"], ["qdisc", "show"]])

    assert text == "qdisc del dev eth1 root\nqdisc show\n"


IP_ADDR_OUTPUT = """\
1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
40: eth0    inet 172.29.4.10/24 brd 172.29.4.255 scope global eth0\\       valid_lft
42: eth1    inet 172.29.5.10/24 brd 172.29.5.255 scope global eth1\\       valid_lft
"""


def test_device_found_by_address() -> None:
    assert device_for_address(IP_ADDR_OUTPUT, "172.29.5.10") == "eth1"
    assert device_for_address(IP_ADDR_OUTPUT, "172.29.4.10") == "eth0"


def test_device_missing_address() -> None:
    assert device_for_address(IP_ADDR_OUTPUT, "172.29.5.1") is None
    assert device_for_address("", "172.29.5.10") is None


def test_fault_tree_recognised() -> None:
    ours = "qdisc prio 1: root refcnt 2 bands 3 priomap 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"

    assert has_fault_tree(ours)
    assert not has_fault_tree("qdisc noqueue 0: root refcnt 2")
    assert not has_fault_tree("")


# The runtime's bookkeeping, with the fault backend replaced by a recorder.


class RecordingBackend:
    """A LinkFaultBackend that records the faults it is asked to apply.

    As ``netem`` a node's namespace applies the faults of its outgoing
    links, which go with the interface. As ``iptables`` it applies those of
    its incoming links, which stay while the node is detached.
    """

    def __init__(self, name: str = "netem") -> None:
        self.name = name
        self.bound_to_interface = name == "netem"
        self.ingress = name == "iptables"
        self.trees: list[tuple[int, dict[str, LinkFault]]] = []
        self.fail_with: FaultUnavailable | None = None

    async def apply(
        self, pid: int, address: str, faults: Mapping[str, LinkFault]
    ) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.trees.append((pid, dict(faults)))


class FakeHandle:
    def __init__(self, name: str, pid: int, ip: str) -> None:
        self.name = f"container-{name}"
        self.pid = pid
        self.ip = ip
        self.alive = True
        # The handle is its own container, whose reload() refreshes attrs.
        self.container = self
        self.attrs: dict[str, Any] = {"State": {"Running": True}}

    def reload(self) -> None:
        self.attrs = {"State": {"Running": self.alive}}

    def running(self) -> bool:
        return self.alive


class FakeNetwork:
    name = "fake-swim"

    def connect(self, container: Any, ipv4_address: str) -> None:
        return None

    def disconnect(self, container: Any) -> None:
        return None


def fake_runtime(
    *names: str, backend: str = "netem"
) -> tuple[DockerRuntime, RecordingBackend]:
    """Return a runtime whose nodes nN have PID 100 + N and IP 172.29.5.1N."""
    runtime = DockerRuntime(client=None, run_id="test", run_name="netem-unit")
    runtime._node_subnet = ipaddress.IPv4Network("172.29.5.0/24")
    runtime._node_network = FakeNetwork()
    recorder = RecordingBackend(backend)
    runtime._backend = recorder
    for pid, name in enumerate(names, start=100):
        ip = runtime._ip(runtime._node_subnet, name)
        runtime._handles[name] = FakeHandle(name, pid, ip)  # type: ignore[assignment]
    return runtime, recorder


def test_set_links_builds_changed_sources() -> None:
    runtime, recorder = fake_runtime("n0", "n1", "n2")

    async def scenario() -> None:
        await runtime.set_links({("n0", "n1"): CUT})
        await runtime.set_links({("n0", "n1"): CUT})
        await runtime.set_links({("n0", "n1"): CUT, ("n2", "n0"): CUT})

    asyncio.run(scenario())

    assert recorder.trees == [
        (100, {"172.29.5.11": CUT}),
        (102, {"172.29.5.10": CUT}),
    ]


def test_heal_clears_each_tree_once() -> None:
    runtime, recorder = fake_runtime("n0", "n1")

    async def scenario() -> None:
        await runtime.set_links({("n0", "n1"): CUT, ("n1", "n0"): CUT})
        await runtime.set_links({})
        await runtime.set_links({})

    asyncio.run(scenario())

    assert recorder.trees[2:] == [(100, {}), (101, {})]


def test_new_container_gets_faults_again() -> None:
    runtime, recorder = fake_runtime("n0", "n1")

    async def scenario() -> None:
        await runtime.set_links({("n0", "n1"): CUT})
        runtime._handles["n0"].alive = False  # type: ignore[attr-defined]
        await runtime.set_links({("n0", "n1"): LinkFault(loss=0.5)})
        # What launch does for the new container of a restarted node.
        restarted: Any = FakeHandle("n0", 200, "172.29.5.10")
        runtime._handles["n0"] = restarted
        runtime._applied.pop("n0", None)
        await runtime._apply_links("n0")

    asyncio.run(scenario())

    assert recorder.trees == [
        (100, {"172.29.5.11": CUT}),
        (200, {"172.29.5.11": LinkFault(loss=0.5)}),
    ]


def test_disconnected_node_gets_faults_on_connect() -> None:
    runtime, recorder = fake_runtime("n0", "n1")

    async def scenario() -> list[tuple[int, dict[str, LinkFault]]]:
        await runtime.disconnect("n0")
        await runtime.set_links({("n0", "n1"): CUT})
        while_disconnected = list(recorder.trees)
        await runtime.connect("n0")
        return while_disconnected

    while_disconnected = asyncio.run(scenario())

    assert while_disconnected == []
    assert recorder.trees == [(100, {"172.29.5.11": CUT})]


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("netem", [(100, {"172.29.5.11": CUT, "172.29.5.12": LOSS})]),
        ("iptables", [(101, {"172.29.5.10": CUT}), (102, {"172.29.5.10": LOSS})]),
    ],
)
def test_faults_grouped_by_backend(
    backend: str, expected: list[tuple[int, dict[str, LinkFault]]]
) -> None:
    # netem applies a link's fault in the source's namespace, keyed by the
    # destination's IP, and iptables in the destination's, keyed by the
    # source's IP.
    runtime, recorder = fake_runtime("n0", "n1", "n2", backend=backend)

    asyncio.run(runtime.set_links({("n0", "n1"): CUT, ("n0", "n2"): LOSS}))

    assert recorder.trees == expected


def test_iptables_set_links_builds_destinations() -> None:
    runtime, recorder = fake_runtime("n0", "n1", "n2", backend="iptables")

    async def scenario() -> None:
        await runtime.set_links({("n0", "n1"): CUT})
        await runtime.set_links({("n0", "n1"): CUT})
        await runtime.set_links({("n0", "n1"): CUT, ("n2", "n1"): LOSS})

    asyncio.run(scenario())

    assert recorder.trees == [
        (101, {"172.29.5.10": CUT}),
        (101, {"172.29.5.10": CUT, "172.29.5.12": LOSS}),
    ]


def test_iptables_heal_clears_destinations() -> None:
    runtime, recorder = fake_runtime("n0", "n1", "n2", backend="iptables")

    async def scenario() -> None:
        await runtime.set_links({("n0", "n1"): CUT, ("n0", "n2"): CUT})
        # n1 has rules but no faulted link left, so it is cleared too.
        await runtime.set_links({("n0", "n2"): CUT})
        await runtime.set_links({})
        await runtime.set_links({})

    asyncio.run(scenario())

    assert recorder.trees[2:] == [(101, {}), (102, {})]
    assert runtime._applied == {}


def test_iptables_restart_rebuilds_destination() -> None:
    runtime, recorder = fake_runtime("n0", "n1", backend="iptables")

    async def restart(name: str, pid: int) -> None:
        # What launch does for the new container of a restarted node.
        old = runtime._handles[name]
        runtime._handles[name] = FakeHandle(name, pid, old.ip)  # type: ignore[assignment]
        runtime._applied.pop(name, None)
        await runtime._apply_links(name)

    async def scenario() -> list[tuple[int, dict[str, LinkFault]]]:
        await runtime.set_links({("n0", "n1"): CUT})
        # The source's rules live in n1, so a new n0 needs none.
        await restart("n0", 200)
        after_source_restart = list(recorder.trees)
        await restart("n1", 201)
        return after_source_restart

    after_source_restart = asyncio.run(scenario())

    assert after_source_restart == [(101, {"172.29.5.10": CUT})]
    assert recorder.trees == [
        (101, {"172.29.5.10": CUT}),
        (201, {"172.29.5.10": CUT}),
    ]


def test_iptables_rules_outlive_disconnect() -> None:
    # The rules stay in the namespace, so a detached node gets its faults
    # at once and connect has nothing to build again.
    runtime, recorder = fake_runtime("n0", "n1", backend="iptables")

    async def scenario() -> list[tuple[int, dict[str, LinkFault]]]:
        await runtime.set_links({("n0", "n1"): CUT})
        await runtime.disconnect("n1")
        await runtime.set_links({("n0", "n1"): CUT})
        await runtime.connect("n1")
        applied_before_heal = list(recorder.trees)
        await runtime.disconnect("n1")
        await runtime.set_links({})
        await runtime.connect("n1")
        return applied_before_heal

    applied_before_heal = asyncio.run(scenario())

    assert applied_before_heal == [(101, {"172.29.5.10": CUT})]
    assert recorder.trees == [(101, {"172.29.5.10": CUT}), (101, {})]


def test_clear_links_select_no_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    # A launch applies the node's faults, so without this a docker run with
    # no link faults would fail on a host that has neither backend.
    runtime, _ = fake_runtime("n0", "n1")
    runtime._backend = None

    def no_backend() -> None:
        raise FaultUnavailable("neither netem nor iptables")

    monkeypatch.setattr(docker_runtime_module, "select_backend", no_backend)

    async def scenario() -> None:
        await runtime._apply_links("n0")
        await runtime.set_links({("n0", "n1"): LinkFault()})
        await runtime.set_links({})

    asyncio.run(scenario())

    assert runtime._backend is None


def test_exited_container_is_skipped() -> None:
    runtime, recorder = fake_runtime("n0", "n1")
    recorder.fail_with = FaultUnavailable("nsenter: No such process")
    # The container exited, but the exit watcher has not seen it yet.
    handle: Any = runtime._handles["n0"]
    handle.alive = False
    handle.running = lambda: True

    asyncio.run(runtime.set_links({("n0", "n1"): CUT}))

    assert "n0" not in runtime._applied


def test_tc_failure_raised_for_running_node() -> None:
    runtime, recorder = fake_runtime("n0", "n1")
    recorder.fail_with = FaultUnavailable("tc failed")

    with pytest.raises(FaultUnavailable, match="tc failed") as raised:
        asyncio.run(runtime.set_links({("n0", "n1"): CUT}))

    assert "container-n0 (pid 100) with netem" in str(raised.value)


def patch_probes(
    monkeypatch: pytest.MonkeyPatch, netem: str | None, iptables: str | None
) -> None:
    """Make the netem and iptables probes return ``netem`` and ``iptables``."""
    monkeypatch.setattr(netem_module, "probe_netem", lambda: netem)
    monkeypatch.setattr(netem_module, "probe_iptables", lambda: iptables)


@pytest.mark.parametrize(
    ("netem", "iptables"),
    [(None, None), (None, "no iptables"), ("no netem", None)],
    ids=["both", "netem", "iptables"],
)
def test_unavailable_steps_empty_with_backend(
    netem: str | None, iptables: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    patch_probes(monkeypatch, netem, iptables)

    steps = DockerRuntimeKind(client=None, run_id="test").unavailable_steps

    assert steps == {}


def test_unavailable_steps_without_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    patch_probes(monkeypatch, "no netem here", "no iptables here")

    steps = DockerRuntimeKind(client=None, run_id="test").unavailable_steps

    assert set(steps) == set(LINK_FAULT_STEPS) == {"link_fault", "partition", "heal"}
    (reason,) = set(steps.values())
    assert reason.startswith("no netem here.")
    assert "iptables fallback is not usable either: no iptables here" in reason


# Containers with real tc or iptables. These need Docker, the node images
# and netem or iptables in the host kernel.


@pytest.fixture(scope="module")
def docker_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Return a Docker client with the node images present and a fault backend."""
    registry = default_registry()
    images = [impl.image for impl in registry.values() if impl.image is not None]
    log_path = tmp_path_factory.mktemp("images") / "image-build.log"
    reason = link_faults_unavailable()
    try:
        if reason is not None:
            raise DockerError(reason)
        client = connect_client()
        ensure_images(client, images, "missing", log_path)
    except (DockerError, BuildError) as error:
        if in_ci():
            pytest.fail(f"Docker with link faults is required under CI=true: {error}")
        pytest.skip(f"Docker link faults are not usable: {error}")
    return client


def fault_stats(backend: str, pid: int) -> str:
    """Return the qdiscs (netem) or filter rules (iptables) of process ``pid``."""
    if backend == "netem":
        return in_netns(pid, "tc", "-s", "qdisc", "show")
    return in_netns(pid, "iptables", "-w", "-S", "-v")


def dropped_by(stats: str, handle: str) -> int:
    """Return the drop count of qdisc ``handle`` in `tc -s qdisc show` output."""
    match = re.search(
        rf"^qdisc netem {re.escape(handle)} .*?\n.*?dropped (\d+)",
        stats,
        re.MULTILINE,
    )
    assert match is not None, stats
    return int(match[1])


def dropped_by_rule(rules: str, address: str) -> int:
    """Return the packet count of the drop rule for ``address`` in `iptables -S -v`."""
    match = re.search(
        rf"^-A {CHAIN} -s {re.escape(address)}/32 -p udp .*-c (\d+) \d+ -j DROP$",
        rules,
        re.MULTILINE,
    )
    assert match is not None, rules
    return int(match[1])


@pytest.mark.docker
@pytest.mark.integration
def test_cut_drops_and_survives_restart(docker_client: Any, tmp_path: Path) -> None:
    selected = select_backend()
    backend = selected.name
    # The node whose namespace drops the datagrams of the cut n0 -> n1.
    holder = "n1" if selected.ingress else "n0"
    kind = DockerRuntimeKind(docker_client)
    runtime = kind.new_runtime("netem-cut")
    overrides = (("probe_period_ms", 300), ("probe_rtt_ms", 150))
    config = apply_overrides(preset_config("simple"), dict(overrides))
    timing = Timing(startup=60.0, reply=10.0, stop_grace=5.0)
    cluster = Cluster(tmp_path, "simple", overrides, config, timing, "1", runtime)
    registry = default_registry()

    async def scenario() -> dict[str, Any]:
        try:
            # The sender is rust_peer, which logs every failed send.
            first = await cluster.start_node("n0", registry[RUST])
            await cluster.start_node("n1", registry[PYTHON], seeds=[first.bind])
            await runtime.set_links({("n0", "n1"): CUT})
            await asyncio.sleep(2.0)
            cut = fault_stats(backend, cluster.node(holder).process.pid)
            sender_log = cluster.node("n0").process.log_tail(10_000)
            await cluster.kill(holder)
            second = await cluster.restart(holder, renewed=False, seeds=[])
            restarted = fault_stats(backend, second.process.pid)
            await runtime.set_links({})
            healed = fault_stats(backend, second.process.pid)
            return {
                "n0": first.bind.rsplit(":", 1)[0],
                "cut": cut,
                "sender_log": sender_log,
                "restarted": restarted,
                "healed": healed,
            }
        finally:
            await cluster.close()
            kind.remove_all()

    outcome = asyncio.run(scenario())

    # n0 probes n1 every 300 ms, and each Ping to n1 is dropped. Neither
    # backend fails the sender's sendto: netem_enqueue in the kernel's
    # net/sched/sch_netem.c returns NET_XMIT_SUCCESS for a datagram that it
    # loses, and iptables drops on receipt.
    assert "node ready" in outcome["sender_log"]
    assert "failed to send a UDP datagram" not in outcome["sender_log"]
    if backend == "netem":
        assert dropped_by(outcome["cut"], "30:") >= 3
        assert "loss 100%" in outcome["restarted"]
        assert "qdisc prio 1:" in outcome["restarted"]
        assert "qdisc prio 1:" not in outcome["healed"]
        assert "netem" not in outcome["healed"]
    else:
        cut_rule = f"-A {CHAIN} -s {outcome['n0']}/32 -p udp -c "
        assert dropped_by_rule(outcome["cut"], outcome["n0"]) >= 3
        # The restarted destination's namespace has the jump and the rule again.
        jump = re.compile(rf"^-A INPUT -c \d+ \d+ -j {CHAIN}$", re.MULTILINE)
        assert jump.search(outcome["restarted"]) is not None
        assert cut_rule in outcome["restarted"]
        assert CHAIN not in outcome["healed"]


@pytest.mark.docker
@pytest.mark.integration
def test_partition_and_heal_scenario(docker_client: Any, tmp_path: Path) -> None:
    scenario = parse_scenario(
        {
            "name": "netem_partition",
            "nodes": 4,
            "config": {
                "preset": "simple",
                "set": {
                    "probe_period_ms": 500,
                    "probe_rtt_ms": 200,
                    "suspect_to_down_after_ms": 1500,
                    "notify_down_members": True,
                    "periodic_announce_to_down_members": "1000:2",
                },
            },
            "slack_ms": 3000,
            "bounds": {
                "converge": "probe_period * (2 * nodes + 1) + slack",
                "detect": "probe_period * 2 * (nodes - 1) "
                "+ suspect_to_down_after + slack",
                "reconverge": "max(5, periodic_announce_to_down_members) "
                "+ probe_period * (2 * nodes + 1) + slack",
            },
            "steps": [
                {"start": {"nodes": "all", "seed": "previous"}},
                {"wait_converged": {"within": "converge"}},
                {"partition": {"nodes": ["n1"]}},
                {"expect_down": {"node": "n1", "within": "detect"}},
                {"heal": {}},
                {"wait_converged": {"within": "reconverge"}},
            ],
        },
        "netem_partition",
    )
    kind = DockerRuntimeKind(docker_client)
    options = RunOptions(
        report_dir=tmp_path, registry=default_registry(), seed="1", runtime=kind
    )
    try:
        result = asyncio.run(run_scenario(scenario, "mixed", options))
    finally:
        kind.remove_all()

    assert result.unavailable is None
    assert result.passed, result.error

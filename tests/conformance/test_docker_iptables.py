"""Link faults with iptables, the docker runtime's backend on hosts without netem.

The rule builder and the availability checks need neither Docker nor root.
The namespace tests run the host's iptables in a network namespace of a
``sleep`` process started with ``unshare --net``, send datagrams only on
that namespace's loopback, and skip when the iptables probe fails.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import netem as netem_module
from conformance.docker_runtime import DockerRuntimeKind
from conformance.faults import LinkFault
from conformance.harness import RunOptions, ScenarioRun
from conformance.impls import default_registry
from conformance.netem import (
    CHAIN,
    ChainState,
    IptablesTools,
    NetnsIptables,
    chain_rules,
    drop_rule,
    fault_unavailable,
    iptables_unsupported,
    probe_iptables,
    restore_input,
    select_backend,
)
from conformance.runtime import PROCESS_RUNTIME, FaultUnavailable
from conformance.scenario import load_scenarios
from tests.helpers.netns import in_netns

CUT = LinkFault(loss=1.0)
NO_NETEM = "tc cannot build a netem tree on this host"
DELAYED = LinkFault(delay_ms=40, jitter_ms=30, duplicate=0.2, reorder=0.2)


# The rules of one destination.


def test_drop_rule_for_cut() -> None:
    assert drop_rule("172.29.5.11", CUT) == (
        ["-A", "SWIMCONF", "-s", "172.29.5.11/32", "-p", "udp", "-j", "DROP"]
    )


@pytest.mark.parametrize(
    ("loss", "text"),
    [(0.1, "0.1"), (0.3, "0.3"), (0.125, "0.125"), (0.0000015, "0.0000015")],
)
def test_drop_rule_for_loss(loss: float, text: str) -> None:
    rule = drop_rule("172.29.5.11", LinkFault(loss=loss))

    assert rule == [
        *["-A", "SWIMCONF", "-s", "172.29.5.11/32", "-p", "udp"],
        *["-m", "statistic", "--mode", "random", "--probability", text],
        *["-j", "DROP"],
    ]


def test_cut_ignores_other_fields() -> None:
    fault = LinkFault(loss=1.0, delay_ms=50, duplicate=0.5)

    assert iptables_unsupported(fault) == []
    assert drop_rule("172.29.5.11", fault)[-3:] == ["udp", "-j", "DROP"]


def test_unsupported_fields_named() -> None:
    assert iptables_unsupported(LinkFault(loss=0.2)) == []
    assert iptables_unsupported(DELAYED) == [
        "delay_ms 40",
        "jitter_ms 30",
        "duplicate 0.2",
        "reorder 0.2",
    ]
    assert iptables_unsupported(LinkFault(reorder=0.5)) == ["reorder 0.5"]


def test_chain_rules_in_address_order() -> None:
    faults = {
        "172.29.5.20": CUT,
        "172.29.5.3": LinkFault(loss=0.1),
        "172.29.5.11": LinkFault(),
    }

    rules = chain_rules(faults)

    # Numeric order, not text order, and no rule for the clear link.
    assert [rule[rule.index("-s") + 1] for rule in rules] == [
        "172.29.5.3/32",
        "172.29.5.20/32",
    ]
    assert "statistic" in rules[0]
    assert "statistic" not in rules[1]


def test_chain_rules_reject_delay() -> None:
    faults = {"172.29.5.11": CUT, "172.29.5.12": LinkFault(loss=0.1, delay_ms=20)}

    with pytest.raises(FaultUnavailable, match="from 172.29.5.12 needs tc netem"):
        chain_rules(faults)


def test_chain_state_parsed() -> None:
    listing = (
        "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N SWIMCONF\n"
        "-A INPUT -j SWIMCONF\n-A SWIMCONF -s 172.29.5.11/32 -p udp -j DROP\n"
    )
    # Only a jump from INPUT counts.
    output_jump = "-N SWIMCONF\n-A OUTPUT -j SWIMCONF\n"

    assert ChainState.parse(listing) == ChainState(chain=True, jump=True)
    assert ChainState.parse("-N SWIMCONF\n") == ChainState(chain=True, jump=False)
    assert ChainState.parse(output_jump) == ChainState(chain=True, jump=False)
    assert ChainState.parse("-P INPUT ACCEPT\n") == ChainState(False, False)


def test_restore_creates_chain_and_jump() -> None:
    faults = {"172.29.5.12": LinkFault(loss=0.1), "172.29.5.11": CUT}

    text = restore_input(faults, ChainState(chain=False, jump=False))

    assert text == (
        "*filter\n"
        ":SWIMCONF - [0:0]\n"
        "-I INPUT 1 -j SWIMCONF\n"
        "-A SWIMCONF -s 172.29.5.11/32 -p udp -j DROP\n"
        "-A SWIMCONF -s 172.29.5.12/32 -p udp -m statistic --mode random "
        "--probability 0.1 -j DROP\n"
        "COMMIT\n"
    )


def test_restore_refills_existing_chain() -> None:
    text = restore_input({"172.29.5.11": CUT}, ChainState(chain=True, jump=True))

    assert text == (
        "*filter\n"
        ":SWIMCONF - [0:0]\n"
        "-A SWIMCONF -s 172.29.5.11/32 -p udp -j DROP\n"
        "COMMIT\n"
    )


def test_restore_clear_deletes_chain() -> None:
    state = ChainState(chain=True, jump=True)

    text = restore_input({"172.29.5.11": LinkFault()}, state)

    assert text == (
        "*filter\n:SWIMCONF - [0:0]\n-D INPUT -j SWIMCONF\n-X SWIMCONF\nCOMMIT\n"
    )


def test_restore_clear_without_chain_is_none() -> None:
    assert restore_input({}, ChainState(chain=False, jump=False)) is None


# Which faults and steps are available, by the probes' results.


def patch_probes(
    monkeypatch: pytest.MonkeyPatch, netem: str | None, iptables: str | None
) -> None:
    """Make the netem and iptables probes return ``netem`` and ``iptables``."""
    monkeypatch.setattr(netem_module, "probe_netem", lambda: netem)
    monkeypatch.setattr(netem_module, "probe_iptables", lambda: iptables)


def test_fault_available_with_netem(monkeypatch: pytest.MonkeyPatch) -> None:
    patch_probes(monkeypatch, None, "no iptables")

    assert fault_unavailable(DELAYED) is None
    assert fault_unavailable(CUT) is None


def test_iptables_fault_needs_netem(monkeypatch: pytest.MonkeyPatch) -> None:
    patch_probes(monkeypatch, NO_NETEM, None)

    reason = fault_unavailable(DELAYED)

    assert fault_unavailable(LinkFault(loss=0.3)) is None
    assert fault_unavailable(CUT) is None
    assert fault_unavailable(LinkFault()) is None
    assert reason is not None
    assert "needs tc netem for delay_ms 40, jitter_ms 30, duplicate 0.2 and " in (
        reason
    )
    assert "the iptables fallback only drops datagrams (loss and cuts)" in reason
    assert reason.endswith(f"Why netem fails: {NO_NETEM}")


def test_fault_without_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    patch_probes(monkeypatch, NO_NETEM, "no iptables")

    reason = fault_unavailable(CUT)

    assert reason is not None
    assert reason.startswith(NO_NETEM)
    assert reason.endswith("not usable either: no iptables")


def test_backend_follows_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    patch_probes(monkeypatch, NO_NETEM, None)
    monkeypatch.setattr(
        IptablesTools,
        "find",
        classmethod(lambda cls: cls("iptables", "iptables-restore", "nsenter", "x")),
    )

    assert select_backend().name == "iptables"

    patch_probes(monkeypatch, NO_NETEM, "no iptables")
    with pytest.raises(FaultUnavailable, match="no iptables"):
        select_backend()


def test_process_runtime_has_every_fault() -> None:
    assert PROCESS_RUNTIME.fault_unavailable(DELAYED) is None


def unavailable_reason(scenario: str, tmp_path: Path) -> str | None:
    """Return the harness's reason to skip ``scenario`` in the docker runtime."""
    options = RunOptions(
        report_dir=tmp_path,
        registry=default_registry(),
        seed="1",
        runtime=DockerRuntimeKind(client=None, run_id="test"),
    )
    run = ScenarioRun(load_scenarios()[scenario], "mixed", options)
    return run.unavailable_reason()


def test_harness_skips_delay_scenario(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    patch_probes(monkeypatch, NO_NETEM, None)

    reason = unavailable_reason("delay_duplicate_reorder", tmp_path)

    assert reason is not None
    assert reason.startswith("step 3 (link_fault) is not available in the docker")
    assert "needs tc netem for delay_ms 40" in reason


@pytest.mark.parametrize("scenario", ["packet_loss", "one_way_link", "partition_heal"])
def test_harness_runs_loss_and_cuts(
    scenario: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    patch_probes(monkeypatch, NO_NETEM, None)

    assert unavailable_reason(scenario, tmp_path) is None


# Real rules in a network namespace of its own.


@pytest.fixture
def netns_pid() -> Iterator[int]:
    """Return the PID of a process in a new network namespace with loopback up."""
    reason = probe_iptables()
    if reason is not None:
        pytest.skip(f"iptables is not usable: {reason}")
    holder = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        # unshare execs sleep in the new namespace, so the PID stays.
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{holder.pid}/ns/net") == own:
            assert time.monotonic() < deadline, "unshare did not create a namespace"
            time.sleep(0.01)
        subprocess.run(
            ["nsenter", "-t", str(holder.pid), "-n", "ip", "link", "set", "lo", "up"],
            check=True,
            timeout=30,
        )
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


# Sends one datagram per argument SOURCE>DESTINATION, from a socket bound to
# SOURCE to one bound to DESTINATION, and prints each send's outcome, then
# each datagram that arrives within 0.5 s.
EXCHANGE = """
import socket, sys
links = [argument.split(">") for argument in sys.argv[1:]]
receivers = {}
for _, destination in links:
    if destination not in receivers:
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver.bind((destination, 0))
        receiver.settimeout(0.5)
        receivers[destination] = receiver
for source, destination in links:
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind((source, 0))
    link = source + ">" + destination
    try:
        sender.sendto(link.encode(), receivers[destination].getsockname())
        print(link, "sent")
    except OSError as error:
        print(link, error.strerror)
for receiver in receivers.values():
    try:
        while True:
            print(receiver.recv(64).decode(), "received")
    except TimeoutError:
        pass
"""


def exchange(pid: int, *links: str) -> tuple[list[str], list[str]]:
    """Run EXCHANGE in ``pid``'s namespace; return its send and receive lines."""
    lines = in_netns(pid, sys.executable, "-c", EXCHANGE, *links).splitlines()
    sent = [line for line in lines if not line.endswith(" received")]
    received = sorted(line for line in lines if line.endswith(" received"))
    return sent, received


def test_netns_rules_applied_and_removed(netns_pid: int) -> None:
    tools = IptablesTools.find()
    assert tools is not None
    backend = NetnsIptables(tools)
    faults = {"127.0.0.2": CUT, "127.0.0.3": LinkFault(loss=0.5)}

    async def apply(faults: dict[str, LinkFault]) -> str:
        await backend.apply(netns_pid, "127.0.0.1", faults)
        return in_netns(netns_pid, "iptables", "-w", "-S")

    built = asyncio.run(apply(faults))
    # Applying again flushes the chain instead of adding a second jump.
    rebuilt = asyncio.run(apply({"127.0.0.2": CUT}))
    cleared = asyncio.run(apply({}))

    assert "-A INPUT -j SWIMCONF" in built.splitlines()
    assert "OUTPUT -j SWIMCONF" not in built
    assert "-A SWIMCONF -s 127.0.0.2/32 -p udp -j DROP" in built.splitlines()
    assert "-s 127.0.0.3/32 -p udp -m statistic --mode random" in built
    assert rebuilt.splitlines().count("-A INPUT -j SWIMCONF") == 1
    assert "127.0.0.3" not in rebuilt
    assert CHAIN not in cleared


def test_netns_cut_drops_silently(netns_pid: int) -> None:
    tools = IptablesTools.find()
    assert tools is not None
    backend = NetnsIptables(tools)
    asyncio.run(backend.apply(netns_pid, "127.0.0.1", {"127.0.0.2": CUT}))

    sent, received = exchange(
        netns_pid, "127.0.0.2>127.0.0.1", "127.0.0.4>127.0.0.1", "127.0.0.1>127.0.0.2"
    )
    counters = in_netns(netns_pid, "iptables", "-w", "-S", CHAIN, "-v")

    # INPUT drops the datagram after the sender's sendto has returned.
    assert sent == [
        "127.0.0.2>127.0.0.1 sent",
        "127.0.0.4>127.0.0.1 sent",
        "127.0.0.1>127.0.0.2 sent",
    ]
    # The cut link loses its datagram, and the reverse link is open.
    assert received == [
        "127.0.0.1>127.0.0.2 received",
        "127.0.0.4>127.0.0.1 received",
    ]
    assert f"-A {CHAIN} -s 127.0.0.2/32 -p udp -c 1 " in counters


def test_netns_failure_names_command(netns_pid: int) -> None:
    tools = IptablesTools.find()
    assert tools is not None
    backend = NetnsIptables(tools)

    with pytest.raises(FaultUnavailable, match="iptables") as raised:
        asyncio.run(backend.apply(netns_pid + 10**7, "127.0.0.1", {"127.0.0.2": CUT}))

    assert "nsenter" in str(raised.value)

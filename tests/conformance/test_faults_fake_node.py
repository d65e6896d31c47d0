"""pause, resume, send_datagram, disconnect and their expectations, against
fake_node.py.

A fake node counts any datagram that is not its own JSON as a decode error
(or as malformed_packet with ``--fake-mode misclassify-datagrams``), and
declares a member down after suspect_to_down_after plus two probe periods of
silence.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conformance.cluster import Cluster, Timing
from conformance.config import apply_overrides, preset_config
from conformance.errors import HarnessError
from conformance.harness import RunOptions, RunResult, ScenarioRun, run_scenario
from conformance.impls import Implementation
from conformance.report import build_report, render_markdown, write_report
from conformance.runtime import ProcessRuntimeKind
from conformance.scenario import load_scenarios, parse_scenario
from tests.conformance.conftest import fake_implementation

pytestmark = pytest.mark.integration

FAST = Timing(startup=20.0, reply=5.0, stop_grace=5.0)
# Fake nodes declare a member down after 1.0 + 2 * 0.2 = 1.4 s of silence.
CONFIG: dict[str, Any] = {
    "preset": "simple",
    "set": {
        "probe_period_ms": 200,
        "probe_rtt_ms": 100,
        "suspect_to_down_after_ms": 1000,
    },
}
CONVERGED: list[dict[str, Any]] = [
    {"start": {"nodes": "all"}},
    {"wait_converged": {"within": "probe_period * 20"}},
]


def registry() -> dict[str, Implementation]:
    return {
        "fake": fake_implementation("fake"),
        "fake2": fake_implementation("fake2"),
        "misfit": fake_implementation("misfit", "--fake-mode", "misclassify-datagrams"),
    }


def run(tmp_path: Path, mix: str, nodes: int, *steps: dict[str, Any]) -> RunResult:
    scenario = parse_scenario(
        {
            "name": "inline",
            "nodes": nodes,
            "config": CONFIG,
            "slack_ms": 2000,
            "steps": [*CONVERGED, *steps],
        },
        "inline",
    )
    options = RunOptions(
        report_dir=tmp_path, registry=registry(), seed="1", timing=FAST
    )
    return asyncio.run(run_scenario(scenario, mix, options))


def new_cluster(tmp_path: Path) -> Cluster:
    overrides = tuple(CONFIG["set"].items())
    config = apply_overrides(preset_config("simple"), dict(overrides))
    return Cluster(tmp_path, "simple", overrides, config, FAST, seed="1")


def process_state(pid: int) -> str:
    """Return the one-letter state from /proc/PID/stat, such as R, S or T."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def expect_errors(node: str, error_class: str, at_least: int = 1) -> dict[str, Any]:
    return {
        "expect_errors": {
            "node": node,
            "class": error_class,
            "at_least": at_least,
            "within": "slack",
        }
    }


def send(node: str, kind: str, repeat: int = 1) -> dict[str, Any]:
    return {"send_datagram": {"node": node, "kind": kind, "repeat": repeat}}


# pause and resume.


def test_pause_stops_process_and_rejects_commands(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path)

    async def scenario() -> dict[str, Any]:
        try:
            node = await cluster.start_node("n0", fake_implementation())
            await cluster.pause("n0")
            await asyncio.sleep(0.2)
            paused_state = process_state(node.process.pid)
            began = time.monotonic()
            try:
                await cluster.members("n0")
                error = ""
            except HarnessError as caught:
                error = str(caught)
            rejected_after = time.monotonic() - began
            await cluster.resume("n0")
            await cluster.members("n0")
            return {
                "paused_state": paused_state,
                "error": error,
                "rejected_after": rejected_after,
                "resumed_state": process_state(node.process.pid),
            }
        finally:
            await cluster.close()

    outcome = asyncio.run(scenario())

    assert outcome["paused_state"] == "T"
    assert "cannot send 'members' to n0: it is paused" in outcome["error"]
    assert outcome["rejected_after"] < 1.0
    assert outcome["resumed_state"] != "T"


def test_close_resumes_paused_node(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path)

    async def scenario() -> tuple[int | None, float]:
        node = await cluster.start_node("n0", fake_implementation())
        await cluster.pause("n0")
        began = time.monotonic()
        await cluster.close()
        return node.process.returncode, time.monotonic() - began

    status, seconds = asyncio.run(scenario())

    # Exit status 0 means the node saw its control connection close; a node
    # left stopped would only end by SIGKILL (-9) after stop_grace.
    assert status == 0
    assert seconds < FAST.stop_grace


def test_terminate_resumes_paused_process(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path)

    async def scenario() -> int | None:
        try:
            node = await cluster.start_node("n0", fake_implementation())
            await cluster.pause("n0")
            return await node.process.terminate(FAST.stop_grace)
        finally:
            await cluster.close()

    # fake_node exits 0 on SIGTERM, which a stopped process keeps pending.
    assert asyncio.run(scenario()) == 0


def test_stop_resumes_paused_node(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path)

    async def scenario() -> int | None:
        try:
            node = await cluster.start_node("n0", fake_implementation())
            await cluster.pause("n0")
            await cluster.stop("n0")
            return node.process.returncode
        finally:
            await cluster.close()

    assert asyncio.run(scenario()) == 0
    assert cluster.problems == []


def test_short_pause_is_never_down(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "fake",
        3,
        {"pause": {"node": "n1"}},
        {"resume": {"node": "n1", "after": "2 * probe_period"}},
        {"expect_never_down": {"node": "n1", "during": "suspect_to_down_after"}},
        {"expect_never_down": {"node": "all", "during": "probe_period"}},
    )

    assert result.passed, result.error
    assert result.duration_seconds >= 0.4 + 1.0


def test_long_pause_fails_never_down(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "fake",
        3,
        {"pause": {"node": "n1"}},
        {"resume": {"node": "n1", "after": "suspect_to_down_after + 5 * probe_period"}},
        {"expect_never_down": {"node": "n1", "during": "probe_period"}},
    )

    assert result.passed is False
    assert result.error is not None
    assert "step 5 (expect_never_down n1)" in result.error
    assert "emitted member_down for n1" in result.error


def test_refuted_fails_without_incarnation_rise(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "fake",
        3,
        {"pause": {"node": "n1"}},
        {"resume": {"node": "n1", "after": "probe_period"}},
        {
            "expect_never_down": {
                "node": "n1",
                "during": "probe_period",
                "refuted": True,
            }
        },
    )

    assert result.passed is False
    assert result.error is not None
    assert "n1 is still at incarnation 0, as before the pause" in result.error


def test_cancelled_run_resumes_and_ends_paused_node(tmp_path: Path) -> None:
    scenario = parse_scenario(
        {
            "name": "inline",
            "nodes": 2,
            "config": CONFIG,
            "steps": [
                *CONVERGED,
                {"pause": {"node": "n1"}},
                {"resume": {"node": "n1", "after": "60"}},
            ],
        },
        "inline",
    )
    options = RunOptions(
        report_dir=tmp_path, registry=registry(), seed="1", timing=FAST
    )
    scenario_run = ScenarioRun(scenario, "fake", options)

    async def cancel_while_paused() -> list[int | None]:
        task = asyncio.create_task(scenario_run.run())
        while not scenario_run.cluster.paused():
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return [node.process.returncode for node in scenario_run.cluster.history]

    # Both exit 0: the paused node was resumed and saw its connection close.
    assert asyncio.run(cancel_while_paused()) == [0, 0]


# send_datagram and expect_errors.


def test_garbage_counts_decode_on_both_nodes(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "fake+fake2",
        2,
        send("n0", "garbage", repeat=3),
        send("n1", "garbage", repeat=3),
        expect_errors("n0", "decode", 3),
        expect_errors("n1", "decode", 3),
    )

    assert result.passed, result.error
    verdicts = [(v["node"], v["kind"], v["errors"]) for v in result.datagram_verdicts]
    assert verdicts == [
        ("n0", "garbage", {"decode": 3}),
        ("n1", "garbage", {"decode": 3}),
    ]
    # Garbage has no header, so no node counts it in received.
    assert set(result.wire_counts) == {"fake->fake2", "fake2->fake"}


def test_wrong_class_names_kind_and_both_counters(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "fake+misfit",
        4,
        send("n0", "truncated_header"),
        send("n1", "truncated_header"),
        expect_errors("n1", "decode"),
        expect_errors("n0", "decode"),
    )

    assert result.passed is False
    assert result.error is not None
    assert "step 5 (expect_errors n1)" in result.error
    assert "datagram kind truncated_header: expected decode +1" in result.error
    assert "n1 (misfit) counted malformed_packet +1" in result.error
    assert "n0 (fake) counted decode +1 so far" in result.error


def test_disagreeing_verdicts_fail(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "fake+misfit",
        2,
        send("n0", "garbage"),
        expect_errors("n0", "decode"),
        send("n1", "garbage"),
        expect_errors("n1", "malformed_packet"),
    )

    assert result.passed is False
    assert result.error == (
        "step 6 (expect_errors n1): nodes disagree on datagram kind garbage: "
        "n0 (fake) counted decode +1, n1 (misfit) counted malformed_packet +1"
    )


def test_accepted_kind_must_count_in_received(tmp_path: Path) -> None:
    # A fake node cannot decode the Gossip, so it does not count it in
    # received, which the peer contract requires for this kind.
    result = run(
        tmp_path,
        "fake",
        2,
        send("n0", "bad_broadcast_length"),
        expect_errors("n0", "decode"),
    )

    assert result.passed is False
    assert result.error is not None
    assert "n0 (fake) counted 0 of the 1 bad_broadcast_length datagram(s)" in (
        result.error
    )
    assert "in received as gossip" in result.error


def test_stand_in_sender_must_share_implementation(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "fake+fake2",
        2,
        send("n0", "bad_count"),
    )

    assert result.passed is False
    assert result.error is not None
    assert "no other running fake node to name as the sender" in result.error


def test_report_lists_datagram_verdicts(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "fake+misfit",
        2,
        send("n0", "garbage"),
        expect_errors("n0", "decode"),
        send("n1", "garbage"),
        expect_errors("n1", "malformed_packet"),
    )
    report = build_report([result], seed="1", runtime="process", registry=registry())

    markdown = render_markdown(report, [result])

    assert "## Malformed datagrams" in markdown
    assert "| garbage | decode | malformed_packet |" in markdown
    assert report["results"][0]["datagram_verdicts"][0]["kind"] == "garbage"


# disconnect and connect: the relay isolates the node.


def test_disconnect_isolates_node_until_connect(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "fake",
        3,
        {"disconnect": {"node": "n1"}},
        {"expect_down": {"node": "n1", "within": "slack * 4", "measure": "detect"}},
        {"connect": {"node": "n1"}},
    )

    assert result.passed, result.error
    assert "detect" in result.measurements
    assert result.false_downs == []
    assert result.traffic["per_node"]["n1"]["dropped"] > 0


class _NoDisconnectRuntime(ProcessRuntimeKind):
    """The process runtime, pretending that it cannot disconnect nodes."""

    @property
    def unavailable_steps(self) -> Mapping[str, str]:
        return {"disconnect": "this test runtime has no disconnect"}


def test_unavailable_step_skips_the_scenario(tmp_path: Path) -> None:
    options = RunOptions(
        report_dir=tmp_path,
        registry=registry(),
        seed="1",
        timing=FAST,
        runtime=_NoDisconnectRuntime(),
    )

    result = asyncio.run(run_scenario(load_scenarios()["disconnect"], "fake", options))

    assert result.status == "unavailable"
    assert result.passed is False
    assert result.error is None
    assert result.unavailable is not None
    assert "step 3 (disconnect n1) is not available in the process runtime" in (
        result.unavailable
    )
    # Nothing was started.
    assert result.nodes == []
    assert not (tmp_path / "runs").exists()


def test_report_marks_unavailable_scenario(tmp_path: Path) -> None:
    options = RunOptions(
        report_dir=tmp_path, registry=registry(), seed="1", timing=FAST
    )
    unavailable = asyncio.run(
        run_scenario(
            load_scenarios()["disconnect"],
            "fake",
            replace(options, runtime=_NoDisconnectRuntime()),
        )
    )
    passed = run(tmp_path, "fake", 2)
    results = [passed, unavailable]
    report = build_report(results, seed="1", runtime="process", registry=registry())

    json_path, md_path = write_report(tmp_path, report, results)

    assert report["summary"] == {
        "total": 2,
        "passed": 1,
        "failed": 0,
        "unavailable": 1,
    }
    assert report["results"][1]["status"] == "unavailable"
    markdown = md_path.read_text()
    assert "| disconnect | n/a |" in markdown
    assert "## Not available in the process runtime" in markdown
    assert "## Failures" not in markdown
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    assert suite.get("skipped") == "1"
    assert suite.get("failures") == "0"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    skipped = cases["disconnect[fake]"].find("skipped")
    assert skipped is not None
    assert "not available in the process runtime" in (skipped.get("message") or "")
    assert cases["inline[fake]"].find("failure") is None


# Link faults through the process runtime's relay.


def test_partition_is_detected_measured_and_drawn(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "fake",
        3,
        {"partition": {"nodes": ["n1"]}},
        {"expect_down": {"node": "n1", "within": "slack * 4", "measure": "detect"}},
        {"expect_partitioned": {"within": "slack * 4", "measure": "split"}},
    )

    assert result.passed, result.error
    assert result.measurements["detect_first"].seconds <= (
        result.measurements["detect"].seconds
    )
    assert "split" in result.measurements
    # Every Down came from the cut, so none is a false positive.
    assert result.false_downs == []
    assert result.traffic["source"] == "relay"
    assert result.traffic["dropped"] > 0
    assert result.timeline_png is not None
    assert Path(result.timeline_png).read_bytes().startswith(b"\x89PNG")
    assert any("cut on n0->n1" in note for note in result.notes)


def test_lossless_faults_keep_every_node_up(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "fake",
        3,
        {
            "link_fault": {
                "from": "all",
                "to": "all",
                "delay_ms": 20,
                "jitter_ms": 10,
                "duplicate": 0.5,
                "reorder": 0.5,
            }
        },
        {"expect_never_down": {"node": "all", "during": "slack"}},
        {"heal": None},
        {"expect_stable": {"during": "probe_period * 3"}},
    )

    assert result.passed, result.error
    assert result.false_downs == []
    assert result.traffic["per_node"]["n0"]["duplicated"] > 0
    assert result.traffic["per_node"]["n0"]["delayed"] > 0


def test_down_without_a_fault_counts_as_false_positive(tmp_path: Path) -> None:
    # Fake nodes declare a member down after 1.4 s of silence, so 90 % loss
    # both ways makes some of them give up on live members.
    result = run(
        tmp_path,
        "fake",
        3,
        {"link_fault": {"from": "all", "to": "all", "loss": 0.9}},
        {"expect_never_down": {"node": "all", "during": "slack * 2"}},
    )

    assert not result.passed
    assert "emitted member_down" in (result.error or "")
    assert result.false_downs

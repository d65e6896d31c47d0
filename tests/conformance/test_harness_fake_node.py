"""Harness logic against fake_node.py, a contract-speaking stand-in for real nodes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from conformance.cli import main as cli_main
from conformance.cluster import Cluster, Timing
from conformance.config import apply_overrides, preset_config
from conformance.errors import CommandTimeout, NodeExitedError, NodeStartError
from conformance.harness import RunOptions, ScenarioRun, run_scenario
from conformance.impls import Implementation
from conformance.report import build_report, write_report
from conformance.scenario import (
    ConnectStep,
    DisconnectStep,
    ExpectDownStep,
    ExpectNeverDownStep,
    LinkFaultStep,
    PartitionStep,
    PauseStep,
    Scenario,
    SendDatagramStep,
    SendUpdateStep,
    load_scenarios,
    parse_scenario,
)
from tests.conformance.conftest import FAKE_NODE, fake_implementation

pytestmark = pytest.mark.integration

SCENARIOS = load_scenarios()
FAST = Timing(startup=20.0, reply=5.0, stop_grace=5.0)


def registry() -> dict[str, Implementation]:
    return {"fake": fake_implementation("fake"), "fake2": fake_implementation("fake2")}


def options(tmp_path: Path, **changes: Any) -> RunOptions:
    return RunOptions(
        report_dir=tmp_path, registry=registry(), seed="1", timing=FAST, **changes
    )


def new_cluster(tmp_path: Path, timing: Timing = FAST) -> Cluster:
    overrides = (("probe_period_ms", 200),)
    config = apply_overrides(preset_config("simple"), dict(overrides))
    return Cluster(tmp_path, "simple", overrides, config, timing, seed="1")


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def runs_on_fake_nodes(scenario: Scenario) -> bool:
    """Return whether fake nodes can pass the scenario.

    A fake node counts every datagram that is not its JSON as a decode error
    and never raises its incarnation, so it cannot pass send_datagram or
    send_update expectations or a refutation check. It has no indirect
    probes, so a cut link makes it declare the other side down, and it
    never contacts a member it declared down, so a partition or a long
    pause does not heal. The process runtime cannot run disconnect and
    connect steps at all.
    """
    return not any(
        isinstance(
            step,
            SendDatagramStep
            | SendUpdateStep
            | DisconnectStep
            | ConnectStep
            | PartitionStep,
        )
        or (isinstance(step, ExpectNeverDownStep) and step.refuted)
        or (isinstance(step, LinkFaultStep) and step.fault.cut)
        or (isinstance(step, ExpectDownStep) and step.node in _paused(scenario))
        for step in scenario.steps
    )


def _paused(scenario: Scenario) -> set[str]:
    return {step.node for step in scenario.steps if isinstance(step, PauseStep)}


@pytest.mark.parametrize(
    "name",
    [name for name, scenario in SCENARIOS.items() if runs_on_fake_nodes(scenario)],
)
def test_scenario_passes_with_fake_nodes(name: str, tmp_path: Path) -> None:
    result = asyncio.run(run_scenario(SCENARIOS[name], "fake+fake2", options(tmp_path)))

    assert result.passed, result.error
    assert (
        result.measurements["converge"].seconds
        <= result.measurements["converge"].bound_seconds
    )


def test_crash_detect_measures_detection(tmp_path: Path) -> None:
    result = asyncio.run(
        run_scenario(SCENARIOS["crash_detect"], "fake", options(tmp_path))
    )

    detect = result.measurements["detect"]
    # fake_node declares a member down after suspect_to_down_after plus two
    # probe periods of silence: 1.5 s + 2 * 0.5 s.
    assert detect.seconds >= 2.0
    assert detect.seconds <= detect.bound_seconds


def test_mixed_run_counts_cross_traffic(tmp_path: Path) -> None:
    result = asyncio.run(
        run_scenario(SCENARIOS["converge"], "fake+fake2", options(tmp_path))
    )

    assert result.wire_counts["fake->fake2"]["ping"] > 0
    assert result.wire_counts["fake2->fake"]["announce"] > 0
    assert "fake->fake" not in result.wire_counts


def test_run_writes_timeline_and_logs(tmp_path: Path) -> None:
    result = asyncio.run(run_scenario(SCENARIOS["converge"], "fake", options(tmp_path)))
    run_dir = Path(result.run_dir)

    lines = (run_dir / "timeline.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert events
    assert [event["ts"] for event in events] == sorted(event["ts"] for event in events)
    assert {event["node"] for event in events} == {"n0", "n1", "n2", "n3", "n4"}
    assert (run_dir / "n0.0.log").exists()


def test_failed_expectation_reports_missing_state(tmp_path: Path) -> None:
    scenario = parse_scenario(
        {
            "name": "too_strict",
            "nodes": 3,
            "config": {"preset": "simple", "set": {"probe_period_ms": 2000}},
            "steps": [{"start": {}}, {"wait_converged": {"within": "0.001"}}],
        },
        "inline",
    )

    result = asyncio.run(run_scenario(scenario, "fake", options(tmp_path)))

    assert result.passed is False
    assert result.error is not None
    assert "step 2 (wait_converged): not satisfied within 0.00 s" in result.error
    # n0 learns of n2 only from a Ping, and the first one is 2 s away.
    assert "n0 lists n2" in result.error
    assert len(result.nodes) == 3


def test_start_failure_names_command_and_log(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path)
    broken = fake_implementation("fake", "--fake-mode", "exit-before-ready")

    async def start() -> None:
        try:
            await cluster.start_node("n0", broken)
        finally:
            await cluster.close()

    with pytest.raises(NodeStartError) as caught:
        asyncio.run(start())

    message = str(caught.value)
    assert "exited with status 3" in message
    assert str(FAKE_NODE) in message
    assert "simulated start-up failure" in message


def test_missing_program_is_start_error(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path)
    missing = Implementation(
        name="ghost", command=("/nonexistent/ghost-node",), label="ghost"
    )

    with pytest.raises(NodeStartError) as caught:
        asyncio.run(cluster.start_node("n0", missing))

    assert "/nonexistent/ghost-node" in str(caught.value)


def test_missing_ready_line_times_out(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path, Timing(startup=1.0, reply=1.0, stop_grace=1.0))
    silent = fake_implementation("fake", "--fake-mode", "no-ready")

    with pytest.raises(NodeStartError) as caught:
        asyncio.run(cluster.start_node("n0", silent))

    assert "did not send its ready line within 1 s" in str(caught.value)


def test_invalid_ready_line_is_start_error(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path)
    garbled = fake_implementation("fake", "--fake-mode", "bad-ready")

    with pytest.raises(NodeStartError) as caught:
        asyncio.run(cluster.start_node("n0", garbled))

    assert "invalid ready line" in str(caught.value)


def test_config_mismatch_is_start_error(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path)
    wrong = fake_implementation("fake", "--fake-mode", "wrong-config")

    with pytest.raises(NodeStartError) as caught:
        asyncio.run(cluster.start_node("n0", wrong))

    assert "probe_period_ms is 300, expected 200" in str(caught.value)


def test_unanswered_command_times_out(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path, Timing(startup=20.0, reply=0.5, stop_grace=2.0))
    mute = fake_implementation("fake", "--fake-mode", "mute")

    async def ask() -> None:
        try:
            await cluster.start_node("n0", mute)
            await cluster.members("n0")
        finally:
            await cluster.close()

    with pytest.raises(CommandTimeout) as caught:
        asyncio.run(ask())

    assert "no reply to 'members'" in str(caught.value)


def test_unexpected_exit_fails_health_check(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path)
    crashing = fake_implementation("fake", "--fake-mode", "crash-after-ready")

    async def watch() -> None:
        try:
            node = await cluster.start_node("n0", crashing)
            await node.process.wait(FAST.startup)
            cluster.check_health()
        finally:
            await cluster.close()

    with pytest.raises(NodeExitedError) as caught:
        asyncio.run(watch())

    assert "exited unexpectedly with status 1" in str(caught.value)


def test_kill_and_restart_reuse_address(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path)

    async def cycle() -> dict[str, Any]:
        try:
            first = await cluster.start_node("n0", fake_implementation())
            await cluster.kill("n0")
            second = await cluster.restart("n0", renewed=True, seeds=[])
            return {
                "first_status": first.process.returncode,
                "first_bind": first.bind,
                "second_bind": second.bind,
                "renewal": second.identity.renewal,
                "command": second.process.command,
            }
        finally:
            await cluster.close()

    outcome = asyncio.run(cycle())

    assert outcome["first_status"] == -9
    assert outcome["second_bind"] == outcome["first_bind"]
    assert outcome["renewal"] == 1
    assert "--bind" in outcome["command"]
    assert outcome["first_bind"] in outcome["command"]


def test_stop_exits_with_status_zero(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path)

    async def stop() -> int | None:
        try:
            node = await cluster.start_node("n0", fake_implementation())
            await cluster.stop("n0")
            return node.process.returncode
        finally:
            await cluster.close()

    assert asyncio.run(stop()) == 0
    assert cluster.problems == []


def test_close_ends_every_process(tmp_path: Path) -> None:
    cluster = new_cluster(tmp_path)

    async def start_and_close() -> list[int]:
        nodes = [
            await cluster.start_node(f"n{i}", fake_implementation()) for i in range(3)
        ]
        await cluster.close()
        return [node.process.pid for node in nodes]

    pids = asyncio.run(start_and_close())

    assert all(process_gone(pid) for pid in pids)


def test_cancelled_run_ends_every_process(tmp_path: Path) -> None:
    # Ctrl-C cancels the main task; the run must still end its nodes.
    run = ScenarioRun(SCENARIOS["crash_detect"], "fake", options(tmp_path))

    async def cancel_midway() -> list[int]:
        task = asyncio.create_task(run.run())
        while len(run.cluster.running()) < 5:
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return [node.process.pid for node in run.cluster.history]

    pids = asyncio.run(cancel_midway())

    assert len(pids) == 5
    assert all(process_gone(pid) for pid in pids)


def test_report_lists_results_and_wire_counts(tmp_path: Path) -> None:
    passed = asyncio.run(
        run_scenario(SCENARIOS["converge"], "fake+fake2", options(tmp_path))
    )
    failed = asyncio.run(
        run_scenario(SCENARIOS["converge"], "fake", options(tmp_path, slack_ms=0))
    )
    failed.passed, failed.error = False, "forced failure for the report"
    report = build_report(
        [passed, failed], seed="1", runtime="process", registry=registry()
    )

    json_path, md_path = write_report(tmp_path, report, [passed, failed])

    data = json.loads(json_path.read_text())
    junit = (tmp_path / "junit.xml").read_text()
    assert 'name="converge[fake+fake2]"' in junit
    assert '<failure message="forced failure for the report"' in junit
    assert data["runtime"] == "process"
    assert data["seed"] == "1"
    assert data["versions"] == {"fake": ["0.0 (fake)"], "fake2": ["0.0 (fake)"]}
    assert data["results"][0]["scenario"] == "converge"
    assert data["results"][0]["mix"] == "fake+fake2"
    assert "converge_seconds" in data["results"][0]
    assert "converge_bound_seconds" in data["results"][0]
    assert data["results"][1]["error"] == "forced failure for the report"
    counts = data["wire"]["message_counts"]
    assert set(counts) >= {"py->rust", "rust->py", "fake->fake2"}
    assert counts["fake->fake2"]["ping"] > 0
    markdown = md_path.read_text()
    assert "| converge | pass" in markdown
    assert "### converge-fake" in markdown
    assert "n0.0.log" in markdown


def _fake_impl_option(name: str = "fake") -> str:
    return f"{name}={sys.executable} {FAKE_NODE}"


def test_cli_run_writes_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli_main(
        [
            "run",
            "--impl",
            _fake_impl_option(),
            "--mix",
            "fake",
            "--scenario",
            "converge",
            "--report-dir",
            str(tmp_path),
            "--seed",
            "7",
        ]
    )

    out = capsys.readouterr().out
    assert status == 0
    assert "converge" in out
    assert "PASS" in out
    assert (tmp_path / "report.json").exists()
    assert (tmp_path / "report.md").exists()


def test_cli_run_fails_on_failed_scenario(tmp_path: Path) -> None:
    status = cli_main(
        [
            "run",
            "--impl",
            _fake_impl_option(),
            "--impl",
            "broken=/nonexistent/node",
            "--mix",
            "broken",
            "--scenario",
            "converge",
            "--report-dir",
            str(tmp_path),
        ]
    )

    report = json.loads((tmp_path / "report.json").read_text())
    assert status == 1
    assert report["results"][0]["passed"] is False
    assert "/nonexistent/node" in report["results"][0]["error"]


def test_cli_rejects_unknown_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli_main(["run", "--scenario", "nope", "--report-dir", str(tmp_path)])

    assert status == 2
    assert "unknown scenario(s) nope" in capsys.readouterr().err


def test_cli_rejects_unknown_mix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli_main(["run", "--mix", "cobol", "--report-dir", str(tmp_path)])

    assert status == 2
    assert "unknown implementation 'cobol'" in capsys.readouterr().err

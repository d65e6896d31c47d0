"""Scenario loading, config presets and bound derivation; no processes start."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.bounds import Bound
from conformance.config import (
    Periodic,
    apply_overrides,
    config_mismatches,
    parse_set_option,
    preset_config,
)
from conformance.errors import ScenarioError
from conformance.faults import LinkFault
from conformance.impls import build_registry, mix_layout, parse_impl_option
from conformance.scenario import (
    ConnectStep,
    DisconnectStep,
    ExpectDownStep,
    ExpectErrorsStep,
    ExpectNeverDownStep,
    ExpectPartitionedStep,
    ExpectRejoinedStep,
    HealStep,
    KillStep,
    LinkFaultStep,
    PartitionStep,
    PauseStep,
    ResumeStep,
    SendDatagramStep,
    SendUpdateStep,
    StartStep,
    load_scenario,
    load_scenarios,
    parse_scenario,
)

MINIMAL: dict[str, Any] = {
    "name": "sample",
    "nodes": 3,
    "config": {"preset": "simple", "set": {"probe_period_ms": 500}},
    "bounds": {
        "detect": "probe_period * 2 * (nodes - 1) + suspect_to_down_after + slack"
    },
    "steps": [
        {"start": {"nodes": "all"}},
        {"wait_converged": {"within": "probe_period * 10"}},
        {"kill": {"node": "n1"}},
        {"expect_down": {"node": "n1", "within": "detect"}},
    ],
}


def scenario_with(**changes: Any) -> dict[str, Any]:
    data = {**MINIMAL, **changes}
    data["steps"] = list(data["steps"])
    return data


def with_step(index: int, step: dict[str, Any]) -> dict[str, Any]:
    data = scenario_with()
    data["steps"][index] = step
    return data


def test_shipped_scenarios_load() -> None:
    scenarios = load_scenarios()

    assert set(scenarios) == {
        "converge",
        "crash_detect",
        "rejoin_renewed",
        "restart_old_identity",
        "broadcast",
        "malformed_datagrams",
        "pause_refute",
        "disconnect",
        "packet_loss",
        "one_way_link",
        "partition_heal",
        "long_pause",
        "mass_join",
        "delay_duplicate_reorder",
        "restarts",
        "late_and_forged_updates",
    }


def test_restart_old_identity_enables_notify_down_members() -> None:
    scenario = load_scenarios()["restart_old_identity"]

    assert scenario.config.build().notify_down_members is True


def test_minimal_scenario_parses_steps() -> None:
    scenario = parse_scenario(scenario_with(), "sample.yaml")

    assert scenario.nodes == ("n0", "n1", "n2")
    assert scenario.steps[0] == StartStep(nodes=("n0", "n1", "n2"), seed="previous")
    assert scenario.steps[2] == KillStep(node="n1")
    assert isinstance(scenario.steps[3], ExpectDownStep)


def test_scenario_is_frozen() -> None:
    scenario = parse_scenario(scenario_with(), "sample.yaml")

    with pytest.raises(dataclasses.FrozenInstanceError):
        scenario.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            scenario_with(colour="red"), "unknown key(s) 'colour'", id="top-level-key"
        ),
        pytest.param(
            scenario_with(config={"preset": "simple", "sets": {}}),
            "unknown key(s) 'sets'",
            id="config-key",
        ),
        pytest.param(
            with_step(2, {"kill": {"node": "n1", "signal": 9}}),
            "unknown key(s) 'signal'",
            id="step-argument",
        ),
        pytest.param(
            with_step(2, {"partition_all": {"node": "n1"}}),
            "unknown step kind 'partition_all'",
            id="step-kind",
        ),
        pytest.param(
            scenario_with(config={"preset": "simple", "set": {"probe_perid_ms": 5}}),
            "unknown config field 'probe_perid_ms'",
            id="config-field",
        ),
    ],
)
def test_loader_rejects_unknown_keys(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "sample.yaml")

    assert message in str(caught.value)
    assert "sample.yaml" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            scenario_with(config={"preset": "lan"}),
            "invalid config preset 'lan'",
            id="preset",
        ),
        pytest.param(
            scenario_with(
                config={"preset": "simple", "set": {"probe_period_ms": "fast"}}
            ),
            "expected a non-negative integer of milliseconds",
            id="duration-value",
        ),
        pytest.param(
            scenario_with(
                config={"preset": "simple", "set": {"periodic_gossip": "200"}}
            ),
            "expected off or FREQUENCY_MS:NUM_MEMBERS",
            id="periodic-value",
        ),
        pytest.param(
            scenario_with(bounds={"detect": "probe_period * rounds"}),
            "unknown name 'rounds'",
            id="bound-variable",
        ),
        pytest.param(
            scenario_with(bounds={"detect": "probe_period *"}),
            "invalid bound",
            id="bound-syntax",
        ),
        pytest.param(
            scenario_with(bounds={"detect": "__import__('os')"}),
            "only numbers, names",
            id="bound-call",
        ),
        pytest.param(
            with_step(
                3, {"expect_down": {"node": "n1", "within": "probe_period + later"}}
            ),
            "unknown name 'later'",
            id="inline-bound",
        ),
        pytest.param(
            with_step(2, {"kill": {"node": "n7"}}), "unknown node 'n7'", id="node-name"
        ),
        pytest.param(
            scenario_with(steps=[*MINIMAL["steps"][:3], {"kill": {"node": "n1"}}]),
            "n1 is not running",
            id="kill-twice",
        ),
        pytest.param(
            with_step(3, {"restart": {"node": "n0", "identity": "renewed"}}),
            "must have been started and then killed",
            id="restart-running",
        ),
        pytest.param(
            with_step(3, {"expect_broadcast": {"key": "k", "within": "slack"}}),
            "no earlier broadcast step uses key 'k'",
            id="broadcast-key",
        ),
        pytest.param(
            scenario_with(steps=[{"kill": {"node": "n0"}}]),
            "n0 is not running",
            id="kill-before-start",
        ),
        pytest.param(
            with_step(
                3,
                {
                    "broadcast": {
                        "node": "n0",
                        "key": "k",
                        "version": 1,
                        "data": "abc",
                        "send": True,
                    }
                },
            ),
            "hex digit pairs",
            id="broadcast-data",
        ),
    ],
)
def test_loader_rejects_invalid_scenario(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "sample.yaml")

    assert message in str(caught.value)


CONVERGED: list[dict[str, Any]] = [
    {"start": {"nodes": "all"}},
    {"wait_converged": {"within": "probe_period * 10"}},
]


def with_steps(*steps: dict[str, Any]) -> dict[str, Any]:
    """Return MINIMAL with ``steps`` after a start and a wait_converged."""
    return scenario_with(steps=[*CONVERGED, *steps])


def test_pause_and_resume_parse() -> None:
    data = with_steps(
        {"pause": {"node": "n1"}},
        {"resume": {"node": "n1", "after": "3 * probe_period"}},
        {"expect_never_down": {"node": "n1", "during": "slack", "refuted": True}},
    )

    steps = parse_scenario(data, "sample.yaml").steps

    assert steps[2] == PauseStep(node="n1")
    assert isinstance(steps[3], ResumeStep)
    assert steps[3].after is not None
    assert str(steps[3].after) == "3 * probe_period"
    assert isinstance(steps[4], ExpectNeverDownStep)
    assert steps[4].refuted is True


def test_resume_after_defaults_to_none() -> None:
    data = with_steps({"pause": {"node": "n1"}}, {"resume": {"node": "n1"}})

    steps = parse_scenario(data, "sample.yaml").steps

    assert steps[3] == ResumeStep(node="n1", after=None)


def test_send_datagram_and_expect_errors_parse() -> None:
    data = with_steps(
        {"send_datagram": {"node": "n0", "kind": "garbage", "repeat": 5}},
        {
            "expect_errors": {
                "node": "n0",
                "class": "decode",
                "at_least": 5,
                "within": "slack",
            }
        },
    )

    steps = parse_scenario(data, "sample.yaml").steps

    assert steps[2] == SendDatagramStep(node="n0", kind="garbage", repeat=5)
    assert isinstance(steps[3], ExpectErrorsStep)
    assert steps[3].error_class == "decode"
    assert steps[3].at_least == 5


def test_send_update_parses_replay_and_unknown_fields() -> None:
    data = with_steps(
        {
            "send_update": {
                "node": "n0",
                "about": "n0",
                "state": "suspect",
                "incarnation": 1,
                "unknown_fields": True,
                "repeat": 3,
            }
        },
    )

    step = parse_scenario(data, "sample.yaml").steps[2]

    assert step == SendUpdateStep(
        node="n0",
        about="n0",
        state="suspect",
        incarnation=1,
        unknown_fields=True,
        repeat=3,
    )


def test_send_update_defaults_to_one_plain_copy() -> None:
    data = with_steps(
        {
            "send_update": {
                "node": "n0",
                "about": "n1",
                "state": "alive",
                "incarnation": 0,
            }
        }
    )

    step = parse_scenario(data, "sample.yaml").steps[2]

    assert isinstance(step, SendUpdateStep)
    assert step.unknown_fields is False
    assert step.repeat == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"unknown_fields": "yes"}, "'unknown_fields' must be true or false"),
        ({"repeat": 0}, "'repeat' must be a positive integer"),
        ({"repeat": 101}, "'repeat'"),
        ({"replay": 2}, "replay"),
    ],
)
def test_send_update_rejects_bad_options(extra: dict[str, Any], message: str) -> None:
    args = {"node": "n0", "about": "n1", "state": "alive", "incarnation": 0, **extra}

    with pytest.raises(ScenarioError) as caught:
        parse_scenario(with_steps({"send_update": args}), "sample.yaml")

    assert message in str(caught.value)


def test_disconnect_and_connect_parse() -> None:
    data = with_steps(
        {"disconnect": {"node": "n1"}},
        {"expect_down": {"node": "n1", "within": "detect"}},
        {"connect": {"node": "n1", "after": "remove_down_after"}},
        {"expect_rejoined": {"node": "n1", "renewal_delta": 0, "within": "slack"}},
    )

    steps = parse_scenario(data, "sample.yaml").steps

    assert steps[2] == DisconnectStep(node="n1")
    assert isinstance(steps[3], ExpectDownStep)
    assert isinstance(steps[4], ConnectStep)
    assert str(steps[4].after) == "remove_down_after"
    assert isinstance(steps[5], ExpectRejoinedStep)
    assert steps[5].renewal_delta == 0


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        pytest.param(
            [{"connect": {"node": "n1"}}], "n1 is not disconnected", id="connect-first"
        ),
        pytest.param(
            [{"disconnect": {"node": "n1"}}, {"disconnect": {"node": "n1"}}],
            "n1 is already disconnected",
            id="disconnect-twice",
        ),
        pytest.param(
            [{"kill": {"node": "n1"}}, {"disconnect": {"node": "n1"}}],
            "n1 is not running",
            id="disconnect-killed",
        ),
        pytest.param(
            [
                {"disconnect": {"node": "n1"}},
                {"connect": {"node": "n1"}},
                {"expect_down": {"node": "n1", "within": "detect"}},
            ],
            "n1 must have been killed, stopped, disconnected, partitioned or paused",
            id="expect-down-after-connect",
        ),
    ],
)
def test_disconnect_order_errors(steps: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(with_steps(*steps), "sample.yaml")

    assert message in str(caught.value)


def test_expect_never_down_accepts_all() -> None:
    data = with_steps({"expect_never_down": {"node": "all", "during": "slack"}})

    steps = parse_scenario(data, "sample.yaml").steps

    assert isinstance(steps[2], ExpectNeverDownStep)
    assert steps[2].node == "all"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        pytest.param(
            [{"pause": {"node": "n1"}}, {"pause": {"node": "n1"}}],
            "n1 is already paused",
            id="pause-twice",
        ),
        pytest.param(
            [{"resume": {"node": "n1"}}],
            "n1 is not paused",
            id="resume-running",
        ),
        pytest.param(
            [{"pause": {"node": "n1"}}],
            "n1 is still paused after the last step",
            id="paused-at-end",
        ),
        pytest.param(
            [
                {"pause": {"node": "n1"}},
                {"wait_converged": {"within": "slack"}},
                {"resume": {"node": "n1"}},
            ],
            "cannot run while n1 is paused",
            id="expectation-while-paused",
        ),
        pytest.param(
            [
                {"pause": {"node": "n1"}},
                {"stop": {"node": "n1"}},
            ],
            "cannot run while n1 is paused",
            id="stop-while-paused",
        ),
        pytest.param(
            [{"kill": {"node": "n1"}}, {"pause": {"node": "n1"}}],
            "n1 is not running",
            id="pause-killed",
        ),
        pytest.param(
            [{"pause": {"node": "n1"}}, {"resume": {"node": "n1", "after": True}}],
            "'after' must be a bound name or an expression",
            id="resume-after",
        ),
        pytest.param(
            [{"send_datagram": {"node": "n0", "kind": "noise"}}],
            "unknown datagram kind 'noise'",
            id="datagram-kind",
        ),
        pytest.param(
            [{"send_datagram": {"node": "n0", "kind": "garbage", "repeat": 0}}],
            "'repeat' must be a positive integer",
            id="datagram-repeat",
        ),
        pytest.param(
            [{"send_datagram": {"node": "n0", "kind": "garbage", "repeat": 101}}],
            "'repeat' must be at most 100",
            id="datagram-repeat-limit",
        ),
        pytest.param(
            [
                {
                    "expect_errors": {
                        "node": "n0",
                        "class": "decode",
                        "at_least": 1,
                        "within": "1",
                    }
                }
            ],
            "no earlier send_datagram step sends to n0",
            id="errors-without-send",
        ),
        pytest.param(
            [
                {"send_datagram": {"node": "n0", "kind": "garbage"}},
                {"kill": {"node": "n0"}},
                {"restart": {"node": "n0", "identity": "renewed"}},
                {
                    "expect_errors": {
                        "node": "n0",
                        "class": "decode",
                        "at_least": 1,
                        "within": "1",
                    }
                },
            ],
            "no earlier send_datagram step sends to n0 since it started",
            id="errors-after-restart",
        ),
        pytest.param(
            [
                {"send_datagram": {"node": "n0", "kind": "garbage"}},
                {
                    "expect_errors": {
                        "node": "n0",
                        "class": "parse",
                        "at_least": 1,
                        "within": "1",
                    }
                },
            ],
            "unknown error class 'parse'",
            id="errors-class",
        ),
        pytest.param(
            [
                {"send_datagram": {"node": "n0", "kind": "garbage"}},
                {"expect_errors": {"node": "n0", "class": "decode", "within": "1"}},
            ],
            "missing key(s) 'at_least'",
            id="errors-at-least",
        ),
        pytest.param(
            [{"expect_never_down": {"node": "all", "during": "1", "refuted": True}}],
            "'refuted' needs a single node",
            id="refuted-all",
        ),
        pytest.param(
            [{"expect_never_down": {"node": "n1", "during": "1", "refuted": True}}],
            "'refuted' needs an earlier pause step for n1",
            id="refuted-without-pause",
        ),
        pytest.param(
            [{"expect_never_down": {"node": "n1"}}],
            "missing key(s) 'during'",
            id="never-down-during",
        ),
    ],
)
def test_loader_rejects_invalid_fault_steps(
    steps: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(with_steps(*steps), "sample.yaml")

    assert message in str(caught.value)


def test_send_datagram_needs_second_node_for_sender() -> None:
    data = scenario_with(
        nodes=1,
        steps=[
            {"start": {"nodes": "all"}},
            {"send_datagram": {"node": "n0", "kind": "bad_count"}},
        ],
    )

    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "sample.yaml")

    assert "no other node is running" in str(caught.value)


def test_send_datagram_without_sender_runs_alone() -> None:
    data = scenario_with(
        nodes=1,
        steps=[
            {"start": {"nodes": "all"}},
            {"send_datagram": {"node": "n0", "kind": "garbage"}},
        ],
    )

    steps = parse_scenario(data, "sample.yaml").steps

    assert steps[1] == SendDatagramStep(node="n0", kind="garbage")


def test_pause_refute_pause_is_shorter_than_suspicion() -> None:
    scenario = load_scenarios()["pause_refute"]
    variables = {
        **scenario.config.build().bound_variables(),
        "nodes": float(len(scenario.nodes)),
        "slack": scenario.slack_ms / 1000,
    }
    bounds = dict(scenario.bounds)

    pause = bounds["pause"].seconds(variables)

    # 2 * (4 - 1) probe periods of 0.5 s; suspicion lasts 6 s.
    assert pause == pytest.approx(3.0)
    assert pause + 1.0 < variables["suspect_to_down_after"]


def test_load_scenario_reports_yaml_errors(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n", encoding="utf-8")

    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)

    assert str(path) in str(caught.value)


def test_load_scenarios_rejects_duplicate_names(tmp_path: Path) -> None:
    for file_name in ("a.yaml", "b.yaml"):
        (tmp_path / file_name).write_text(yaml.safe_dump(MINIMAL), encoding="utf-8")

    with pytest.raises(ScenarioError) as caught:
        load_scenarios(tmp_path)

    assert "also used by" in str(caught.value)


def test_crash_detect_bound_derives_from_config() -> None:
    scenario = load_scenarios()["crash_detect"]
    config = scenario.config.build()
    variables = {
        **config.bound_variables(),
        "nodes": 5.0,
        "slack": scenario.slack_ms / 1000,
    }
    detect = dict(scenario.bounds)["detect"]

    # probe_period 0.5 s * 2 * 4 + suspect_to_down_after 1.5 s + slack 3 s.
    assert detect.seconds(variables) == pytest.approx(8.5)


def test_bound_follows_config_override() -> None:
    bound = Bound.parse("probe_period * 2 + suspect_to_down_after")
    config = apply_overrides(preset_config("simple"), {"probe_period_ms": 200})

    assert bound.seconds(config.bound_variables()) == pytest.approx(0.4 + 3.0)


def test_bound_rejects_non_positive_value() -> None:
    bound = Bound.parse("probe_period - probe_period")

    with pytest.raises(ScenarioError):
        bound.seconds(preset_config("simple").bound_variables())


def test_bound_of_periodic_off_is_zero() -> None:
    variables = preset_config("simple").bound_variables()

    assert variables["periodic_gossip"] == 0.0


def test_simple_preset_matches_foca() -> None:
    config = preset_config("simple")

    assert config.probe_period_ms == 1500
    assert config.probe_rtt_ms == 500
    assert config.max_transmissions == 10
    assert config.suspect_to_down_after_ms == 3000
    assert config.notify_down_members is False
    assert config.periodic_gossip is None


@pytest.mark.parametrize(
    ("size", "max_transmissions", "suspect_ms"),
    [
        pytest.param(1, 1, 4000, id="lan-1"),
        pytest.param(3, 2, 4000, id="lan-3"),
        pytest.param(5, 3, 4000, id="lan-5"),
        pytest.param(10, 4, 4000, id="lan-10"),
        pytest.param(20, 5, 5204.12, id="lan-20"),
        pytest.param(100, 8, 8000, id="lan-100"),
    ],
)
def test_lan_preset_matches_foca(
    size: int, max_transmissions: int, suspect_ms: float
) -> None:
    config = preset_config(f"lan:{size}")

    assert config.max_transmissions == max_transmissions
    assert config.suspect_to_down_after_ms == pytest.approx(suspect_ms, abs=0.01)
    assert config.periodic_gossip == Periodic(200, 3)
    assert config.notify_down_members is True


def test_wan_preset_matches_foca() -> None:
    config = preset_config("wan:100")

    assert config.probe_period_ms == 5000
    assert config.probe_rtt_ms == 3000
    assert config.suspect_to_down_after_ms == pytest.approx(60_000)
    assert config.periodic_announce_to_down_members == Periodic(125_000, 3)


def test_set_option_parses_each_kind() -> None:
    assert parse_set_option("probe_period_ms=250") == ("probe_period_ms", 250)
    assert parse_set_option("notify_down_members=true") == ("notify_down_members", True)
    assert parse_set_option("periodic_gossip=off") == ("periodic_gossip", None)
    assert parse_set_option("periodic_announce=1000:2") == (
        "periodic_announce",
        Periodic(1000, 2),
    )


def test_set_option_rejects_missing_equals() -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_set_option("probe_period_ms")

    assert "FIELD=VALUE" in str(caught.value)


def _reported(preset: str) -> dict[str, Any]:
    config = preset_config(preset)
    report: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        report[field.name] = str(value) if isinstance(value, Periodic) else value
    return report


def test_config_mismatches_accepts_matching_report() -> None:
    assert config_mismatches(preset_config("lan:5"), _reported("lan:5")) == []


def test_config_mismatches_accepts_rounded_duration() -> None:
    report = _reported("lan:20") | {"suspect_to_down_after_ms": 5204}

    assert config_mismatches(preset_config("lan:20"), report) == []


def test_config_mismatches_accepts_periodic_object() -> None:
    report = _reported("lan:5") | {
        "periodic_gossip": {"frequency_ms": 200, "num_members": 3}
    }

    assert config_mismatches(preset_config("lan:5"), report) == []


def test_config_mismatches_names_wrong_field() -> None:
    report = _reported("lan:5") | {"periodic_gossip": "off", "probe_rtt_ms": 450}

    problems = config_mismatches(preset_config("lan:5"), report)

    assert "periodic_gossip is off, expected 200:3" in problems
    assert "probe_rtt_ms is 450, expected 500" in problems


def test_config_mismatches_names_missing_field() -> None:
    report = _reported("simple")
    del report["max_packet_size"]

    problems = config_mismatches(preset_config("simple"), report)

    assert problems == ["max_packet_size is missing (expected 1400)"]


def test_mixed_layout_alternates_python_and_rust() -> None:
    registry = build_registry([])
    layout = mix_layout("mixed", ("n0", "n1", "n2", "n3", "n4"), registry)

    assert [layout[name].name for name in layout] == [
        "python",
        "rust",
        "python",
        "rust",
        "python",
    ]


def test_mix_layout_rejects_unknown_implementation() -> None:
    with pytest.raises(ScenarioError) as caught:
        mix_layout("python+java", ("n0",), build_registry([]))

    assert "unknown implementation 'java'" in str(caught.value)


def test_impl_option_adds_implementation() -> None:
    registry = build_registry(["mine=/opt/node --verbose 'two words'"])

    assert registry["mine"].command == ("/opt/node", "--verbose", "two words")
    assert registry["mine"].needs_rust_build is False


def test_impl_option_replacing_rust_skips_build() -> None:
    registry = build_registry(["rust=/opt/rust_peer"])

    assert registry["rust"].needs_rust_build is False
    assert registry["rust"].label == "rust"


def test_impl_option_rejects_empty_command() -> None:
    with pytest.raises(ScenarioError):
        parse_impl_option("mine=")


def test_link_fault_partition_and_heal_parse() -> None:
    data = scenario_with()
    data["nodes"] = 4
    data["steps"] = [
        {"start": {"nodes": "all"}},
        {"link_fault": {"from": ["n0"], "to": "all", "loss": 0.3, "both_ways": True}},
        {"partition": {"nodes": ["n1", "n2"], "direction": "outbound"}},
        {"expect_partitioned": {"within": "detect", "measure": "split"}},
        {"expect_down": {"node": "n1", "within": "detect"}},
        {"heal": None},
        {"expect_rejoined": {"node": "n1", "within": "detect", "renewal_delta": 1}},
    ]

    steps = parse_scenario(data, "sample.yaml").steps

    assert steps[1] == LinkFaultStep(
        sources=("n0",),
        destinations=("n0", "n1", "n2", "n3"),
        both_ways=True,
        fault=LinkFault(loss=0.3),
    )
    assert steps[2] == PartitionStep(nodes=("n1", "n2"), direction="outbound")
    assert isinstance(steps[3], ExpectPartitionedStep)
    assert steps[3].measure == "split"
    assert steps[5] == HealStep()


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            {"link_fault": {"from": "all", "to": "all", "loss": 2}},
            "loss must be a probability from 0 to 1, got 2.0",
        ),
        (
            {"link_fault": {"from": ["n7"], "to": "all", "loss": 0.1}},
            "unknown node 'n7'",
        ),
        (
            {"link_fault": {"from": "all", "to": "all", "delay_ms": "5"}},
            "'delay_ms' must be a number",
        ),
        (
            {"partition": {"nodes": "all"}},
            "'nodes' must leave at least one node on the other side",
        ),
        (
            {"partition": {"nodes": ["n1"], "direction": "sideways"}},
            "'direction' must be both, outbound or inbound, got 'sideways'",
        ),
        (
            {"expect_partitioned": {"within": "detect"}},
            "no partition step since the last heal",
        ),
        (
            {"expect_stable": {"during": "detect", "types": ["pong"]}},
            "unknown name 'pong'",
        ),
    ],
)
def test_bad_fault_steps_name_the_problem(step: dict[str, Any], message: str) -> None:
    data = scenario_with()
    data["steps"] = [{"start": {"nodes": "all"}}, step]

    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "sample.yaml")

    assert message in str(caught.value)


def test_expect_down_may_watch_a_paused_node() -> None:
    data = scenario_with()
    data["steps"] = [
        {"start": {"nodes": "all"}},
        {"pause": {"node": "n1"}},
        {"expect_down": {"node": "n1", "within": "detect"}},
        {"resume": {"node": "n1"}},
        {"expect_rejoined": {"node": "n1", "within": "detect"}},
    ]

    steps = parse_scenario(data, "sample.yaml").steps

    assert steps[2] == ExpectDownStep(node="n1", within=steps[2].within)
    data["steps"][2] = {"expect_down": {"node": "n2", "within": "detect"}}
    with pytest.raises(ScenarioError, match="cannot run while n1 is paused"):
        parse_scenario(data, "sample.yaml")

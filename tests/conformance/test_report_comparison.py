"""The mixed-against-all-Rust comparison in report.json and report.md."""

from __future__ import annotations

from conformance.harness import Measurement, RunResult
from conformance.report import compare_mixed_with_rust


def _result(mix: str, detect: float, false_downs: int = 0) -> RunResult:
    return RunResult(
        scenario="crash",
        mix=mix,
        passed=True,
        measurements={
            "detect": Measurement(detect, 9.0),
            "converge": Measurement(1.0, 9.0),
        },
        false_downs=[f"down {index}" for index in range(false_downs)],
        variables={"probe_period": 0.5},
    )


def test_detection_within_one_probe_period_is_no_worse() -> None:
    rows = compare_mixed_with_rust([_result("rust", 3.0), _result("mixed", 3.4)])

    assert [row["measure"] for row in rows] == ["false positives", "detect (s)"]
    assert rows[0]["verdict"] == "no worse"
    assert rows[1]["verdict"] == "no worse"


def test_slower_detection_names_the_excess() -> None:
    rows = compare_mixed_with_rust([_result("rust", 2.0), _result("mixed", 3.5)])

    assert rows[1]["verdict"] == "slower by 1.50 s (3.0 probe periods)"


def test_more_false_positives_are_worse() -> None:
    rows = compare_mixed_with_rust(
        [_result("rust", 2.0), _result("mixed", 2.0, false_downs=2)]
    )

    assert rows[0] == {
        "scenario": "crash",
        "measure": "false positives",
        "rust": 0,
        "mixed": 2,
        "verdict": "worse",
    }


def test_failed_runs_are_not_compared() -> None:
    failed = _result("mixed", 2.0)
    failed.passed = False

    assert compare_mixed_with_rust([_result("rust", 2.0), failed]) == []

"""Write report.json, report.md and junit.xml for a suite run.

A run that the runtime could not do (``RunResult.unavailable``) counts
neither as passed nor as failed. It shows as ``n/a`` in the matrix, with its
reason in a section of report.md, and as a skipped test case in junit.xml.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conformance.contract import CONTRACT_VERSION, MESSAGE_TYPES
from conformance.harness import RunResult
from conformance.impls import Implementation

# Wire keys that every report lists, even when a run had no mixed cluster.
REQUIRED_WIRE_PAIRS = ("py->rust", "rust->py")

JUNIT_FILE = "junit.xml"


def aggregate_wire_counts(results: Sequence[RunResult]) -> dict[str, dict[str, int]]:
    """Sum the cross-implementation datagram counts of every run.

    ``py->rust`` and ``rust->py`` are always present with every message type,
    zero where nothing was received.
    """
    totals: dict[str, dict[str, int]] = {
        pair: dict.fromkeys(MESSAGE_TYPES, 0) for pair in REQUIRED_WIRE_PAIRS
    }
    for result in results:
        for pair, per_type in result.wire_counts.items():
            bucket = totals.setdefault(pair, dict.fromkeys(MESSAGE_TYPES, 0))
            for message, count in per_type.items():
                bucket[message] = bucket.get(message, 0) + count
    return totals


def _versions(results: Sequence[RunResult]) -> dict[str, list[str]]:
    seen: dict[str, set[str]] = {}
    for result in results:
        for impl, versions in result.versions().items():
            seen.setdefault(impl, set()).update(versions)
    return {impl: sorted(versions) for impl, versions in sorted(seen.items())}


def build_report(
    results: Sequence[RunResult],
    *,
    seed: str,
    runtime: str,
    registry: Mapping[str, Implementation],
    config_overrides: Sequence[tuple[str, Any]] = (),
    started_at: float | None = None,
    duration_seconds: float | None = None,
) -> dict[str, Any]:
    """Build the report.json object."""
    date = datetime.datetime.fromtimestamp(
        started_at if started_at is not None else datetime.datetime.now().timestamp(),
        tz=datetime.UTC,
    )
    passed = sum(1 for result in results if result.passed)
    unavailable = sum(1 for result in results if result.unavailable is not None)
    used = {node["impl"] for result in results for node in result.nodes}
    return {
        "date": date.isoformat(timespec="seconds"),
        "runtime": runtime,
        "seed": seed,
        "contract": CONTRACT_VERSION,
        "versions": _versions(results),
        "implementations": {
            name: " ".join(impl.command)
            for name, impl in sorted(registry.items())
            if name in used
        },
        "config_overrides": {name: str(value) for name, value in config_overrides},
        "harness": {"python": sys.version.split()[0], "platform": platform.platform()},
        "duration_seconds": round(duration_seconds, 3)
        if duration_seconds is not None
        else None,
        "summary": {
            "total": len(results),
            "passed": passed,
            "failed": len(results) - passed - unavailable,
            "unavailable": unavailable,
        },
        "results": [result.to_json() for result in results],
        "comparison": compare_mixed_with_rust(results),
        "wire": {
            "message_counts": aggregate_wire_counts(results),
            "note": (
                "SENDER->RECEIVER: datagrams of each message type that receivers "
                "decoded and accepted, summed from the stats of every node of every "
                "run, taken before each kill or stop and at the end of each run"
            ),
        },
    }


def _cell(result: RunResult | None) -> str:
    if result is None:
        return "-"
    if result.unavailable is not None:
        return "n/a"
    status = "pass" if result.passed else "**FAIL**"
    return f"{status} ({result.duration_seconds:.1f} s)"


def render_markdown(report: Mapping[str, Any], results: Sequence[RunResult]) -> str:
    """Render report.md: the scenario x mix matrix, the wire table and the failures."""
    scenarios = list(dict.fromkeys(result.scenario for result in results))
    mixes = list(dict.fromkeys(result.mix for result in results))
    by_key = {(result.scenario, result.mix): result for result in results}
    summary = report["summary"]
    lines = [
        "# Conformance report",
        "",
        f"- date: {report['date']}",
        f"- runtime: {report['runtime']}",
        f"- seed: {report['seed']}",
        *(
            [f"- duration: {report['duration_seconds']:.1f} s"]
            if report.get("duration_seconds") is not None
            else []
        ),
        f"- result: {summary['passed']} of {summary['total']} runs passed"
        + (
            f", {summary['unavailable']} not available in this runtime"
            if summary.get("unavailable")
            else ""
        ),
    ]
    for impl, versions in report["versions"].items():
        lines.append(f"- {impl}: {', '.join(versions)}")
    if report["config_overrides"]:
        overrides = ", ".join(f"{k}={v}" for k, v in report["config_overrides"].items())
        lines.append(f"- config overrides: {overrides}")

    lines += ["", "## Results", "", "| scenario | " + " | ".join(mixes) + " |"]
    lines.append("|---" * (len(mixes) + 1) + "|")
    for scenario in scenarios:
        cells = [_cell(by_key.get((scenario, mix))) for mix in mixes]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")

    lines += _measurement_table(scenarios, mixes, by_key)
    lines += _fault_table(results)
    lines += _comparison_table(report.get("comparison", []))

    counts = report["wire"]["message_counts"]
    pairs = list(counts)
    lines += [
        "",
        "## Datagrams decoded across implementations",
        "",
        "Counts of datagrams that the receiver decoded and accepted, by sender and "
        "receiver implementation.",
        "",
        "| message | " + " | ".join(pairs) + " |",
        "|---" * (len(pairs) + 1) + "|",
    ]
    for message in MESSAGE_TYPES:
        lines.append(
            f"| {message} | "
            + " | ".join(str(counts[p].get(message, 0)) for p in pairs)
            + " |"
        )

    lines += _verdict_table(results)

    skipped = [result for result in results if result.unavailable is not None]
    if skipped:
        lines += [
            "",
            f"## Not available in the {report['runtime']} runtime",
            "",
            "These runs were not started, so they neither passed nor failed.",
            "",
        ]
        lines += [f"- {result.run_id}: {result.unavailable}" for result in skipped]

    failures = [
        result for result in results if not result.passed and result.unavailable is None
    ]
    if failures:
        lines += ["", "## Failures"]
    for result in failures:
        lines += [
            "",
            f"### {result.run_id}",
            "",
            "```",
            result.error or "(no error message)",
            "```",
        ]
        if result.run_dir:
            lines += ["", f"Run folder: `{result.run_dir}`"]
        if result.nodes:
            lines += ["", "Node logs:", ""]
            for node in result.nodes:
                lines.append(
                    f"- {node['node']}.{node['generation']} ({node['impl']}, "
                    f"{node['bind']}, exit {node['exit_status']}): `{node['log']}`"
                )
        if result.last_events:
            lines += ["", f"Last {len(result.last_events)} events:", "", "```"]
            lines += [json.dumps(event) for event in result.last_events]
            lines.append("```")
    return "\n".join(lines) + "\n"


def _measurement_table(
    scenarios: Sequence[str],
    mixes: Sequence[str],
    by_key: Mapping[tuple[str, str], RunResult],
) -> list[str]:
    """Return the table of measured times: one column per mix, then the bound."""
    rows = []
    for scenario in scenarios:
        runs = [by_key.get((scenario, mix)) for mix in mixes]
        names = sorted({name for run in runs if run for name in run.measurements})
        for name in names:
            cells = []
            bound = None
            for run in runs:
                measurement = run.measurements.get(name) if run else None
                if measurement is None:
                    cells.append("-")
                    continue
                cells.append(f"{measurement.seconds:.2f}")
                bound = measurement.bound_seconds
            bound_text = "-" if bound is None else f"{bound:.2f}"
            rows.append(
                f"| {scenario} | {name} | " + " | ".join(cells) + f" | {bound_text} |"
            )
    if not rows:
        return []
    return [
        "",
        "## Measured times",
        "",
        "Seconds from the fault (or the start) to the moment the expectation was "
        "met; `_first` is the first node to see it, the plain name the last. "
        "The bound is the limit the scenario derives from its config.",
        "",
        "| scenario | measure | " + " | ".join(mixes) + " | bound (s) |",
        "|---" * (len(mixes) + 3) + "|",
        *rows,
    ]


def _fault_table(results: Sequence[RunResult]) -> list[str]:
    """Return the table of false positives, traffic and timelines per run."""
    ran = [result for result in results if result.unavailable is None]
    if not ran:
        return []
    lines = [
        "",
        "## False positives, traffic and timelines",
        "",
        "A false positive is a member_down that no kill, stop, pause, disconnect "
        "or cut link explains (see conformance/timeline.py). Traffic counts what "
        "the nodes sent, over the whole run: through the fault relay in the "
        "process runtime, from the receivers' decoded counts otherwise.",
        "",
        "| run | false positives | datagrams per node per s | bytes per node per s "
        "| timeline |",
        "|---|---|---|---|---|",
    ]
    for result in ran:
        traffic = result.traffic
        datagrams = traffic.get("datagrams_per_node_per_second")
        sent_bytes = traffic.get("bytes_per_node_per_second")
        image = (
            f"[png](runs/{Path(result.run_dir).name}/timeline.png)"
            if result.timeline_png
            else "-"
        )
        lines.append(
            f"| {result.run_id} | {len(result.false_downs)} | "
            f"{'-' if datagrams is None else datagrams} | "
            f"{'-' if sent_bytes is None else sent_bytes} | {image} |"
        )
    return lines


def _comparison_table(comparison: Sequence[Mapping[str, Any]]) -> list[str]:
    if not comparison:
        return []
    lines = [
        "",
        "## Mixed cluster against the all-Rust cluster",
        "",
        "Detection times and false positives of the mixed run beside the all-Rust "
        "run of the same scenario. A detection time is no worse when it exceeds "
        "the all-Rust one by at most one probe period, the step in which probes "
        "run. Each figure comes from one run: when a member is probed depends on "
        "each node's shuffled probe order, so one scenario's detection times vary "
        "between runs of the same mix by several probe periods.",
        "",
        "| scenario | measure | rust | mixed | verdict |",
        "|---|---|---|---|---|",
    ]
    for row in comparison:
        lines.append(
            f"| {row['scenario']} | {row['measure']} | {row['rust']} | "
            f"{row['mixed']} | {row['verdict']} |"
        )
    return lines


def compare_mixed_with_rust(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """Compare each scenario's mixed run with its all-Rust run.

    Rows cover the false-positive count and every detection time (a measure
    whose name contains ``detect`` or ``split``). Only scenarios where both
    runs passed are compared.
    """
    by_key = {(result.scenario, result.mix): result for result in results}
    rows: list[dict[str, Any]] = []
    for (scenario, mix), mixed in by_key.items():
        rust = by_key.get((scenario, "rust"))
        if mix != "mixed" or rust is None or not (rust.passed and mixed.passed):
            continue
        rows.append(
            {
                "scenario": scenario,
                "measure": "false positives",
                "rust": len(rust.false_downs),
                "mixed": len(mixed.false_downs),
                "verdict": "no worse"
                if len(mixed.false_downs) <= len(rust.false_downs)
                else "worse",
            }
        )
        tolerance = mixed.variables.get("probe_period", 0.0)
        for name in sorted(mixed.measurements):
            if ("detect" not in name and "split" not in name) or (
                name not in rust.measurements
            ):
                continue
            rust_seconds = rust.measurements[name].seconds
            mixed_seconds = mixed.measurements[name].seconds
            rows.append(
                {
                    "scenario": scenario,
                    "measure": f"{name} (s)",
                    "rust": round(rust_seconds, 2),
                    "mixed": round(mixed_seconds, 2),
                    "verdict": _detection_verdict(
                        mixed_seconds - rust_seconds, tolerance
                    ),
                }
            )
    return rows


def _detection_verdict(excess: float, probe_period: float) -> str:
    if excess <= probe_period:
        return "no worse"
    if probe_period <= 0:
        return f"slower by {excess:.2f} s"
    return f"slower by {excess:.2f} s ({excess / probe_period:.1f} probe periods)"


def _verdict_table(results: Sequence[RunResult]) -> list[str]:
    # Error classes each implementation counted per datagram kind, over all runs.
    classes: dict[str, dict[str, set[str]]] = {}
    for result in results:
        for verdict in result.datagram_verdicts:
            named = ", ".join(sorted(verdict["errors"])) or "no error"
            if not verdict["settled"]:
                named += " (not settled)"
            per_impl = classes.setdefault(verdict["kind"], {})
            per_impl.setdefault(verdict["impl"], set()).add(named)
    if not classes:
        return []
    impls = sorted({impl for per_impl in classes.values() for impl in per_impl})
    lines = [
        "",
        "## Malformed datagrams",
        "",
        "Error classes that nodes counted for each kind of hand-made datagram, "
        "by implementation; more than one entry in a cell means that runs differed.",
        "",
        "| kind | " + " | ".join(impls) + " |",
        "|---" * (len(impls) + 1) + "|",
    ]
    for kind, per_impl in classes.items():
        cells = ["; ".join(sorted(per_impl.get(impl, {"-"}))) for impl in impls]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return lines


def render_junit(report: Mapping[str, Any], results: Sequence[RunResult]) -> str:
    """Render junit.xml: one test case per scenario and mix.

    A failed run gets a ``failure`` whose message is the first line of its
    error and whose text is the whole error and the node logs. An
    unavailable run gets ``skipped`` with the reason.
    """
    summary = report["summary"]
    total_time = sum(result.duration_seconds for result in results)
    suite = ET.Element(
        "testsuite",
        {
            "name": f"swim-conformance ({report['runtime']} runtime)",
            "tests": str(summary["total"]),
            "failures": str(summary["failed"]),
            "errors": "0",
            "skipped": str(summary.get("unavailable", 0)),
            "time": f"{total_time:.3f}",
            "timestamp": str(report["date"]),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name in ("runtime", "seed", "contract"):
        ET.SubElement(
            properties, "property", {"name": name, "value": str(report[name])}
        )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"swim_conformance.{result.scenario}",
                "name": f"{result.scenario}[{result.mix}]",
                "time": f"{result.duration_seconds:.3f}",
            },
        )
        if result.unavailable is not None:
            ET.SubElement(case, "skipped", {"message": result.unavailable})
        elif not result.passed:
            error = result.error or "(no error message)"
            failure = ET.SubElement(
                case,
                "failure",
                {"message": error.splitlines()[0][:500], "type": "ExpectationFailed"},
            )
            logs = [
                f"{node['node']}.{node['generation']} ({node['impl']}): {node['log']}"
                for node in result.nodes
            ]
            failure.text = error + (
                "\n\nnode logs:\n" + "\n".join(logs) if logs else ""
            )
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_report(
    report_dir: Path, report: Mapping[str, Any], results: Sequence[RunResult]
) -> tuple[Path, Path]:
    """Write report.json, report.md and junit.xml under ``report_dir``.

    Returns the paths of report.json and report.md; junit.xml is beside them.
    """
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path = report_dir / "report.json"
    md_path = report_dir / "report.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report, results), encoding="utf-8")
    (report_dir / JUNIT_FILE).write_text(
        render_junit(report, results), encoding="utf-8"
    )
    return json_path, md_path

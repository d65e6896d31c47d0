"""Side-by-side tables of the benchmark results, with each figure's ratio to foca.

A ratio is the implementation's cost divided by foca's (rust_peer's): CPU
time per item for rates, seconds for durations, periods for convergence.
So 1.0 is foca's figure, and 20.0 means twenty times foca's cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FOCA = "rust_peer"
IMPLEMENTATIONS = ("swim_py", "rust_peer", "swim_protocol")


@dataclass(frozen=True, slots=True)
class Row:
    """One figure of every implementation in a section."""

    label: str
    # Reads the figure from one implementation's result dict.
    read: Callable[[dict[str, Any]], float | None]
    # True for rates, where the cost is the inverse of the figure.
    rate: bool = False
    digits: int = 3


def _get(*path: str) -> Callable[[dict[str, Any]], float | None]:
    def read(result: dict[str, Any]) -> float | None:
        value: Any = result
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return float(value) if isinstance(value, (int, float)) else None

    return read


def _format(value: float | None, digits: int) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _ratio(value: float | None, foca: float | None, rate: bool) -> str:
    if value is None or foca is None or value == 0 or foca == 0:
        return "-"
    ratio = foca / value if rate else value / foca
    return f"{ratio:.2f}x"


def render_table(
    title: str, rows: list[Row], results: dict[str, dict[str, Any]]
) -> list[str]:
    """Return the lines of one table: a column per implementation, then ratios."""
    names = [name for name in IMPLEMENTATIONS if name in results]
    others = [name for name in names if name != FOCA]
    header = ["", *names, *(f"{name} vs foca" for name in others if FOCA in names)]
    lines_data = []
    for row in rows:
        values = {name: row.read(results[name]) for name in names}
        cells = [row.label, *(_format(values[name], row.digits) for name in names)]
        if FOCA in names:
            cells += [_ratio(values[name], values[FOCA], row.rate) for name in others]
        lines_data.append(cells)
    errors = [
        f"  {name}: {results[name]['error']}"
        for name in names
        if "error" in results[name]
    ]
    widths = [
        max(len(str(cells[column])) for cells in [header, *lines_data])
        for column in range(len(header))
    ]
    lines = [title]
    for cells in [header, *lines_data]:
        first = cells[0].ljust(widths[0])
        rest = "  ".join(
            str(cell).rjust(width)
            for cell, width in zip(cells[1:], widths[1:], strict=True)
        )
        lines.append(f"  {first}  {rest}")
    return lines + errors


CODEC_ROWS = [
    Row("decode, datagrams per CPU s", _get("decode", "per_cpu_second"), rate=True),
    Row("encode, datagrams per CPU s", _get("encode", "per_cpu_second"), rate=True),
]
CORE_ROWS = [
    Row("handle_data per CPU s", _get("handle_data", "per_cpu_second"), rate=True),
]
SIM_ROWS = [
    Row("bootstrap wall s", _get("bootstrap_wall_seconds")),
    Row("wall s per period, steady", _get("steady_wall_seconds_per_period")),
    Row("CPU s per period, steady", _get("steady_cpu_seconds_per_period")),
    Row("periods until joiner known to all", _get("join_periods")),
    Row("wall s per period, join", _get("join_wall_seconds_per_period")),
    Row("CPU s per period, join", _get("join_cpu_seconds_per_period")),
    Row("periods until crash Down at all", _get("crash_periods")),
    Row("wall s per period, crash", _get("crash_wall_seconds_per_period")),
    Row("CPU s per period, crash", _get("crash_cpu_seconds_per_period")),
]
LOSS_ROWS = [
    Row("false downs (live members declared down)", _get("false_downs")),
    Row("false downs, median run", _get("median_false_downs")),
    Row("runs with a false down", _get("runs_with_false_downs")),
    Row("downs of renewed identities", _get("stale_downs")),
    Row("renewals forced (Rejoin)", _get("rejoins")),
    Row("runs that converged after the loss", _get("recovered")),
    Row("periods to converge, slowest run", _get("max_recover_periods")),
]
UDP_ROWS = [
    Row("join s (to full member lists)", _get("join_seconds")),
    Row("CPU ms per member per s", _get("cpu_ms_per_member_per_second")),
    Row("detection s, last observer", _get("detection", "max_seconds")),
    Row("detection s, median observer", _get("detection", "median_seconds")),
    Row("false downs", _get("false_downs")),
]


def render(results: dict[str, Any]) -> list[str]:
    """Return every table for the sections present in ``results``."""
    lines: list[str] = []
    sections = results.get("sections", {})
    if "codec" in sections:
        section = sections["codec"]
        count = section["results"]["swim_py"]["vectors"]
        lines += render_table(
            f"codec: {count} golden vectors", CODEC_ROWS, section["results"]
        )
        lines.append("")
    for run in sections.get("core", {}).get("runs", []):
        lines += render_table(
            f"core: Pings with 2 updates each, {run['members']} known members",
            CORE_ROWS,
            run["results"],
        )
        lines.append("")
    for run in sections.get("sim", {}).get("runs", []):
        lines += render_table(
            f"simulation: {run['nodes']} nodes, new_lan timing,"
            f" log2(N) = {run['log2_nodes']:.1f}",
            SIM_ROWS,
            run["results"],
        )
        lines.append("")
    loss = sections.get("loss", {})
    for case in loss.get("cases", []):
        lines += render_table(
            f"loss: {case['nodes']} nodes, {case['loss']:.0%} of datagrams dropped"
            f" for {loss['window_periods']} periods, new_lan timing,"
            f" sums over {loss['seeds']} seeds",
            LOSS_ROWS,
            case["totals"],
        )
        lines.append("")
    for run in sections.get("udp", {}).get("runs", []):
        lines += render_table(
            f"udp on 127.0.0.1: {run['nodes']} nodes, new_lan timing",
            UDP_ROWS,
            run["results"],
        )
        lines.append("")
    soak = sections.get("soak")
    if soak is not None:
        lines.append("soak: swim_py nodes in one asyncio process, no false down")
        for entry in soak["screens"] + soak["soaks"]:
            verdict = "pass" if entry.get("passed") else "FAIL"
            observed = entry.get("observed_seconds", 0)
            lines.append(
                f"  {entry['nodes']:>6} nodes  {observed:6.0f} s"
                f"  {verdict}  false downs {entry.get('false_downs', '-')}"
                f"  suspects {entry.get('suspect_reports', '-')}"
                f"  CPU {entry.get('cpu_fraction_of_one_core', 0):.2f} of a core"
                + (f"  error {entry['error']}" if "error" in entry else "")
            )
        lines.append(
            f"  largest screened: {soak['largest_screened']},"
            f" largest soaked: {soak['largest_soaked']}"
        )
    return lines

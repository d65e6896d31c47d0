"""``swim-conformance bench``: the report tables and short runs of each section."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from conformance.bench import report
from conformance.bench.loss_bench import bench_swim_py as bench_loss_swim_py
from conformance.bench.runner import main
from conformance.bench.udp_bench import allocate_ports

IMPLEMENTATIONS = ("swim_py", "rust_peer")


def require_cargo() -> None:
    if shutil.which("cargo") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("cargo is required under CI=true", pytrace=False)
        pytest.skip("cargo is not on PATH")


def run_bench(tmp_path: Path, *argv: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "results.json"
    status = main(["--quick", "--out", str(out), *argv])
    return status, json.loads(out.read_text(encoding="utf-8"))


def test_report_ratio_is_cost_over_foca() -> None:
    results = {
        "swim_py": {"rate": {"per_cpu_second": 100.0}, "seconds": 4.0},
        "rust_peer": {"rate": {"per_cpu_second": 1000.0}, "seconds": 2.0},
    }
    rows = [
        report.Row("rate", report._get("rate", "per_cpu_second"), rate=True),
        report.Row("seconds", report._get("seconds")),
    ]
    lines = report.render_table("title", rows, results)
    assert lines[0] == "title"
    assert lines[2].split()[-1] == "10.00x"
    assert lines[3].split()[-1] == "2.00x"


def test_report_shows_missing_figure_as_dash() -> None:
    results: dict[str, dict[str, Any]] = {
        "swim_py": {"seconds": 1.0},
        "rust_peer": {"error": "not built"},
    }
    lines = report.render_table("t", [report.Row("s", report._get("seconds"))], results)
    assert lines[2].split()[-2:] == ["-", "-"]
    assert "rust_peer: not built" in lines[-1]


def test_allocated_ports_are_distinct() -> None:
    ports = allocate_ports(20)
    assert len(set(ports)) == 20
    assert all(0 < port < 65536 for port in ports)


def test_quick_codec_core_sim_sections(tmp_path: Path) -> None:
    require_cargo()
    status, results = run_bench(tmp_path, "--only", "codec,core,sim")
    assert status == 0, results
    sections = results["sections"]
    for name in IMPLEMENTATIONS:
        assert sections["codec"]["results"][name]["decode"]["items"] > 0
        for run in sections["core"]["runs"]:
            result = run["results"][name]
            assert result["members"] == run["members"]
            assert result["replies"] > 0
        for run in sections["sim"]["runs"]:
            result = run["results"][name]
            assert result["join_periods"] is not None, result
            assert result["crash_periods"] is not None, result
            assert result["errors"] == 0


def test_quick_loss_section_counts_both_sides(tmp_path: Path) -> None:
    require_cargo()
    status, results = run_bench(tmp_path, "--only", "loss")
    assert status == 0, results
    (case,) = results["sections"]["loss"]["cases"]
    assert case["nodes"] == 10
    for name in IMPLEMENTATIONS:
        (run,) = case["runs"][name]
        assert run["dropped"] > 0, run
        assert run["errors"] == 0, run
        assert case["totals"][name]["seeds"] == 1


def test_loss_without_loss_has_no_false_down() -> None:
    result = bench_loss_swim_py(10, 1, 0.0, 20, 10)

    assert result["false_downs"] == 0
    assert result["stale_downs"] == 0
    assert result["dropped"] == 0
    assert result["recover_periods"] == 0.0


def test_loss_of_everything_declares_members_down() -> None:
    result = bench_loss_swim_py(5, 1, 1.0, 30, 120)

    assert result["false_downs"] > 0
    assert result["errors"] == 0


def test_loss_rejects_share_above_one() -> None:
    with pytest.raises(ValueError, match="invalid loss 1.5"):
        bench_loss_swim_py(5, 1, 1.5, 10, 10)


@pytest.mark.integration
def test_quick_udp_and_soak_with_swim_py(tmp_path: Path) -> None:
    status, results = run_bench(
        tmp_path, "--only", "udp,soak", "--impls", "swim_py", "--soak-sizes", "10"
    )
    assert status == 0, results
    udp = results["sections"]["udp"]["runs"][0]["results"]["swim_py"]
    assert udp["converged"]
    assert udp["detection"]["complete"], udp
    assert udp["false_downs"] == 0
    soak = results["sections"]["soak"]
    assert soak["largest_screened"] == 10

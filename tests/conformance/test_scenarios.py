"""Every shipped scenario in every mix, against swim-node and rust_peer.

Each test starts its own nodes on OS-chosen ports with its own control
listeners, so the tests run in parallel under pytest-xdist (``-n 2``).
Set SWIM_CONFORMANCE_SEED to repeat a run's node random seeds. A scenario
that the process runtime cannot run (disconnect) is skipped with the reason
the harness gives; test_docker_runtime.py runs it in containers.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from pathlib import Path

import pytest

from conformance.harness import RunOptions, RunResult, run_scenario
from conformance.impls import default_registry, mix_implementations
from conformance.scenario import load_scenarios

SCENARIOS = load_scenarios()
MIXES = ("python", "rust", "mixed")
SEED = os.environ.get("SWIM_CONFORMANCE_SEED") or str(secrets.randbelow(2**32))


def _params() -> list[object]:
    params: list[object] = []
    for name in SCENARIOS:
        for mix in MIXES:
            marks = [pytest.mark.integration]
            if mix != "python":
                marks.append(pytest.mark.mixed)
            params.append(pytest.param(name, mix, id=f"{name}-{mix}", marks=marks))
    return params


def _failure_report(result: RunResult) -> str:
    lines = [f"{result.run_id} failed (seed {SEED}): {result.error}", "node logs:"]
    lines += [
        f"  {node['node']}.{node['generation']} ({node['impl']}): {node['log']}"
        for node in result.nodes
    ]
    lines.append("last events:")
    lines += [f"  {json.dumps(event)}" for event in result.last_events[-10:]]
    return "\n".join(lines)


@pytest.mark.parametrize(("scenario", "mix"), _params())
def test_scenario(
    scenario: str, mix: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    registry = default_registry()
    if any(impl.needs_rust_build for impl in mix_implementations(mix, registry)):
        request.getfixturevalue("rust_peer_binary")
    options = RunOptions(report_dir=tmp_path, registry=registry, seed=SEED)

    result = asyncio.run(run_scenario(SCENARIOS[scenario], mix, options))

    if result.unavailable is not None:
        pytest.skip(result.unavailable)
    assert result.passed, _failure_report(result)

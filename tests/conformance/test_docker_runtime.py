"""The docker runtime: scenarios in containers, and clean-up after a run.

Needs Docker and the node images of docker/build-images.sh. When Docker is
not usable the tests skip with the reason, except under CI=true, where they
fail. A missing image is built first, which needs root. The tests use the
images as they are, so run ``sudo docker/build-images.sh`` (or
``swim-conformance run --runtime docker``) after changing a node. Select
them with ``-m docker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conformance.docker_images import ensure_images
from conformance.docker_runtime import (
    LABEL_OWNER,
    LABEL_RUN,
    DockerRuntimeKind,
    connect_client,
    remove_run,
    remove_stale,
)
from conformance.errors import BuildError, DockerError
from conformance.harness import RunOptions, RunResult, run_scenario
from conformance.impls import default_registry, project_root
from conformance.scenario import load_scenarios
from tests.conformance.conftest import in_ci

pytestmark = [pytest.mark.docker, pytest.mark.integration]

SCENARIOS = load_scenarios()
# One scenario per fault: none, SIGKILL, the freezer, a network cut, a
# one-way link cut and partitions (iptables or netem in the namespaces).
DOCKER_SCENARIOS = (
    "converge",
    "crash_detect",
    "pause_refute",
    "disconnect",
    "one_way_link",
    "partition_heal",
)
MIXES = ("python", "rust", "mixed")
SEED = os.environ.get("SWIM_CONFORMANCE_SEED") or str(secrets.randbelow(2**32))


@pytest.fixture(scope="session")
def docker_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Return a Docker client with the node images present, or skip."""
    registry = default_registry()
    images = [impl.image for impl in registry.values() if impl.image is not None]
    log_path = tmp_path_factory.mktemp("images") / "image-build.log"
    try:
        client = connect_client()
        ensure_images(client, images, "missing", log_path)
    except (DockerError, BuildError) as error:
        if in_ci():
            pytest.fail(f"Docker is required under CI=true: {error}", pytrace=False)
        pytest.skip(f"Docker is not usable: {error}")
    return client


def labelled(kind: str, run_id: str, *filters: str) -> list[str]:
    """Return the ids that `docker ps -a` or `docker network ls` lists for a run."""
    command = (
        ["docker", "ps", "-a"] if kind == "container" else ["docker", "network", "ls"]
    )
    for extra in filters:
        command += ["--filter", extra]
    completed = subprocess.run(
        [*command, "--filter", f"label={LABEL_RUN}={run_id}", "--quiet"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return completed.stdout.split()


def _failure_report(result: RunResult) -> str:
    lines = [f"{result.run_id} failed (seed {SEED}): {result.error}", "node logs:"]
    lines += [
        f"  {node['node']}.{node['generation']} ({node['impl']}): {node['log']}"
        for node in result.nodes
    ]
    lines.append("last events:")
    lines += [f"  {json.dumps(event)}" for event in result.last_events[-10:]]
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("scenario", "mix"),
    [
        pytest.param(name, mix, id=f"{name}-{mix}")
        for name in DOCKER_SCENARIOS
        for mix in MIXES
    ],
)
def test_scenario_in_containers(
    scenario: str, mix: str, docker_client: Any, tmp_path: Path
) -> None:
    kind = DockerRuntimeKind(docker_client)
    options = RunOptions(
        report_dir=tmp_path, registry=default_registry(), seed=SEED, runtime=kind
    )
    try:
        result = asyncio.run(run_scenario(SCENARIOS[scenario], mix, options))
        left = (labelled("container", kind.run_id), labelled("network", kind.run_id))
    finally:
        kind.remove_all()

    assert result.passed, _failure_report(result)
    assert all(node.get("container") for node in result.nodes)
    # The scenario run removed its own containers and networks.
    assert left == ([], [])


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"]
)
def test_interrupted_run_leaves_nothing(
    signum: signal.Signals, docker_client: Any, tmp_path: Path
) -> None:
    output = tmp_path / "cli.log"
    environment = {**os.environ, **dict(default_registry()["python"].env)}
    with output.open("w") as log:
        cli = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "conformance.cli",
                "run",
                "--runtime",
                "docker",
                "--image-build",
                "never",
                "--scenario",
                "pause_refute",
                "--mix",
                "mixed",
                "--report-dir",
                str(tmp_path / "report"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=project_root(),
        )
    run_id = ""
    try:
        deadline = time.monotonic() + 120
        # Interrupt the run while a node is frozen, the hardest state to
        # clean up: its container must be thawed or removed by force.
        paused: list[str] = []
        while time.monotonic() < deadline and cli.poll() is None:
            for line in output.read_text().splitlines():
                if line.startswith("docker run id "):
                    run_id = line.split()[3].rstrip(":")
            if run_id:
                paused = labelled("container", run_id, "status=paused")
                if paused:
                    break
            time.sleep(0.1)
        assert paused, output.read_text()
        assert len(labelled("container", run_id)) == 4, output.read_text()
        cli.send_signal(signum)
        status = cli.wait(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        if run_id:
            remove_run(docker_client, run_id)

    assert status == 130, output.read_text()
    assert labelled("container", run_id) == []
    assert labelled("network", run_id) == []
    assert (tmp_path / "report" / "report.json").is_file()


def test_stale_runs_are_removed(docker_client: Any) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    stale_id, live_id = secrets.token_hex(4), secrets.token_hex(4)
    stale = docker_client.networks.create(
        f"swimconf-test-{stale_id}",
        labels={LABEL_RUN: stale_id, LABEL_OWNER: f"{host}:{dead.pid}"},
        internal=True,
    )
    live = docker_client.networks.create(
        f"swimconf-test-{live_id}",
        labels={LABEL_RUN: live_id, LABEL_OWNER: f"{host}:{os.getpid()}"},
        internal=True,
    )
    try:
        removed = remove_stale(docker_client)
        left = {run_id: labelled("network", run_id) for run_id in (stale_id, live_id)}
    finally:
        for network in (stale, live):
            with contextlib.suppress(Exception):
                network.remove()

    assert stale_id in removed
    assert live_id not in removed
    assert left[stale_id] == []
    assert len(left[live_id]) == 1

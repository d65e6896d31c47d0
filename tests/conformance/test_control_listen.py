"""``--control-listen``: both nodes listen for the harness instead of connecting.

The docker runtime starts every node this way. These tests run the nodes as
local processes on 127.0.0.1, so they need no Docker.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conformance.impls import default_registry
from conformance.node_agent import main as node_agent_main

pytestmark = pytest.mark.integration

STARTUP = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def connect_until_ready(port: int, process: subprocess.Popen[bytes]) -> socket.socket:
    """Connect to the node's control port, retrying until it listens."""
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"node exited with status {process.returncode} before ready")
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=STARTUP)
        except ConnectionRefusedError:
            time.sleep(0.05)
    pytest.fail(f"node did not listen on 127.0.0.1:{port} within {STARTUP} s")


def node_command(impl: str, request: pytest.FixtureRequest) -> list[str]:
    if impl == "rust":
        return [str(request.getfixturevalue("rust_peer_binary"))]
    return list(default_registry()["python"].command)


@pytest.mark.parametrize("impl", ["python", "rust"])
def test_node_listens_for_one_control_connection(
    impl: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    port = free_port()
    log = (tmp_path / "node.log").open("wb")
    process = subprocess.Popen(
        [
            *node_command(impl, request),
            "--id",
            "6e30",
            "--control-listen",
            f"127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=log,
        env={**os.environ, **dict(default_registry()["python"].env)},
    )
    try:
        control = connect_until_ready(port, process)
        with control, control.makefile("rwb") as stream:
            ready = json.loads(stream.readline())
            # The listener closes once the control connection is accepted.
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            stream.write(b'{"cmd": "members", "req": 1}\n')
            stream.flush()
            members = json.loads(stream.readline())
            stream.write(b'{"cmd": "stop", "req": 2}\n')
            stream.flush()
            stopped = json.loads(stream.readline())
        status = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()

    assert ready["type"] == "ready"
    assert ready["identity"]["id"] == "6e30"
    assert members["ok"] is True
    assert members["req"] == 1
    assert stopped == {"type": "reply", "req": 2, "ok": True}
    assert status == 0


def test_python_node_rejects_both_control_flags(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        node_agent_main(["--control", "127.0.0.1:1", "--control-listen", "127.0.0.1:2"])

    assert caught.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_rust_node_rejects_both_control_flags(rust_peer_binary: Path) -> None:
    completed = subprocess.run(
        [
            str(rust_peer_binary),
            "--control",
            "127.0.0.1:1",
            "--control-listen",
            "127.0.0.1:2",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert completed.returncode == 2
    assert "--control-listen" in completed.stderr


def test_python_node_rejects_bad_listen_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert node_agent_main(["--control-listen", "nowhere"]) == 2
    assert "--control-listen" in capsys.readouterr().err

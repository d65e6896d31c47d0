"""The README's library quickstart, run as written in three processes."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from pathlib import Path

import pytest

from swim_py import Config

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
# A loaded 2-core machine may run probe periods late, as in the other
# loopback tests.
SLACK_PERIODS = 10


def quickstart_source() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"Save this as `node.py`:\n\n```python\n(.*?)```", text, re.S)
    assert match is not None, "README.md has no node.py quickstart block"
    return match.group(1)


def free_udp_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class NodeProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode().rstrip())


async def wait_for(predicate: object, timeout: float, description: str) -> None:
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {description}"
            )
        await asyncio.sleep(0.1)


def test_quickstart_nodes_see_join_and_crash(tmp_path: Path) -> None:
    script = tmp_path / "node.py"
    script.write_text(quickstart_source(), encoding="utf-8")
    config = Config()
    bound = (
        config.probe_period * (2 + SLACK_PERIODS)
        + config.suspect_to_down_after
        + config.probe_rtt
    )

    async def scenario() -> None:
        ports = free_udp_ports(3)
        names = [f"node-{index}" for index in range(3)]
        nodes = []
        for index, port in enumerate(ports):
            seed = ports[1] if index == 0 else ports[0]
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-u",
                str(script),
                str(port),
                names[index],
                f"127.0.0.1:{seed}",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                cwd=tmp_path,
                # A shell that starts this test in the background ignores
                # SIGINT, and the child would inherit that; Ctrl-C is the
                # README's way to stop a node, so restore it.
                preexec_fn=_default_sigint,
            )
            nodes.append(NodeProcess(process))
        members = [
            f"{name.encode().hex()}@127.0.0.1:{port}#0"
            for name, port in zip(names, ports, strict=True)
        ]
        try:
            for index, node in enumerate(nodes):
                others = [m for i, m in enumerate(members) if i != index]
                await wait_for(
                    lambda node=node, others=others: all(
                        f"member_up {member}" in node.lines for member in others
                    ),
                    bound,
                    f"{names[index]} to print member_up for the others",
                )
            nodes[2].process.kill()
            for index in (0, 1):
                await wait_for(
                    lambda node=nodes[index]: f"member_down {members[2]}" in node.lines,
                    bound,
                    f"{names[index]} to print member_down for node-2",
                )
            nodes[0].process.send_signal(signal.SIGINT)
            assert await asyncio.wait_for(nodes[0].process.wait(), bound) == 0
        finally:
            for node in nodes:
                if node.process.returncode is None:
                    node.process.kill()
                await node.process.wait()
                await node.reader

    asyncio.run(scenario())

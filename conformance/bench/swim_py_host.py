"""Many swim_py nodes in one asyncio process, for the UDP benchmarks.

Run as ``python -m conformance.bench.swim_py_host``. The first stdin line is
a JSON spec:

``{"ports": [P, ...], "cluster_size": N, "seed_port": P0 or null,
"bootstrap": "announce" or "members", "member_ports": [P, ...]}``

Every node binds 127.0.0.1 at one of ``ports`` with ``Config.new_lan(N)``.
With ``announce`` each node but the one at ``seed_port`` announces to it.
With ``members`` each node applies every port of ``member_ports`` (its own
excluded) as an Alive member through ``Swim.apply_many``, without gossip.

Later stdin lines are commands, each answered by one stdout line:
``{"op": "status"}`` returns the member count of each live node,
``{"op": "kill", "port": P}`` stops that node without leaving (a crash as
the others see it), and ``{"op": "stop"}`` ends the process. Unprompted
lines report each MemberDown and MemberSuspect notification with the
observer's port, the member's port and Unix time. A closed stdin ends the
process too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import time
from typing import Any

from swim_py import (
    AsyncIoUdpTransport,
    Config,
    Identity,
    Member,
    State,
    StaticDiscovery,
    Swim,
)
from swim_py.events import MemberDown, MemberSuspect, Notification
from swim_py.identity import Address

logger = logging.getLogger("conformance.bench.swim_py_host")

_HOST = "127.0.0.1"


def _emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


class _Node:
    def __init__(self, port: int, swim: Swim, transport: AsyncIoUdpTransport):
        self.port = port
        self.swim = swim
        self.transport = transport
        self.task: asyncio.Task[None] | None = None

    def on_notification(self, notification: Notification) -> None:
        if isinstance(notification, MemberDown):
            kind = "down"
        elif isinstance(notification, MemberSuspect):
            kind = "suspect"
        else:
            return
        _emit(
            {
                "type": kind,
                "observer": self.port,
                "member": notification.id.addr.port,
                "ts": time.time(),
            }
        )


async def _start_nodes(spec: dict[str, Any]) -> dict[int, _Node]:
    config = Config.new_lan(int(spec["cluster_size"]))
    seed_port = spec.get("seed_port")
    nodes: dict[int, _Node] = {}
    for port in spec["ports"]:
        transport = AsyncIoUdpTransport(f"{_HOST}:{port}")
        await transport.start()
        discovery = None
        if spec["bootstrap"] == "announce" and seed_port not in (None, port):
            discovery = StaticDiscovery([f"{_HOST}:{seed_port}"])
        swim = Swim(
            config=config,
            transport=transport,
            discovery=discovery,
            rng=random.Random(port),
        )
        node = _Node(port, swim, transport)
        swim.notification_listeners.append(node.on_notification)
        nodes[port] = node
    for node in nodes.values():
        node.task = asyncio.create_task(node.swim.run())
    # Let every run() create its core before the member lists go in.
    await asyncio.sleep(0)
    if spec["bootstrap"] == "members":
        everyone = [
            Member(Identity(Address.parse(f"{_HOST}:{port}")), 0, State.ALIVE)
            for port in spec["member_ports"]
        ]
        for node in nodes.values():
            own = node.swim.identity
            node.swim.apply_many(
                [member for member in everyone if member.id != own], do_broadcast=False
            )
    return nodes


async def _kill(node: _Node) -> None:
    node.swim.stop()
    node.transport.close()
    if node.task is not None:
        await node.task


async def _serve(nodes: dict[int, _Node]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    while line := await reader.readline():
        request = json.loads(line)
        op = request.get("op")
        if op == "status":
            counts = {
                str(port): len(node.swim.members())
                for port, node in nodes.items()
                if node.swim.running
            }
            _emit({"type": "status", "members": counts, "ts": time.time()})
        elif op == "kill":
            port = int(request["port"])
            killed_at = time.time()
            await _kill(nodes[port])
            _emit({"type": "killed", "port": port, "ts": killed_at})
        elif op == "stop":
            break
        else:
            _emit({"type": "error", "detail": f"unknown op {op!r}"})
    for node in nodes.values():
        if node.swim.running:
            await _kill(node)
    _emit({"type": "stopped", "ts": time.time()})


async def _main() -> None:
    # The bench sends nothing more before "ready", so this buffered read
    # cannot swallow a command meant for the pipe reader in _serve.
    spec = json.loads(sys.stdin.readline())
    nodes = await _start_nodes(spec)
    _emit({"type": "ready", "nodes": len(nodes), "ts": time.time()})
    await _serve(nodes)


def main() -> None:
    """Run the host until ``stop`` or end of stdin."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_main())


if __name__ == "__main__":
    main()

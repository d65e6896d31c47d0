"""Many swim-protocol (PyPI, 0.6.x) nodes in one asyncio process.

The UDP benchmarks run this file with the interpreter of a separate virtual
environment that has ``swim-protocol`` installed, so it imports only the
standard library and ``swimprotocol``. It speaks the same stdin/stdout
JSON lines as ``swim_py_host.py``, except that ``bootstrap`` must be
``announce``: each node starts with the node at ``seed_port`` as its only
peer, and that node with the next port in ``ports``, because swim-protocol
needs at least one peer to probe, with the first other port of
``member_ports``. A member whose status becomes OFFLINE is
reported as ``down`` and one that becomes SUSPECT as ``suspect``.

``Config.new_lan(N)`` maps onto swim-protocol's settings as: ping_interval
1 s (probe_period), ping_timeout 0.5 s (probe_rtt), ping_req_count 3
(num_indirect_probes), ping_req_timeout 0.5 s (the rest of the period),
suspect_timeout ``max(1, log10 N) * 4`` s (suspect_to_down_after) and
sync_interval 0.2 s (periodic_gossip frequency).
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from contextlib import AsyncExitStack
from typing import Any

from swimprotocol.members import Member, Members  # type: ignore[import-not-found]
from swimprotocol.status import Status  # type: ignore[import-not-found]
from swimprotocol.udp import UdpConfig, UdpTransport  # type: ignore[import-not-found]
from swimprotocol.worker import Worker  # type: ignore[import-not-found]

_HOST = "127.0.0.1"


def _emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


class _Node:
    def __init__(self, port: int, peer: int, cluster_size: int) -> None:
        self.port = port
        suspicion = max(1.0, math.log10(cluster_size)) * 4.0
        self.config = UdpConfig(
            local_name=f"{_HOST}:{port}",
            peers=[f"{_HOST}:{peer}"],
            secret="swim-conformance-bench",
            ping_interval=1.0,
            ping_timeout=0.5,
            ping_req_count=3,
            ping_req_timeout=0.5,
            suspect_timeout=suspicion,
            sync_interval=0.2,
        )
        self.members = Members(self.config)
        self.stop = asyncio.Event()
        self.running = True
        self.task: asyncio.Task[None] | None = None
        self._reported: dict[str, Any] = {}

    async def on_change(self, member: Member) -> None:
        if member.local:
            return
        status = member.status
        if status == self._reported.get(member.name):
            return
        self._reported[member.name] = status
        if status == Status.OFFLINE:
            kind = "down"
        elif status == Status.SUSPECT:
            kind = "suspect"
        else:
            return
        _emit(
            {
                "type": kind,
                "observer": self.port,
                "member": int(member.name.rpartition(":")[2]),
                "ts": time.time(),
            }
        )

    def online_count(self) -> int:
        return sum(
            1 for member in self.members.non_local if member.status == Status.ONLINE
        )

    async def run(self) -> None:
        worker = Worker(self.config, self.members)
        transport = UdpTransport(self.config, worker)
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(transport)
            await stack.enter_async_context(worker)
            await stack.enter_async_context(
                self.members.listener.on_notify(self.on_change)
            )
            await self.stop.wait()
        self.running = False


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
                str(port): node.online_count()
                for port, node in nodes.items()
                if node.running
            }
            _emit({"type": "status", "members": counts, "ts": time.time()})
        elif op == "kill":
            port = int(request["port"])
            killed_at = time.time()
            node = nodes[port]
            node.stop.set()
            if node.task is not None:
                await node.task
            _emit({"type": "killed", "port": port, "ts": killed_at})
        elif op == "stop":
            break
        else:
            _emit({"type": "error", "detail": f"unknown op {op!r}"})
    for node in nodes.values():
        node.stop.set()
    await asyncio.gather(*(node.task for node in nodes.values() if node.task))
    _emit({"type": "stopped", "ts": time.time()})


async def _main() -> None:
    spec = json.loads(sys.stdin.readline())
    if spec["bootstrap"] != "announce":
        raise SystemExit("swim_protocol_host supports only bootstrap 'announce'")
    ports = [int(port) for port in spec["ports"]]
    seed = int(spec["seed_port"])
    size = int(spec["cluster_size"])
    seed_peer = next(int(port) for port in spec["member_ports"] if int(port) != seed)
    nodes: dict[int, _Node] = {}
    for port in ports:
        nodes[port] = _Node(port, seed if port != seed else seed_peer, size)
    for node in nodes.values():
        node.task = asyncio.create_task(node.run())
    await asyncio.sleep(0.1)
    _emit({"type": "ready", "nodes": len(nodes), "ts": time.time()})
    await _serve(nodes)


if __name__ == "__main__":
    asyncio.run(_main())

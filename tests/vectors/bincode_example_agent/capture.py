"""Capture datagrams that foca's example agent sends to swim_py nodes.

Run from the repository root: ``python tests/vectors/bincode_example_agent/
capture.py [OUTPUT]``. It builds the agent if needed, runs two agents (A and
B) and two swim_py nodes (R and N) on 127.0.0.1. It writes the datagrams
that the nodes receive from an agent to OUTPUT (``datagrams.json`` beside
this file by default), at most two per sender, message type and payload
shape. The agents' identities come from the first line of their logs.

Some received datagrams are dropped on purpose so that the agents also send
their indirect probe messages: R ignores Acks from B (A sends R a
ForwardedAck) and Pings from A (B sends R an IndirectPing), and N ignores
Pings from B (B sends R a PingReq) and Acks from A (A sends R an
IndirectAck). At the end N crashes, waits until both agents list it as
down, and announces again with the same identity, so agent A replies with
TurnUndead.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from conformance.foca_example import (
    ExampleAgent,
    ExampleAgentBroadcastHandler,
    ensure_foca_example,
)
from swim_py import AsyncIoUdpTransport, Config, Identity, Swim
from swim_py.codec import BincodeCodec
from swim_py.errors import DecodeError
from swim_py.identity import Address
from swim_py.payload import MESSAGE_NAMES, Ack, Broadcast, Header, Ping
from swim_py.transport import DatagramHandler

CODEC = BincodeCodec("addr-bump")
CONFIG = Config.new_lan(10)
# The agent's first log line prints its parameters, including its identity.
STARTED = re.compile(r"identity: ID\((?P<addr>[^,]+), (?P<bump>\d+)\)")
KEEP_PER_SHAPE = 2
CAPTURE_SECONDS = 20.0
DETECTION_TIMEOUT = 30.0

DropRule = Callable[[Header, Address], bool]


class RecordingTransport:
    """Forward to a UDP transport, record datagrams from agents, drop some."""

    def __init__(
        self,
        inner: AsyncIoUdpTransport,
        agents: set[Address],
        records: list[dict[str, object]],
        drop: DropRule,
    ) -> None:
        self.inner = inner
        self.agents = agents
        self.records = records
        self.drop = drop
        # The receiving node's identity, read at each datagram because the
        # node renews it after a TurnUndead.
        self.identity: Callable[[], Identity] | None = None

    @property
    def local_address(self) -> Address:
        return self.inner.local_address

    def send(self, data: bytes, addr: Address) -> None:
        self.inner.send(data, addr)

    def set_receiver(self, handler: DatagramHandler | None) -> None:
        if handler is None:
            self.inner.set_receiver(None)
            return

        def receive(data: bytes, source: Address) -> None:
            if source in self.agents and self.identity is not None:
                receiver = self.identity()
                self.records.append(
                    {
                        "receiver": str(receiver.addr),
                        "receiver_bump": receiver.renewal,
                        "udp_source": str(source),
                        "hex": data.hex(),
                    }
                )
            try:
                header, _ = CODEC.decode_header(data, 0)
            except DecodeError:
                header = None
            if header is not None and self.drop(header, source):
                return
            handler(data, source)

        self.inner.set_receiver(receive)


def agent_identity(agent: ExampleAgent) -> tuple[str, int]:
    for line in agent.log_lines():
        match = STARTED.search(line)
        if match:
            return match["addr"], int(match["bump"])
    raise RuntimeError(f"agent on {agent.bind} logged no identity:\n{agent.log_tail()}")


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


async def start_node(
    bind: str,
    agents: set[Address],
    records: list[dict[str, object]],
    drop: DropRule,
    renewal: int | None = None,
) -> tuple[Swim, RecordingTransport, asyncio.Task[None]]:
    inner = AsyncIoUdpTransport(bind)
    await inner.start()
    transport = RecordingTransport(inner, agents, records, drop)
    identity = Identity(
        inner.local_address, b"", int(time.time()) if renewal is None else renewal
    )
    swim = Swim(
        identity=identity,
        config=CONFIG,
        codec=CODEC,
        transport=transport,
        broadcast_handler=ExampleAgentBroadcastHandler(),
    )
    transport.identity = lambda: swim.identity
    task = asyncio.create_task(swim.run())
    await wait_for(lambda: swim.running, 5, f"node {identity} to start")
    return swim, transport, task


def free_port() -> int:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def shape(record: dict[str, object]) -> tuple[str, str, bool, bool]:
    """Return the sender, message type, and whether updates and broadcasts follow."""
    data = bytes.fromhex(str(record["hex"]))
    header, offset = CODEC.decode_header(data, 0)
    count = 0
    if len(data) - offset >= 2 and not isinstance(header.message, Broadcast):
        count = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        for _ in range(count):
            _, offset = CODEC.decode_member(data, offset)
    return (
        str(record["udp_source"]),
        MESSAGE_NAMES[type(header.message)],
        count > 0,
        offset < len(data),
    )


async def capture(output: Path) -> None:
    binary = ensure_foca_example(echo=print)
    workdir = Path(tempfile.mkdtemp(prefix="foca-capture-"))
    records: list[dict[str, object]] = []
    agent_addrs: set[Address] = set()
    a_addr = Address.parse(f"127.0.0.1:{free_port()}")
    b_addr = Address.parse(f"127.0.0.1:{free_port()}")
    agent_addrs.update((a_addr, b_addr))

    def r_drops(header: Header, source: Address) -> bool:
        return (isinstance(header.message, Ack) and source == b_addr) or (
            isinstance(header.message, Ping) and source == a_addr
        )

    def n_drops(header: Header, source: Address) -> bool:
        return (isinstance(header.message, Ping) and source == b_addr) or (
            isinstance(header.message, Ack) and source == a_addr
        )

    r_swim, r_transport, r_task = await start_node(
        "127.0.0.1:0", agent_addrs, records, r_drops
    )
    n_swim, n_transport, n_task = await start_node(
        "127.0.0.1:0", agent_addrs, records, n_drops
    )
    n_swim.announce(r_swim.identity.addr)
    a = ExampleAgent(
        binary, a_addr, workdir / "a.txt", workdir / "a.log", r_swim.identity.addr
    )
    b = ExampleAgent(
        binary, b_addr, workdir / "b.txt", workdir / "b.log", r_swim.identity.addr
    )
    try:
        a.start()
        b.start()
        await wait_for(lambda: len(r_swim.members()) == 3, 10, "R to see 3 members")
        r_swim.announce(a_addr)
        await asyncio.sleep(CAPTURE_SECONDS)

        n_identity = n_swim.identity
        n_swim.stop()
        await n_task
        n_transport.inner.close()
        await wait_for(
            lambda: n_identity.addr not in a.members() | b.members(),
            DETECTION_TIMEOUT,
            "both agents to drop N",
        )
        n_swim, n_transport, n_task = await start_node(
            str(n_identity.addr),
            agent_addrs,
            records,
            lambda header, source: False,
            renewal=n_identity.renewal,
        )
        n_swim.announce(a_addr)
        await asyncio.sleep(2 * CONFIG.probe_period)
        agents = {
            "A": dict(zip(("addr", "bump"), agent_identity(a), strict=True)),
            "B": dict(zip(("addr", "bump"), agent_identity(b), strict=True)),
        }
    finally:
        a.kill()
        b.kill()
        for swim in (r_swim, n_swim):
            swim.stop()
        await asyncio.gather(r_task, n_task, return_exceptions=True)
        r_transport.inner.close()
        n_transport.inner.close()

    kept: list[dict[str, object]] = []
    counts: Counter[tuple[str, str, bool, bool]] = Counter()
    for record in records:
        key = shape(record)
        if counts[key] < KEEP_PER_SHAPE:
            kept.append(record)
        counts[key] += 1
    document = {"agents": agents, "datagrams": kept}
    output.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    kinds = Counter(shape(record)[1] for record in kept)
    print(f"wrote {len(kept)} of {len(records)} datagrams to {output}: {dict(kinds)}")


def main() -> None:
    default = Path(__file__).resolve().parent / "datagrams.json"
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    asyncio.run(capture(output))


if __name__ == "__main__":
    main()

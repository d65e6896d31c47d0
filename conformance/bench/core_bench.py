"""Core section: datagrams handled per CPU second by one member.

One receiver knows M members (applied as Alive at incarnation 0, without
broadcasting). The stream is Pings addressed to it, datagram k from member
``k mod M`` carrying two updates, Alive at incarnation 0, about members
``k+1`` and ``k+2``. Every datagram is decoded, its sender and updates are
merged into the member table, and an Ack is produced. After the first pass
the updates change nothing, which is the steady state of a cluster where
gossip repeats what members already know. swim_py's ``SwimCore.handle_data``
and foca's ``Foca::handle_data`` (``rust_peer tool bench-core``) get the same
bytes, written by swim_py's codec, whose output the golden vector tests
compare with foca's.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path
from typing import Any

from conformance.bench.timing import run_rust_tool, run_timed
from conformance.codec_json import identity_to_json
from swim_py.codec import ProtobufCodec
from swim_py.codec.datagram import Datagram, encode_datagram
from swim_py.config import Config
from swim_py.core import SwimCore
from swim_py.identity import Address, Identity
from swim_py.payload import Header, Member, Ping, State

MAX_PACKET_SIZE = 1400
# A stream shorter than this repeats the small member lists more often.
MIN_STREAM_LENGTH = 200
_LOOPBACK = "127.0.0.1"
_RECEIVER_PORT = 7000


def _identity(port: int) -> Identity:
    return Identity(Address.parse(f"{_LOOPBACK}:{port}"), f"node-{port}".encode(), 0)


def build_stream(members: int) -> tuple[Identity, list[Identity], list[bytes]]:
    """Return the receiver, its members and the datagram stream."""
    codec = ProtobufCodec()
    receiver = _identity(_RECEIVER_PORT)
    known = [_identity(_RECEIVER_PORT + 1 + index) for index in range(members)]
    length = max(members, MIN_STREAM_LENGTH)
    stream = []
    for k in range(length):
        src = known[k % members]
        updates = tuple(
            Member(known[(k + offset) % members], 0, State.ALIVE) for offset in (1, 2)
        )
        header = Header(src, 0, receiver, Ping(k % 256))
        stream.append(encode_datagram(codec, Datagram(header, updates, ())))
    return receiver, known, stream


def bench_swim_py(
    receiver: Identity, members: list[Identity], stream: list[bytes], seconds: float
) -> dict[str, Any]:
    """Time ``SwimCore.handle_data`` over ``stream`` and discard the outputs."""
    config = Config.simple().replace(max_packet_size=MAX_PACKET_SIZE)
    core = SwimCore(receiver, config, ProtobufCodec(), random.Random(1))
    core.apply_many(
        [Member(identity, 0, State.ALIVE) for identity in members], do_broadcast=False
    )
    core.take_outputs()
    replies = 0

    def one_pass() -> int:
        nonlocal replies
        handle_data = core.handle_data
        take_outputs = core.take_outputs
        for data in stream:
            handle_data(data)
            replies += len(take_outputs().sends)
        return len(stream)

    result = run_timed(seconds, one_pass)
    return {
        "implementation": "swim_py",
        "members": core.num_members(),
        "stream": len(stream),
        "replies": replies,
        "handle_data": result,
    }


def run_core_section(
    member_counts: list[int], rust_peer: Path | None, seconds: float
) -> dict[str, Any]:
    """Run both sides for each member count and return the results."""
    runs = []
    for members in member_counts:
        receiver, known, stream = build_stream(members)
        results: dict[str, Any] = {
            "swim_py": bench_swim_py(receiver, known, stream, seconds)
        }
        if rust_peer is not None:
            with tempfile.TemporaryDirectory(prefix="swim-bench-core-") as folder:
                path = Path(folder) / "stream.json"
                path.write_text(
                    json.dumps(
                        {
                            "receiver": identity_to_json(receiver),
                            "members": [identity_to_json(item) for item in known],
                            "max_packet_size": MAX_PACKET_SIZE,
                            "datagrams": [data.hex() for data in stream],
                        }
                    ),
                    encoding="utf-8",
                )
                results["rust_peer"] = run_rust_tool(
                    rust_peer,
                    ["bench-core", "--input", str(path), "--seconds", str(seconds)],
                    timeout=60 + 2 * seconds,
                )
        runs.append({"members": members, "results": results})
    return {"runs": runs}

"""Codec section: whole datagrams decoded and encoded per CPU second.

Both sides loop over the golden vectors (``tests/vectors/foca_vectors.json``,
datagrams that foca 1.0 sent): swim_py with ``decode_datagram`` and
``encode_datagram`` over ``ProtobufCodec``, rust_peer with its own datagram
framing over the prost codec (``rust_peer tool bench-codec``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conformance.bench.timing import run_rust_tool, run_timed
from swim_py.codec import ProtobufCodec
from swim_py.codec.datagram import decode_datagram, encode_datagram


def load_vector_bytes(path: Path) -> list[bytes]:
    """Return the datagram bytes of every vector in ``path``."""
    vectors = json.loads(path.read_text(encoding="utf-8"))["vectors"]
    return [bytes.fromhex(vector["hex"]) for vector in vectors]


def bench_swim_py(datagrams: list[bytes], seconds: float) -> dict[str, Any]:
    """Time swim_py's decode and encode loops, ``seconds`` each."""
    codec = ProtobufCodec()
    decoded = [decode_datagram(codec, data) for data in datagrams]
    for value, data in zip(decoded, datagrams, strict=True):
        if encode_datagram(codec, value) != data:
            raise RuntimeError("swim_py does not re-encode a golden vector exactly")

    def decode_pass() -> int:
        for data in datagrams:
            decode_datagram(codec, data)
        return len(datagrams)

    def encode_pass() -> int:
        for value in decoded:
            encode_datagram(codec, value)
        return len(decoded)

    return {
        "implementation": "swim_py",
        "vectors": len(datagrams),
        "decode": run_timed(seconds, decode_pass),
        "encode": run_timed(seconds, encode_pass),
    }


def run_codec_section(
    vectors_path: Path, rust_peer: Path | None, seconds: float
) -> dict[str, Any]:
    """Run both sides and return their results by implementation name."""
    datagrams = load_vector_bytes(vectors_path)
    results: dict[str, Any] = {"swim_py": bench_swim_py(datagrams, seconds)}
    if rust_peer is not None:
        results["rust_peer"] = run_rust_tool(
            rust_peer,
            ["bench-codec", "--vectors", str(vectors_path), "--seconds", str(seconds)],
            timeout=60 + 4 * seconds,
        )
    return {"vectors_file": str(vectors_path), "results": results}

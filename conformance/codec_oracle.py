"""A client for ``rust_peer oracle``: rust_peer's codec and foca's receive path.

The oracle reads one JSON request per line on stdin and writes one JSON reply
per line on stdout, in order. ``rust_peer/src/oracle.rs`` documents the
requests and replies, in the JSON forms of ``conformance.codec_json``.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from conformance.codec_json import JsonObject

__all__ = ["CodecOracle", "OracleError"]


class OracleError(RuntimeError):
    """The oracle process failed, exited, or wrote a line that is not JSON."""


class CodecOracle:
    """One running ``rust_peer oracle`` process. Close it, or use ``with``."""

    def __init__(self, binary: Path) -> None:
        self._binary = binary
        # A file, not a pipe, so that a chatty stderr cannot block the process.
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [str(binary), "oracle"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
        )

    def request(self, request: JsonObject) -> JsonObject:
        """Send one request and return the reply object."""
        stdin = self._process.stdin
        stdout = self._process.stdout
        if stdin is None or stdout is None:
            raise OracleError("the oracle process has no pipes")
        try:
            stdin.write(json.dumps(request) + "\n")
            stdin.flush()
        except OSError as exc:
            raise OracleError(
                f"failed to write to the oracle: {exc}{self._tail()}"
            ) from exc
        line = stdout.readline()
        if not line:
            status = self._process.poll()
            raise OracleError(
                f"the oracle ({self._binary}) closed stdout, exit status {status}"
                f"{self._tail()}"
            )
        try:
            reply = json.loads(line)
        except json.JSONDecodeError as exc:
            raise OracleError(
                f"the oracle wrote invalid JSON {line!r}: {exc}"
            ) from None
        if not isinstance(reply, dict):
            raise OracleError(f"the oracle wrote {line!r}: expected a JSON object")
        return cast(dict[str, Any], reply)

    def decode_header(self, data: bytes) -> JsonObject:
        return self.request({"op": "decode_header", "hex": data.hex()})

    def decode_member(self, data: bytes) -> JsonObject:
        return self.request({"op": "decode_member", "hex": data.hex()})

    def encode_header(self, header: JsonObject) -> JsonObject:
        return self.request({"op": "encode_header", "header": header})

    def encode_member(self, member: JsonObject) -> JsonObject:
        return self.request({"op": "encode_member", "member": member})

    def decode_datagram(
        self, data: bytes, max_packet_size: int | None = None
    ) -> JsonObject:
        request: JsonObject = {"op": "decode_datagram", "hex": data.hex()}
        if max_packet_size is not None:
            request["max_packet_size"] = max_packet_size
        return self.request(request)

    def encode_datagram(self, datagram: JsonObject) -> JsonObject:
        return self.request({"op": "encode_datagram", "datagram": datagram})

    def close(self) -> None:
        """Close stdin, which ends the oracle, and wait for it to exit."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._stderr.close()

    def __enter__(self) -> CodecOracle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _tail(self) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", errors="replace").strip()
        return f"; its stderr: {text[-2000:]}" if text else ""

"""Build and run foca's unmodified example agent beside swim_py nodes.

foca 1.0.0 ships ``examples/foca_insecure_udp_agent.rs``: one SWIM member on
UDP with ``Config::new_lan(10)``, ``BincodeCodec(bincode::config::standard())``
and the identity ``ID { addr: SocketAddr, bump: u64 }``, where ``bump`` is
the Unix time in seconds at start. Its command line is ``BIND_ADDR
[--identity ADDR] [--announce ADDR] [--filename PATH]``. It rewrites PATH
with one active member address per line on every MemberUp and MemberDown,
and every 5 seconds queues a custom broadcast (see ``decode_agent_broadcast``).

``ensure_foca_example`` builds the example from the crate source that cargo
downloaded into its registry (``cd rust_peer && cargo fetch --locked`` puts
foca 1.0.0 there). The source is copied to a cache folder first, because
the registry copy is shared and cargo writes build output next to the
manifest's lock file. None of foca's code is part of this repository.

``python -m conformance.foca_example`` builds the agent and prints its path.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from conformance.errors import BuildError
from swim_py.broadcast import BroadcastHandler
from swim_py.codec.bincode import (
    decode_socket_addr,
    decode_varint,
    encode_socket_addr,
    encode_varint,
)
from swim_py.errors import DecodeError
from swim_py.identity import Address, Identity

__all__ = [
    "AgentBroadcastKey",
    "ExampleAgent",
    "ExampleAgentBroadcastHandler",
    "build_command",
    "decode_agent_broadcast",
    "default_cache_dir",
    "encode_agent_broadcast",
    "ensure_foca_example",
    "find_crate_source",
]

CRATE = "foca-1.0.0"
EXAMPLE = "foca_insecure_udp_agent"
# The example's [[example]] entry in foca's Cargo.toml requires these.
FEATURES = ("std", "tracing", "bincode-codec")


def default_cache_dir() -> Path:
    """Return ``$XDG_CACHE_HOME/swim_py/foca-example`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "swim_py" / "foca-example"


def find_crate_source(cargo_home: Path | None = None) -> Path:
    """Return the foca 1.0.0 source folder in cargo's registry.

    Raises BuildError naming the fetch command when no registry contains it.
    """
    home = cargo_home or Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
    candidates = sorted((home / "registry" / "src").glob(f"*/{CRATE}/Cargo.toml"))
    if not candidates:
        raise BuildError(
            f"{CRATE} source not found under {home / 'registry' / 'src'}: run"
            " 'cd rust_peer && cargo fetch --locked' to download it"
        )
    return candidates[0].parent


def build_command(cargo: str, crate_copy: Path, target_dir: Path) -> list[str]:
    """Return the cargo command line that builds the example agent."""
    return [
        cargo,
        "build",
        "--release",
        "--locked",
        "--example",
        EXAMPLE,
        "--features",
        ",".join(FEATURES),
        "--manifest-path",
        str(crate_copy / "Cargo.toml"),
        "--target-dir",
        str(target_dir),
    ]


def _copy_crate(source: Path, destination: Path) -> None:
    # Copy to a sibling folder and rename it, so an interrupted copy never
    # looks complete.
    if (destination / "Cargo.toml").is_file():
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{CRATE}.", dir=destination.parent))
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        shutil.rmtree(destination, ignore_errors=True)
        staging.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def ensure_foca_example(
    cache_dir: Path | None = None, echo: Callable[[str], None] | None = None
) -> Path:
    """Return the example agent binary, building it first if it is missing.

    The crate source in the registry never changes for one version, so an
    existing binary is reused without a staleness check. A lock file in the
    cache folder serializes concurrent callers, such as pytest-xdist
    workers. Cargo's output goes to ``build.log`` in the cache folder.
    Raises BuildError when cargo or the crate source is missing or the build
    fails, with the end of the log.
    """
    cache = cache_dir or default_cache_dir()
    binary = cache / "target" / "release" / "examples" / EXAMPLE
    if binary.is_file():
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "build.lock").open("wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.is_file():
            _build(cache, echo)
    if not binary.is_file():
        raise BuildError(f"cargo build succeeded but {binary} does not exist")
    return binary


def _build(cache: Path, echo: Callable[[str], None] | None) -> None:
    cargo = shutil.which("cargo")
    if cargo is None:
        raise BuildError(
            f"foca's example agent is not built in {cache} and cargo is not on"
            " PATH: install a Rust toolchain (https://rustup.rs) to build it"
        )
    crate_copy = cache / CRATE
    _copy_crate(find_crate_source(), crate_copy)
    command = build_command(cargo, crate_copy, cache / "target")
    log_path = cache / "build.log"
    if echo is not None:
        echo(f"building foca's example agent: {' '.join(command)} (log: {log_path})")
    with log_path.open("wb") as log:
        completed = subprocess.run(
            command, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if completed.returncode != 0:
        raise BuildError(
            f"'{' '.join(command)}' failed with status {completed.returncode};"
            f" end of {log_path}:\n{_tail(log_path)}"
        )


class ExampleAgent:
    """One example agent process bound to ``bind`` on the local machine.

    stdout and stderr (the agent's tracing log, level set by ``RUST_LOG``,
    ``info`` by default) go to ``log_path``. Use it as a context manager, or
    call ``kill`` in a ``finally`` block, so no process outlives the caller.
    """

    def __init__(
        self,
        binary: Path,
        bind: Address,
        members_file: Path,
        log_path: Path,
        announce: Address | None = None,
    ) -> None:
        self.binary = binary
        self.bind = bind
        self.members_file = members_file
        self.log_path = log_path
        self.announce = announce
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """Return the agent's command line."""
        command = [
            str(self.binary),
            str(self.bind),
            "--filename",
            str(self.members_file),
        ]
        if self.announce is not None:
            command += ["--announce", str(self.announce)]
        return command

    def start(self) -> None:
        """Start the process; the log file is appended to across restarts."""
        if self.running:
            raise RuntimeError(f"agent on {self.bind} is already running")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env["NO_COLOR"] = "1"
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def is_bound(self) -> bool:
        """Return whether ``bind`` is in use, so after ``start`` the agent bound it."""
        family = socket.AF_INET6 if self.bind.ip.version == 6 else socket.AF_INET
        probe = socket.socket(family, socket.SOCK_DGRAM)
        try:
            probe.bind(self.bind.to_sockaddr())
        except OSError:
            return True
        finally:
            probe.close()
        return False

    def kill(self) -> None:
        """Send SIGKILL and wait for the process to exit; does nothing if it has."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def members(self) -> set[Address]:
        """Return the addresses in the members file, empty before its first write."""
        try:
            text = self.members_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return set()
        return {Address.parse(line) for line in text.splitlines() if line.strip()}

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(
                encoding="utf-8", errors="replace"
            ).splitlines()
        except FileNotFoundError:
            return []

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_lines()[-lines:])

    def __enter__(self) -> ExampleAgent:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.kill()


@dataclass(frozen=True, slots=True)
class AgentBroadcastKey:
    """The key of an example agent broadcast: who sent it and its version.

    ``version`` is the Unix time in seconds of the sender's last membership
    change, or 0 before the first one.
    """

    addr: Address
    version: int


def encode_agent_broadcast(addr: Address, version: int, message: str) -> bytes:
    """Encode the agent's ``Broadcast { key: { addr, version }, msg }`` payload."""
    text = message.encode("utf-8")
    return (
        encode_socket_addr(addr)
        + encode_varint(version)
        + encode_varint(len(text))
        + text
    )


def decode_agent_broadcast(data: bytes) -> tuple[AgentBroadcastKey, str]:
    """Decode the agent's custom broadcast: a SocketAddr, a u64 and a String.

    Bytes after the string are ignored, as bincode's reader in the agent
    ignores them. Raises DecodeError for truncated input or invalid UTF-8.
    """
    addr, offset = decode_socket_addr(data, 0)
    version, offset = decode_varint(data, offset, 64)
    length, offset = decode_varint(data, offset, 64)
    end = offset + length
    if end > len(data):
        raise DecodeError(
            f"truncated input: the broadcast message needs {length} bytes,"
            f" {len(data) - offset} remain"
        )
    try:
        message = bytes(data[offset:end]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"broadcast message is not valid UTF-8: {exc}") from None
    return AgentBroadcastKey(addr, version), message


class ExampleAgentBroadcastHandler(BroadcastHandler[AgentBroadcastKey]):
    """Accept the example agent's broadcasts with the agent's own rules.

    An item is new when its version is greater than the last one stored for
    its address, or its address is unknown. New items are stored in
    ``messages`` and relayed, stale ones are dropped without error. A newer
    version replaces a pending item from the same address. An undecodable
    item raises DecodeError, so the core reports CustomBroadcastError as
    the agent reports an error for it.
    """

    def __init__(self) -> None:
        self.messages: dict[Address, tuple[int, str]] = {}

    def receive_item(
        self, data: bytes, sender: Identity | None
    ) -> AgentBroadcastKey | None:
        key, message = decode_agent_broadcast(data)
        known = self.messages.get(key.addr)
        if known is not None and known[0] >= key.version:
            return None
        self.messages[key.addr] = (key.version, message)
        return key

    def invalidates(
        self, new_key: AgentBroadcastKey, old_key: AgentBroadcastKey
    ) -> bool:
        return new_key.addr == old_key.addr and new_key.version > old_key.version


def main(argv: list[str] | None = None) -> int:
    """Build the example agent and print its path; exit 1 with the reason on failure."""
    arguments = sys.argv[1:] if argv is None else argv
    if arguments:
        print(
            f"usage: python -m conformance.foca_example (got {arguments!r}):"
            " builds foca's example agent and prints its path",
            file=sys.stderr,
        )
        return 2
    try:
        binary = ensure_foca_example(echo=lambda line: print(line, file=sys.stderr))
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(binary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Locate rust_peer and build it with cargo when it is missing or stale.

The binary is stale when any build input is newer than it: a file under
``rust_peer/src``, ``rust_peer/Cargo.toml``, ``rust_peer/Cargo.lock``,
``rust_peer/build.rs`` or ``proto/swim.proto``. Staleness is judged by
modification times only. So a cargo build may still run when cargo itself
considers the binary fresh, which then finishes without compiling anything.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from conformance.errors import BuildError
from conformance.impls import project_root, rust_peer_binary

BUILD_COMMAND = ("cargo", "build", "--release", "--locked")


def build_inputs(root: Path) -> Iterator[Path]:
    """Yield every existing file whose change requires a rebuild."""
    crate = root / "rust_peer"
    source_dir = crate / "src"
    if source_dir.is_dir():
        yield from (path for path in sorted(source_dir.rglob("*")) if path.is_file())
    for path in (
        crate / "Cargo.toml",
        crate / "Cargo.lock",
        crate / "build.rs",
        root / "proto" / "swim.proto",
    ):
        if path.is_file():
            yield path


def stale_inputs(root: Path, binary: Path) -> list[Path]:
    """Return the build inputs newer than ``binary`` (all of them if it is missing)."""
    inputs = list(build_inputs(root))
    if not binary.is_file():
        return inputs
    built = binary.stat().st_mtime
    return [path for path in inputs if path.stat().st_mtime > built]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def ensure_rust_peer(
    root: Path | None = None,
    log_path: Path | None = None,
    echo: Callable[[str], None] | None = None,
) -> Path:
    """Return the rust_peer binary, building it first when it is missing or stale.

    Cargo's output goes to ``log_path`` (default ``rust_peer/target/
    conformance-build.log``). Raises BuildError when the crate is missing,
    cargo is not on PATH or the build fails; the message includes the end of
    cargo's output.
    """
    root = root or project_root()
    crate = root / "rust_peer"
    binary = rust_peer_binary(root)
    if not (crate / "Cargo.toml").is_file():
        if binary.is_file():
            return binary
        raise BuildError(
            f"rust_peer not found: {crate / 'Cargo.toml'} does not exist; "
            "pass --impl rust=PATH_TO_BINARY to use a prebuilt rust_peer"
        )
    stale = stale_inputs(root, binary)
    if not stale:
        return binary

    cargo = shutil.which("cargo")
    if cargo is None:
        reason = "missing" if not binary.is_file() else f"older than {stale[0]}"
        raise BuildError(
            f"rust_peer binary {binary} is {reason} and cargo is not on PATH; "
            "install a Rust toolchain (https://rustup.rs) or pass --impl rust=PATH"
        )
    log_path = log_path or crate / "target" / "conformance-build.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = (cargo, *BUILD_COMMAND[1:])
    if echo:
        echo(
            f"building rust_peer: {' '.join(BUILD_COMMAND)} in {crate} "
            f"(log: {log_path})"
        )
    with log_path.open("wb") as log:
        completed = subprocess.run(
            command, cwd=crate, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if completed.returncode != 0:
        raise BuildError(
            f"'{' '.join(BUILD_COMMAND)}' in {crate} failed with status "
            f"{completed.returncode}; end of {log_path}:\n{_tail(log_path)}"
        )
    if not binary.is_file():
        raise BuildError(f"cargo build succeeded but {binary} does not exist")
    return binary

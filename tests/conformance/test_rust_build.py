"""Staleness checks and error messages of the rust_peer build helper."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conformance.errors import BuildError
from conformance.rust_build import ensure_rust_peer, stale_inputs


def make_tree(root: Path) -> Path:
    """Create a fake checkout with rust_peer sources and return the binary path."""
    (root / "rust_peer" / "src").mkdir(parents=True)
    (root / "proto").mkdir()
    for path in (
        root / "rust_peer" / "src" / "main.rs",
        root / "rust_peer" / "Cargo.toml",
        root / "rust_peer" / "Cargo.lock",
        root / "proto" / "swim.proto",
    ):
        path.write_text("x")
        os.utime(path, (1_000, 1_000))
    binary = root / "rust_peer" / "target" / "release" / "rust_peer"
    binary.parent.mkdir(parents=True)
    return binary


def test_missing_binary_is_stale(tmp_path: Path) -> None:
    binary = make_tree(tmp_path)

    assert len(stale_inputs(tmp_path, binary)) == 4


def test_newer_binary_is_fresh(tmp_path: Path) -> None:
    binary = make_tree(tmp_path)
    binary.write_text("elf")
    os.utime(binary, (2_000, 2_000))

    assert stale_inputs(tmp_path, binary) == []


def test_newer_proto_makes_binary_stale(tmp_path: Path) -> None:
    binary = make_tree(tmp_path)
    binary.write_text("elf")
    os.utime(binary, (2_000, 2_000))
    os.utime(tmp_path / "proto" / "swim.proto", (3_000, 3_000))

    assert stale_inputs(tmp_path, binary) == [tmp_path / "proto" / "swim.proto"]


def test_missing_cargo_is_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path)
    monkeypatch.setattr("shutil.which", lambda name: None)

    with pytest.raises(BuildError) as caught:
        ensure_rust_peer(tmp_path)

    assert "cargo is not on PATH" in str(caught.value)
    assert "is missing" in str(caught.value)


def test_missing_crate_is_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        ensure_rust_peer(tmp_path)

    assert "Cargo.toml does not exist" in str(caught.value)


def test_failed_build_shows_cargo_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path)
    fake_cargo = tmp_path / "bin" / "cargo"
    fake_cargo.parent.mkdir()
    fake_cargo.write_text(
        "#!/bin/sh\necho 'error[E0425]: cannot find value' >&2\nexit 101\n"
    )
    fake_cargo.chmod(0o755)
    monkeypatch.setattr("shutil.which", lambda name: str(fake_cargo))

    with pytest.raises(BuildError) as caught:
        ensure_rust_peer(tmp_path, log_path=tmp_path / "build.log")

    assert "failed with status 101" in str(caught.value)
    assert "error[E0425]" in str(caught.value)

"""Error messages and command line of the foca example agent build helper."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.errors import BuildError
from conformance.foca_example import (
    ExampleAgent,
    build_command,
    ensure_foca_example,
    find_crate_source,
)
from swim_py.identity import Address


def test_build_command_enables_example_features(tmp_path: Path) -> None:
    command = build_command("cargo", tmp_path / "foca-1.0.0", tmp_path / "target")

    assert command[:3] == ["cargo", "build", "--release"]
    assert "--locked" in command
    assert command[command.index("--example") + 1] == "foca_insecure_udp_agent"
    assert command[command.index("--features") + 1] == "std,tracing,bincode-codec"
    manifest = command[command.index("--manifest-path") + 1]
    assert manifest == str(tmp_path / "foca-1.0.0" / "Cargo.toml")


def test_missing_crate_source_names_fetch(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        find_crate_source(tmp_path)

    assert "foca-1.0.0 source not found" in str(caught.value)
    assert "cargo fetch --locked" in str(caught.value)


def test_finds_crate_in_registry(tmp_path: Path) -> None:
    crate = tmp_path / "registry" / "src" / "index.example-0123" / "foca-1.0.0"
    crate.mkdir(parents=True)
    (crate / "Cargo.toml").write_text("[package]\n")

    assert find_crate_source(tmp_path) == crate


def test_missing_cargo_is_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)

    with pytest.raises(BuildError) as caught:
        ensure_foca_example(tmp_path)

    assert "cargo is not on PATH" in str(caught.value)


def test_existing_binary_is_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = tmp_path / "target" / "release" / "examples" / "foca_insecure_udp_agent"
    binary.parent.mkdir(parents=True)
    binary.write_text("elf")
    monkeypatch.setattr("shutil.which", lambda name: None)

    assert ensure_foca_example(tmp_path) == binary


def test_agent_command_line(tmp_path: Path) -> None:
    agent = ExampleAgent(
        tmp_path / "agent",
        Address.parse("127.0.0.1:9001"),
        tmp_path / "members",
        tmp_path / "log",
        announce=Address.parse("127.0.0.1:9000"),
    )

    assert agent.command() == [
        str(tmp_path / "agent"),
        "127.0.0.1:9001",
        "--filename",
        str(tmp_path / "members"),
        "--announce",
        "127.0.0.1:9000",
    ]
    assert agent.members() == set()

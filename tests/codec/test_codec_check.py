"""The codec compatibility check on the real tree and on deliberately broken copies.

Each broken copy contains the files the check reads: ``proto/``, ``swim_py/``,
``tests/vectors/`` and rust_peer's sources. The tests that rebuild rust_peer
share one cargo target folder under ``rust_peer/target/codec-check``, so only
the first build compiles the dependencies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.codec_check import main

ROOT = Path(__file__).resolve().parents[2]
SHARED_TARGET = ROOT / "rust_peer" / "target" / "codec-check"


def require_cargo() -> None:
    if shutil.which("cargo") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("cargo is required under CI=true", pytrace=False)
        pytest.skip("cargo is not on PATH")


def copy_tree(destination: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "target")
    for name in ("proto", "swim_py"):
        shutil.copytree(ROOT / name, destination / name, ignore=ignore)
    shutil.copytree(ROOT / "tests" / "vectors", destination / "tests" / "vectors")
    crate = destination / "rust_peer"
    shutil.copytree(ROOT / "rust_peer" / "src", crate / "src")
    for name in ("Cargo.toml", "Cargo.lock", "build.rs"):
        shutil.copy2(ROOT / "rust_peer" / name, crate / name)
    return destination


def edit_schema(tree: Path, old: str, new: str, *, regenerate: bool = True) -> None:
    """Replace ``old`` with ``new`` in the copy's schema, then regenerate swim_py."""
    proto = tree / "proto" / "swim.proto"
    text = proto.read_text()
    assert old in text, f"{old!r} is not in {proto}"
    proto.write_text(text.replace(old, new))
    if regenerate:
        subprocess.run(
            [sys.executable, str(tree / "proto" / "generate.py")],
            check=True,
            capture_output=True,
        )


def run_check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(list(argv))
    return status, capsys.readouterr().out


def test_unmodified_tree_passes(capsys: pytest.CaptureFixture[str]) -> None:
    require_cargo()
    status, output = run_check(capsys, "--root", str(ROOT))
    assert status == 0, output
    assert "compatible: no problems" in output


def test_unmodified_copy_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = copy_tree(tmp_path)
    status, output = run_check(capsys, "--root", str(tree), "--no-rust")
    assert status == 0, output


def test_renumbered_field_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_cargo()
    tree = copy_tree(tmp_path)
    edit_schema(tree, "PingReq ping_req = 6;", "PingReq ping_req = 16;")
    status, output = run_check(
        capsys, "--root", str(tree), "--cargo-target-dir", str(SHARED_TARGET)
    )
    assert status == 1, output
    assert "Header.ping_req: field number changed from 6 to 16" in output
    assert "ping_req: swim_py rejects the vector" in output
    assert "ping_req: rust_peer rejects the vector" in output
    assert "differ from the checked-in vectors" in output
    assert "agree with each other but not with the vector" in output


def test_changed_type_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_cargo()
    tree = copy_tree(tmp_path)
    edit_schema(tree, "  uint32 src_incarnation = 2;", "  string src_incarnation = 2;")
    status, output = run_check(
        capsys, "--root", str(tree), "--cargo-target-dir", str(SHARED_TARGET)
    )
    assert status == 1, output
    assert "Header.src_incarnation: type changed from uint32 to string" in output
    assert "rust_peer does not build against the working tree's schema" in output
    assert "src/codec.rs" in output


def test_removed_variant_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = copy_tree(tmp_path)
    edit_schema(tree, "    Feed feed = 11;\n", "")
    status, output = run_check(capsys, "--root", str(tree), "--no-rust")
    assert status == 1, output
    assert (
        "Header.feed: oneof variant missing (it was field 11, type Feed,"
        " in oneof message)" in output
    )
    assert "feed_no_members" in output


def test_removed_message_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = copy_tree(tmp_path)
    edit_schema(tree, "    TurnUndead turn_undead = 14;\n", "", regenerate=False)
    edit_schema(tree, "message TurnUndead {}\n", "")
    status, output = run_check(capsys, "--root", str(tree), "--no-rust")
    assert status == 1, output
    assert "message TurnUndead: missing from the schema" in output
    assert "Header.turn_undead: oneof variant missing" in output


def test_renumbered_enum_value_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = copy_tree(tmp_path)
    edit_schema(tree, "STATE_DOWN = 2;", "STATE_DOWN = 3;")
    status, output = run_check(capsys, "--root", str(tree), "--no-rust")
    assert status == 1, output
    assert "enum State: value STATE_DOWN changed from 2 to 3" in output
    assert "decodes it differently" in output or "rejects the vector" in output


def test_renamed_field_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = copy_tree(tmp_path)
    edit_schema(tree, "Gossip gossip = 12;", "Gossip chatter = 12;", regenerate=False)
    status, output = run_check(capsys, "--root", str(tree), "--no-rust")
    assert status == 1, output
    assert "Header.gossip: oneof variant missing" in output
    assert "field 12 is now Header.chatter" in output
    assert "Header.chatter: reuses field number 12" in output


def test_stale_generated_module_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = copy_tree(tmp_path)
    edit_schema(
        tree, "  uint64 renewal = 3;", "  uint64 renewal = 4;", regenerate=False
    )
    status, output = run_check(capsys, "--root", str(tree), "--no-rust")
    assert status == 1, output
    assert "Identity.renewal: field number changed from 3 to 4" in output
    assert "swim_pb2.py is stale" in output


def test_added_field_is_compatible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = copy_tree(tmp_path)
    edit_schema(
        tree, "  uint64 renewal = 3;\n", "  uint64 renewal = 3;\n  bytes tag = 4;\n"
    )
    status, output = run_check(capsys, "--root", str(tree), "--no-rust")
    assert status == 0, output
    assert "compatible addition: Identity.tag: new field 4, type bytes" in output


def test_schema_that_does_not_compile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = copy_tree(tmp_path)
    edit_schema(tree, "message Feed {}", "message Feed {", regenerate=False)
    status, output = run_check(capsys, "--root", str(tree), "--no-rust")
    assert status == 1, output
    assert "does not compile" in output


def test_reference_is_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vectors_dir = tmp_path / "vectors"
    shutil.copytree(ROOT / "tests" / "vectors", vectors_dir)
    status, _ = run_check(
        capsys,
        "--root",
        str(ROOT),
        "--vectors-dir",
        str(vectors_dir),
        "--write-reference",
    )
    assert status == 0
    written = (vectors_dir / "swim_schema.json").read_text()
    assert written == (ROOT / "tests" / "vectors" / "swim_schema.json").read_text()

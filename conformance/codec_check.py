"""Check a working tree's wire schema and both codecs for compatibility.

``swim-conformance codec`` and ``python -m conformance.codec_check`` run
``main``. The checks, in order:

1. ``proto/swim.proto`` compiles, and its layout (field numbers, types,
   labels, oneofs, enum values) matches the reference layout checked in as
   ``tests/vectors/swim_schema.json``. Each difference is named, for example
   ``Header.ping_req: field number changed from 6 to 16``.
2. swim_py's generated protobuf module is current for that schema.
3. swim_py's ``ProtobufCodec``, imported from the working tree, decodes every
   golden vector in ``tests/vectors/foca_vectors.json`` to its expected
   structure and encodes that structure back to the same bytes.
4. rust_peer, rebuilt from the working tree with cargo, writes the same
   vectors from foca's sending path (``rust_peer vectors --check``), and its
   codec decodes and encodes every vector like swim_py's.

The exit status is 0 when everything is compatible, 1 when anything is not,
and 2 when a check could not run (for example cargo is missing). After an
intended, compatible schema change, rewrite the reference with
``--write-reference`` and the vectors with the command recorded in the
vectors file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.codec_json import JsonObject, datagram_from_json, datagram_to_json
from conformance.codec_oracle import CodecOracle, OracleError
from conformance.schema_layout import SchemaError, compare_layouts, compile_layout

__all__ = ["main"]

VECTORS_FILE = "foca_vectors.json"
REFERENCE_FILE = "swim_schema.json"
_MAX_DIFFERENCES = 3


@dataclass
class Report:
    """Findings by section, printed in the order the checks ran."""

    sections: list[tuple[str, list[str], list[str]]] = field(default_factory=list)

    def section(self, title: str) -> tuple[list[str], list[str]]:
        """Start a section and return its (problems, notes) lists."""
        problems: list[str] = []
        notes: list[str] = []
        self.sections.append((title, problems, notes))
        return problems, notes

    @property
    def problem_count(self) -> int:
        return sum(len(problems) for _, problems, _ in self.sections)

    def render(self) -> str:
        lines = []
        for title, problems, notes in self.sections:
            status = "FAILED" if problems else "ok"
            lines.append(f"{title}: {status}")
            lines.extend(f"  problem: {text}" for text in problems)
            lines.extend(f"  note: {text}" for text in notes)
        count = self.problem_count
        if count:
            lines.append(f"incompatible: {count} problem{'s' if count != 1 else ''}")
        else:
            lines.append("compatible: no problems")
        return "\n".join(lines)


class CheckError(RuntimeError):
    """A check could not run at all."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swim-conformance codec",
        description="Check the wire schema and the swim_py and rust_peer codecs"
        " against each other and against the golden vectors.",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="working tree to check [default: this checkout]",
    )
    parser.add_argument(
        "--vectors-dir",
        type=Path,
        help="folder with foca_vectors.json and swim_schema.json"
        " [default: ROOT/tests/vectors]",
    )
    parser.add_argument(
        "--no-rust",
        action="store_true",
        help="skip rebuilding rust_peer and the Rust codec checks",
    )
    parser.add_argument(
        "--rust-peer",
        type=Path,
        metavar="BINARY",
        help="use this rust_peer binary instead of building ROOT/rust_peer",
    )
    parser.add_argument(
        "--cargo-target-dir",
        type=Path,
        metavar="DIR",
        help="cargo's target folder for the rebuild [default: cargo's own]",
    )
    parser.add_argument(
        "--write-reference",
        action="store_true",
        help="write the schema's current layout as the reference and exit",
    )
    # Internal: the subprocess that runs the working tree's Python codec.
    parser.add_argument("--python-worker", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the checks, print the report and return the exit status."""
    args = build_parser().parse_args(argv)
    if args.python_worker is not None:
        return _python_worker(args.python_worker)

    root: Path = args.root.resolve()
    vectors_dir: Path = (args.vectors_dir or root / "tests" / "vectors").resolve()
    try:
        if args.write_reference:
            return _write_reference(root, vectors_dir)
        report = run_checks(root, vectors_dir, args)
    except CheckError as exc:
        print(f"codec check could not run: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 1 if report.problem_count else 0


def run_checks(root: Path, vectors_dir: Path, args: argparse.Namespace) -> Report:
    report = Report()
    check_schema(root, vectors_dir / REFERENCE_FILE, report)
    check_generated_module(root, report)
    vectors = _load_vectors(vectors_dir / VECTORS_FILE)
    python_results = check_python_codec(
        root, vectors_dir / VECTORS_FILE, vectors, report
    )
    if args.no_rust:
        return report
    binary = args.rust_peer or build_rust_peer(root, args.cargo_target_dir, report)
    if binary is not None:
        check_rust_vectors(binary, vectors_dir, report)
        check_rust_codec(binary, vectors, python_results, report)
    return report


# Schema


def check_schema(root: Path, reference_path: Path, report: Report) -> None:
    proto = root / "proto" / "swim.proto"
    problems, notes = report.section(f"schema {proto} against {reference_path.name}")
    try:
        current = compile_layout(proto)
    except SchemaError as exc:
        problems.append(str(exc))
        return
    try:
        reference = json.loads(reference_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckError(
            f"cannot read the reference layout {reference_path}: {exc}"
        ) from exc
    changes = compare_layouts(reference, current)
    problems.extend(changes.problems)
    notes.extend(f"compatible addition: {text}" for text in changes.additions)


def _write_reference(root: Path, vectors_dir: Path) -> int:
    proto = root / "proto" / "swim.proto"
    try:
        layout = compile_layout(proto)
    except SchemaError as exc:
        raise CheckError(str(exc)) from exc
    path = vectors_dir / REFERENCE_FILE
    path.write_text(json.dumps(layout, indent=2) + "\n", encoding="utf-8")
    print(f"wrote the layout of {proto} to {path}")
    return 0


def check_generated_module(root: Path, report: Report) -> None:
    problems, _ = report.section("swim_py's generated protobuf module")
    script = root / "proto" / "generate.py"
    result = subprocess.run(
        [sys.executable, str(script), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        problems.append(
            (result.stderr.strip() or result.stdout.strip())
            + " (the Python codec below still uses the stale module)"
        )


# The Python codec


def _load_vectors(path: Path) -> list[JsonObject]:
    try:
        vectors: list[JsonObject] = json.loads(path.read_text(encoding="utf-8"))[
            "vectors"
        ]
    except (OSError, ValueError, KeyError) as exc:
        raise CheckError(f"cannot read the vectors file {path}: {exc}") from exc
    return vectors


def check_python_codec(
    root: Path, vectors_path: Path, vectors: list[JsonObject], report: Report
) -> dict[str, JsonObject]:
    """Run the working tree's codec on every vector in a subprocess.

    The subprocess imports swim_py from ``root``, so a copy of the tree is
    checked with its own code. Returns each vector's result by name.
    """
    problems, notes = report.section(f"swim_py codec against {len(vectors)} vectors")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(root), *filter(None, [env.get("PYTHONPATH")])]
    )
    command = [
        sys.executable,
        "-m",
        "conformance.codec_check",
        "--python-worker",
        str(vectors_path),
    ]
    result = subprocess.run(
        command,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        problems.append(
            f"the codec run failed with status {result.returncode}:"
            f" {result.stderr.strip()[-2000:]}"
        )
        return {}
    output = json.loads(result.stdout)
    module = Path(output["codec_module"]).resolve()
    if not module.is_relative_to(root):
        notes.append(f"swim_py came from {module}, not from {root}")
    results: dict[str, JsonObject] = {}
    findings: list[tuple[str, str]] = []
    for vector, outcome in zip(vectors, output["results"], strict=True):
        results[vector["name"]] = outcome
        findings.extend(_compare_outcome("swim_py", vector, outcome))
    problems.extend(_grouped(findings, len(vectors)))
    return results


def _python_worker(vectors_path: Path) -> int:
    """Decode and encode every vector with swim_py as imported here."""
    import swim_py.codec
    from swim_py.codec.datagram import decode_datagram, encode_datagram

    codec = swim_py.codec.ProtobufCodec()
    results = []
    for vector in _load_vectors(vectors_path):
        outcome: JsonObject = {}
        data = bytes.fromhex(vector["hex"])
        try:
            decoded = decode_datagram(
                codec, data, max_packet_size=vector["max_packet_size"]
            )
            outcome["datagram"] = datagram_to_json(decoded)
        # Any exception is a finding to report, such as an AttributeError from
        # a generated module that lost a message type.
        except Exception as exc:  # noqa: BLE001
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        try:
            expected = datagram_from_json(vector["datagram"])
            outcome["hex"] = encode_datagram(codec, expected).hex()
        except Exception as exc:  # noqa: BLE001
            outcome["encode_error"] = f"{type(exc).__name__}: {exc}"
        results.append(outcome)
    print(json.dumps({"codec_module": swim_py.codec.__file__, "results": results}))
    return 0


# rust_peer


def build_rust_peer(root: Path, target_dir: Path | None, report: Report) -> Path | None:
    """Build ROOT/rust_peer in release mode and return the binary, or None."""
    problems, _ = report.section(f"rust_peer build from {root / 'rust_peer'}")
    cargo = shutil.which("cargo")
    if cargo is None:
        raise CheckError("cargo is not on PATH: pass --no-rust or --rust-peer BINARY")
    env = dict(os.environ)
    if target_dir is not None:
        env["CARGO_TARGET_DIR"] = str(target_dir)
    result = subprocess.run(
        [cargo, "build", "--release", "--locked"],
        cwd=root / "rust_peer",
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        problems.append(
            "rust_peer does not build against the working tree's schema:\n"
            + _cargo_errors(result.stderr)
        )
        return None
    target = target_dir or root / "rust_peer" / "target"
    return target / "release" / "rust_peer"


def _cargo_errors(stderr: str) -> str:
    """Keep cargo's error lines and the source locations that follow them."""
    kept = []
    lines = stderr.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("error"):
            kept.append("    " + line)
            following = lines[index + 1 : index + 2]
            kept.extend("    " + text for text in following if "-->" in text)
    return "\n".join(kept[:20]) or "    " + "\n    ".join(lines[-20:])


def check_rust_vectors(binary: Path, vectors_dir: Path, report: Report) -> None:
    problems, _ = report.section("rust_peer vectors from foca's sending path")
    result = subprocess.run(
        [str(binary), "vectors", "--out", str(vectors_dir), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        problems.append(
            "foca's datagrams through the rebuilt rust_peer differ from the"
            " checked-in vectors: " + result.stderr.strip().removeprefix("rust_peer: ")
        )


def check_rust_codec(
    binary: Path,
    vectors: list[JsonObject],
    python_results: dict[str, JsonObject],
    report: Report,
) -> None:
    problems, _ = report.section(f"rust_peer codec against {len(vectors)} vectors")
    findings: list[tuple[str, str]] = []
    try:
        with CodecOracle(binary) as oracle:
            for vector in vectors:
                data = bytes.fromhex(vector["hex"])
                reply = oracle.decode_datagram(data, vector["max_packet_size"])
                outcome: JsonObject = {}
                if "datagram" in reply:
                    outcome["datagram"] = _normalized(reply["datagram"])
                else:
                    outcome["error"] = f"{reply['error']}: {reply.get('detail')}"
                encoded = oracle.encode_datagram(vector["datagram"])
                if "hex" in encoded:
                    outcome["hex"] = encoded["hex"]
                else:
                    outcome["encode_error"] = f"{encoded['error']}: {encoded['detail']}"
                found = _compare_outcome("rust_peer", vector, outcome)
                findings.extend(found)
                python = python_results.get(vector["name"])
                if found and python is not None:
                    findings.extend(_agreement(vector, outcome, python))
    except OracleError as exc:
        problems.append(f"the rust_peer oracle failed: {exc}")
    problems.extend(_grouped(findings, len(vectors)))


# Comparisons


def _normalized(datagram: object) -> JsonObject:
    """Rewrite a datagram's JSON as Python formats it, so text compares equal."""
    return datagram_to_json(datagram_from_json(datagram))


def _compare_outcome(
    codec: str, vector: JsonObject, outcome: JsonObject
) -> list[tuple[str, str]]:
    """Return (vector name, reason) for each way ``outcome`` misses the vector."""
    name = vector["name"]
    findings = []
    expected = _normalized(vector["datagram"])
    if "error" in outcome:
        findings.append((name, f"{codec} rejects the vector: {outcome['error']}"))
    else:
        differences = _differences(expected, outcome["datagram"], "")
        if differences:
            findings.append(
                (name, f"{codec} decodes it differently: " + "; ".join(differences))
            )
    if "encode_error" in outcome:
        findings.append(
            (
                name,
                f"{codec} cannot encode the expected structure:"
                f" {outcome['encode_error']}",
            )
        )
    elif outcome["hex"] != vector["hex"]:
        findings.append(
            (
                name,
                f"{codec} encodes the expected structure to different bytes"
                f" ({_first_difference(vector['hex'], outcome['hex'])})",
            )
        )
    return findings


def _agreement(
    vector: JsonObject, rust: JsonObject, python: JsonObject
) -> list[tuple[str, str]]:
    """Explain a vector that both codecs miss in the same way."""
    same_decode = "datagram" in rust and rust.get("datagram") == python.get("datagram")
    same_bytes = "hex" in rust and rust.get("hex") == python.get("hex")
    if same_decode or same_bytes:
        reason = (
            "swim_py and rust_peer agree with each other but not with the vector,"
            " so the wire format changed: nodes built before and after this"
            " change cannot talk"
        )
        return [(vector["name"], reason)]
    return []


def _grouped(findings: list[tuple[str, str]], total: int) -> list[str]:
    """Merge the vectors that fail for the same reason into one line."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in findings:
        by_reason.setdefault(reason, []).append(name)
    lines = []
    for reason, names in by_reason.items():
        if len(names) == 1:
            lines.append(f"{names[0]}: {reason}")
            continue
        shown = ", ".join(names[:3])
        if len(names) > 3:
            shown += f" and {len(names) - 3} more"
        lines.append(f"{len(names)} of {total} vectors ({shown}): {reason}")
    return lines


def _differences(expected: Any, actual: Any, path: str) -> list[str]:
    """Return up to three paths where two JSON values differ."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[str] = []
        for key in expected.keys() | actual.keys():
            child = f"{path}.{key}" if path else key
            if key not in actual:
                found.append(f"{child}: missing")
            elif key not in expected:
                found.append(f"{child}: unexpected {actual[key]!r}")
            else:
                found.extend(_differences(expected[key], actual[key], child))
        return sorted(found)[:_MAX_DIFFERENCES]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: expected {len(expected)} items, got {len(actual)}"]
        found = []
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            found.extend(_differences(left, right, f"{path}[{index}]"))
        return found[:_MAX_DIFFERENCES]
    if expected != actual:
        return [f"{path}: expected {expected!r}, got {actual!r}"]
    return []


def _first_difference(expected_hex: str, actual_hex: str) -> str:
    expected = bytes.fromhex(expected_hex)
    actual = bytes.fromhex(actual_hex)
    for offset, (left, right) in enumerate(zip(expected, actual, strict=False)):
        if left != right:
            return (
                f"first difference at byte {offset}: expected {left:02x},"
                f" got {right:02x}"
            )
    return f"expected {len(expected)} bytes, got {len(actual)}"


if __name__ == "__main__":
    sys.exit(main())

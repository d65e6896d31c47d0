"""The wire layout of ``proto/swim.proto`` and the changes that break it.

``compile_layout`` compiles the schema with grpcio-tools' protoc into a
FileDescriptorSet and keeps what decides the bytes on the wire: each
message's fields with number, type, label, oneof and presence, and each
enum's values. ``compare_layouts`` lists every difference from a reference
layout as a sentence that names the field, for example
``Header.ping_req: field number changed from 6 to 16``. Added fields,
messages and enum values are compatible, and every other change is a problem.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

__all__ = ["LayoutChanges", "SchemaError", "compare_layouts", "compile_layout"]

Layout = dict[str, Any]

_TYPE_NAMES = {
    value: name.removeprefix("TYPE_").lower()
    for name, value in descriptor_pb2.FieldDescriptorProto.Type.items()
}
# proto3 marks every field that is not repeated as LABEL_OPTIONAL, which
# means a singular field whatever its presence.
_LABEL_NAMES = {
    descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL: "singular",
    descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED: "repeated",
    descriptor_pb2.FieldDescriptorProto.LABEL_REQUIRED: "required",
}


class SchemaError(RuntimeError):
    """The schema does not compile, or protoc cannot run."""


@dataclass
class LayoutChanges:
    """Differences from the reference: ``problems`` break compatibility."""

    problems: list[str] = field(default_factory=list)
    additions: list[str] = field(default_factory=list)


def compile_layout(proto_path: Path) -> Layout:
    """Compile ``proto_path`` with protoc and return its wire layout."""
    with tempfile.TemporaryDirectory() as out_dir:
        descriptor_path = Path(out_dir) / "schema.binpb"
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={proto_path.parent}",
            f"--descriptor_set_out={descriptor_path}",
            str(proto_path),
        ]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SchemaError(f"failed to run protoc from grpcio-tools: {exc}") from exc
        if result.returncode != 0:
            raise SchemaError(
                f"{proto_path} does not compile (protoc status {result.returncode}):"
                f" {result.stderr.strip() or result.stdout.strip()}"
            )
        descriptors = descriptor_pb2.FileDescriptorSet.FromString(
            descriptor_path.read_bytes()
        )
    return layout_of(descriptors.file[0])


def layout_of(file: descriptor_pb2.FileDescriptorProto) -> Layout:
    """Return the wire-relevant parts of one compiled .proto file as JSON data."""
    messages: dict[str, Any] = {}
    for message in file.message_type:
        fields: dict[str, Any] = {}
        for entry in message.field:
            oneof = None
            if entry.HasField("oneof_index") and not entry.proto3_optional:
                oneof = message.oneof_decl[entry.oneof_index].name
            fields[entry.name] = {
                "number": entry.number,
                "type": _type_name(file.package, entry),
                "label": _LABEL_NAMES[entry.label],
                "oneof": oneof,
                "explicit_presence": entry.proto3_optional,
            }
        messages[message.name] = {"fields": fields}
    enums = {
        enum.name: {"values": {value.name: value.number for value in enum.value}}
        for enum in file.enum_type
    }
    return {"package": file.package, "messages": messages, "enums": enums}


def _type_name(package: str, entry: descriptor_pb2.FieldDescriptorProto) -> str:
    if entry.type_name:
        return entry.type_name.removeprefix(f".{package}.").lstrip(".")
    return _TYPE_NAMES[entry.type]


def compare_layouts(reference: Layout, current: Layout) -> LayoutChanges:
    """List how ``current`` differs from ``reference``, in schema order."""
    changes = LayoutChanges()
    if reference["package"] != current["package"]:
        changes.problems.append(
            f"package changed from {reference['package']} to {current['package']}:"
            " every type name on both sides changes with it"
        )
    for name, old in reference["messages"].items():
        new = current["messages"].get(name)
        if new is None:
            changes.problems.append(f"message {name}: missing from the schema")
            continue
        _compare_fields(name, old["fields"], new["fields"], changes)
    for name in current["messages"]:
        if name not in reference["messages"]:
            changes.additions.append(f"message {name}: new")
    for name, old in reference["enums"].items():
        new = current["enums"].get(name)
        if new is None:
            changes.problems.append(f"enum {name}: missing from the schema")
            continue
        _compare_enum_values(name, old["values"], new["values"], changes)
    for name in current["enums"]:
        if name not in reference["enums"]:
            changes.additions.append(f"enum {name}: new")
    return changes


def _compare_fields(
    message: str,
    old_fields: dict[str, Any],
    new_fields: dict[str, Any],
    changes: LayoutChanges,
) -> None:
    new_by_number = {entry["number"]: name for name, entry in new_fields.items()}
    for name, old in old_fields.items():
        where = f"{message}.{name}"
        new = new_fields.get(name)
        if new is None:
            kind = "oneof variant" if old["oneof"] else "field"
            text = f"{where}: {kind} missing (it was field {old['number']}"
            text += f", type {old['type']}"
            if old["oneof"]:
                text += f", in oneof {old['oneof']}"
            taken = new_by_number.get(old["number"])
            if taken is not None:
                text += f"; field {old['number']} is now {message}.{taken}"
            changes.problems.append(text + ")")
            continue
        if new["number"] != old["number"]:
            changes.problems.append(
                f"{where}: field number changed from {old['number']} to {new['number']}"
            )
        if new["type"] != old["type"]:
            changes.problems.append(
                f"{where}: type changed from {old['type']} to {new['type']}"
            )
        if new["label"] != old["label"]:
            changes.problems.append(
                f"{where}: label changed from {old['label']} to {new['label']}"
            )
        if new["oneof"] != old["oneof"]:
            changes.problems.append(
                f"{where}: moved from {_oneof_text(old['oneof'])} to"
                f" {_oneof_text(new['oneof'])}"
            )
        if new["explicit_presence"] != old["explicit_presence"]:
            changes.problems.append(
                f"{where}: presence changed from {_presence(old)} to {_presence(new)}"
            )
    old_numbers = {entry["number"]: name for name, entry in old_fields.items()}
    for name, new in new_fields.items():
        if name in old_fields:
            continue
        previous = old_numbers.get(new["number"])
        if previous is None:
            changes.additions.append(
                f"{message}.{name}: new field {new['number']}, type {new['type']}"
            )
        else:
            changes.problems.append(
                f"{message}.{name}: reuses field number {new['number']}, which was"
                f" {message}.{previous} in the reference"
            )


def _compare_enum_values(
    enum: str, old: dict[str, int], new: dict[str, int], changes: LayoutChanges
) -> None:
    for name, number in old.items():
        if name not in new:
            changes.problems.append(
                f"enum {enum}: value {name} missing (it was {number})"
            )
        elif new[name] != number:
            changes.problems.append(
                f"enum {enum}: value {name} changed from {number} to {new[name]}"
            )
    for name, number in new.items():
        if name not in old:
            changes.additions.append(f"enum {enum}: new value {name} = {number}")


def _oneof_text(oneof: str | None) -> str:
    return f"oneof {oneof}" if oneof else "no oneof"


def _presence(entry: dict[str, Any]) -> str:
    return "explicit (optional)" if entry["explicit_presence"] else "implicit"

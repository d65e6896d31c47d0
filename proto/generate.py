"""Regenerate swim_py/codec/_generated/swim_pb2.py and .pyi from proto/swim.proto.

Run ``python proto/generate.py`` from anywhere; ``--check`` exits 1 when the
checked-in files differ from what the pinned grpcio-tools produces.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUTPUT_DIR = ROOT / "swim_py" / "codec" / "_generated"
OUTPUT_NAMES = ("swim_pb2.py", "swim_pb2.pyi")
BANNER = (
    "# This file is generated from proto/swim.proto by grpcio-tools (pinned in\n"
    "# pyproject.toml) with `python proto/generate.py`. Do not edit it.\n"
)


def generate() -> dict[str, str]:
    """Run protoc from grpcio-tools and return each generated file's text by name."""
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as out_dir:
        status = protoc.main(
            [
                "protoc",
                f"--proto_path={PROTO_DIR}",
                f"--python_out={out_dir}",
                f"--pyi_out={out_dir}",
                str(PROTO_DIR / "swim.proto"),
            ]
        )
        if status != 0:
            raise SystemExit(
                f"protoc failed with status {status} on {PROTO_DIR / 'swim.proto'}"
            )
        return {
            name: BANNER + (Path(out_dir) / name).read_text() for name in OUTPUT_NAMES
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="fail if the checked-in module is stale"
    )
    args = parser.parse_args()
    generated = generate()
    if args.check:
        stale = [
            name
            for name, text in generated.items()
            if not (OUTPUT_DIR / name).exists()
            or (OUTPUT_DIR / name).read_text() != text
        ]
        for name in stale:
            print(
                f"{(OUTPUT_DIR / name).relative_to(ROOT)} is stale:"
                " run `python proto/generate.py`",
                file=sys.stderr,
            )
        return 1 if stale else 0
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in generated.items():
        (OUTPUT_DIR / name).write_text(text)
        print(f"wrote {(OUTPUT_DIR / name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

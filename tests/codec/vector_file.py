"""The checked-in golden datagrams that ``rust_peer vectors`` writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VECTORS_DIR = ROOT / "tests" / "vectors"
VECTORS_PATH = VECTORS_DIR / "foca_vectors.json"


def load_vectors() -> list[dict[str, Any]]:
    """Return the vectors in file order."""
    with VECTORS_PATH.open(encoding="utf-8") as file:
        vectors: list[dict[str, Any]] = json.load(file)["vectors"]
    return vectors

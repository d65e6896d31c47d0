"""Fixtures for the conformance tests: the fake node and the rust_peer build."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conformance.errors import BuildError
from conformance.impls import Implementation
from conformance.rust_build import ensure_rust_peer

FAKE_NODE = Path(__file__).resolve().parent / "fake_node.py"


def fake_implementation(name: str = "fake", *extra: str) -> Implementation:
    """Return an Implementation that runs fake_node.py with ``extra`` flags."""
    return Implementation(
        name=name, command=(sys.executable, str(FAKE_NODE), *extra), label=name
    )


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def rust_peer_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build rust_peer if needed; skip when that fails, except under CI=true."""
    log_path = tmp_path_factory.mktemp("rust_build") / "cargo.log"
    try:
        return ensure_rust_peer(log_path=log_path)
    except BuildError as error:
        if in_ci():
            pytest.fail(f"rust_peer is required under CI=true: {error}", pytrace=False)
        pytest.skip(f"rust_peer is not available: {error}")

"""Fixtures for the codec tests: the rust_peer build and its codec oracle."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.codec_oracle import CodecOracle
from conformance.errors import BuildError
from conformance.rust_build import ensure_rust_peer


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def rust_peer_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build rust_peer if needed; skip when that fails, except under CI=true."""
    log_path = tmp_path_factory.mktemp("rust_build") / "cargo.log"
    try:
        return ensure_rust_peer(log_path=log_path)
    except BuildError as error:
        if _in_ci():
            pytest.fail(f"rust_peer is required under CI=true: {error}", pytrace=False)
        pytest.skip(f"rust_peer is not available: {error}")


@pytest.fixture(scope="session")
def oracle(rust_peer_binary: Path) -> Iterator[CodecOracle]:
    """One ``rust_peer oracle`` process for the whole test session."""
    with CodecOracle(rust_peer_binary) as running:
        yield running

"""Node implementations the harness can start, and mixes of them.

An implementation is a name, a command line prefix (the contract flags are
appended to it) and a short label used in wire statistics keys such as
``py->rust``. ``python`` (swim-node) and ``rust`` (rust_peer) are built in;
``--impl NAME=COMMAND`` replaces one of them or adds another.

A mix assigns an implementation to each node by index. ``python`` and
``rust`` (or any implementation name) put every node on that
implementation. ``A+B`` alternates A, B, A, B, ... starting at n0, and
``mixed`` means ``python+rust``: with 5 nodes that is 3 swim-node and 2
rust_peer, and n0 is Python and n1 is Rust.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from conformance.errors import ScenarioError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")

PYTHON = "python"
RUST = "rust"
MIXED = "mixed"

# The node images that docker/build-images.sh builds, for the docker runtime.
PYTHON_IMAGE = "swim-py-node:dev"
RUST_IMAGE = "swim-rust-peer:dev"


@dataclass(frozen=True)
class Implementation:
    """A way to start a node process.

    ``needs_rust_build`` marks the built-in rust_peer, which the harness builds
    with cargo before use. ``env`` adds variables to the node's environment.
    ``image`` is the container image that the docker runtime runs instead of
    ``command``; its entrypoint is the node program.
    """

    name: str
    command: tuple[str, ...]
    label: str
    needs_rust_build: bool = False
    env: tuple[tuple[str, str], ...] = ()
    image: str | None = None

    def describe(self) -> str:
        return shlex.join(self.command)


def project_root() -> Path:
    """Return the folder that contains the ``conformance`` package."""
    return Path(__file__).resolve().parent.parent


def rust_peer_binary(root: Path | None = None) -> Path:
    return (root or project_root()) / "rust_peer" / "target" / "release" / "rust_peer"


def _python_path_env() -> tuple[tuple[str, str], ...]:
    # `python -m conformance.node_agent` must import this checkout even when the
    # node runs with another working directory.
    existing = os.environ.get("PYTHONPATH")
    root = str(project_root())
    value = root if not existing else os.pathsep.join([root, existing])
    return (("PYTHONPATH", value),)


def default_registry() -> dict[str, Implementation]:
    """Return the built-in implementations: swim-node and rust_peer."""
    return {
        PYTHON: Implementation(
            name=PYTHON,
            command=(sys.executable, "-m", "conformance.node_agent"),
            label="py",
            env=_python_path_env(),
            image=PYTHON_IMAGE,
        ),
        RUST: Implementation(
            name=RUST,
            command=(str(rust_peer_binary()),),
            label="rust",
            needs_rust_build=True,
            image=RUST_IMAGE,
        ),
    }


def parse_impl_option(text: str) -> Implementation:
    """Parse ``NAME=COMMAND``; COMMAND is split like a shell command line."""
    name, sep, command = text.partition("=")
    name = name.strip()
    if not sep or not _NAME.match(name):
        raise ScenarioError(
            f"invalid --impl {text!r}: expected NAME=COMMAND, with NAME made of "
            "letters, digits, '_' and '-'"
        )
    if name == MIXED:
        raise ScenarioError(
            "invalid --impl: 'mixed' is reserved for the python+rust mix"
        )
    try:
        argv = tuple(shlex.split(command))
    except ValueError as error:
        raise ScenarioError(f"invalid --impl {text!r}: {error}") from None
    if not argv:
        raise ScenarioError(f"invalid --impl {text!r}: COMMAND is empty")
    label = "py" if name == PYTHON else name
    return Implementation(name=name, command=argv, label=label)


def build_registry(options: Iterable[str]) -> dict[str, Implementation]:
    """Return the built-in registry updated with each ``--impl`` option."""
    registry = default_registry()
    for text in options:
        implementation = parse_impl_option(text)
        registry[implementation.name] = implementation
    return registry


def mix_layout(
    mix: str, nodes: tuple[str, ...], registry: Mapping[str, Implementation]
) -> dict[str, Implementation]:
    """Assign an implementation to each node name for ``mix``."""
    names = [PYTHON, RUST] if mix == MIXED else mix.split("+")
    for name in names:
        if name not in registry:
            raise ScenarioError(
                f"unknown implementation {name!r} in mix {mix!r}; known: "
                f"{', '.join(sorted(registry))} (add one with --impl NAME=COMMAND)"
            )
    return {
        node: registry[names[index % len(names)]] for index, node in enumerate(nodes)
    }


def mix_implementations(
    mix: str, registry: Mapping[str, Implementation]
) -> list[Implementation]:
    """Return the distinct implementations a mix uses, in mix order."""
    names = [PYTHON, RUST] if mix == MIXED else mix.split("+")
    seen: dict[str, Implementation] = {}
    for name in names:
        if name not in registry:
            raise ScenarioError(f"unknown implementation {name!r} in mix {mix!r}")
        seen.setdefault(name, registry[name])
    return list(seen.values())

"""Exceptions raised by the conformance harness."""

from __future__ import annotations


class HarnessError(Exception):
    """Base class for every error the harness raises on purpose."""


class ScenarioError(HarnessError):
    """A scenario file or a config override is invalid."""


class BuildError(HarnessError):
    """rust_peer could not be located or built."""


class NodeStartError(HarnessError):
    """A node process failed to start or to send a valid ready line."""


class NodeExitedError(HarnessError):
    """A node process exited while the harness still expected it to run."""


class ContractError(HarnessError):
    """A node sent a line that violates the peer contract."""


class ClosedBeforeReady(ContractError):
    """The control connection ended before the node sent its ready line."""


class CommandError(HarnessError):
    """A node replied ``ok: false`` to a command."""


class CommandTimeout(HarnessError):
    """A node did not reply to a command before its deadline."""


class ExpectationFailed(HarnessError):
    """A scenario expectation did not hold before its deadline."""


class DockerError(HarnessError):
    """A Docker call of the docker runtime failed, or Docker is not usable."""

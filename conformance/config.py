"""Node configuration: foca 1.0 presets, ``--set`` overrides and bound variables.

The harness computes the config every node should run with, passes the preset
and overrides on the node's command line, and compares the result with the
``config`` object of the node's ready line. Bounds in scenarios are derived
from the same values.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from conformance.errors import ContractError, ScenarioError

# foca 1.0's DEFAULT_REMOVE_DOWN_AFTER (config.rs): 24 hours.
DEFAULT_REMOVE_DOWN_AFTER_MS = 24 * 60 * 60 * 1000

DURATION_FIELDS = (
    "probe_period_ms",
    "probe_rtt_ms",
    "suspect_to_down_after_ms",
    "remove_down_after_ms",
)
COUNT_FIELDS = ("num_indirect_probes", "max_transmissions", "max_packet_size")
PERIODIC_FIELDS = (
    "periodic_announce",
    "periodic_announce_to_down_members",
    "periodic_gossip",
)
FIELDS = (*DURATION_FIELDS, *COUNT_FIELDS, "notify_down_members", *PERIODIC_FIELDS)

_PRESET = re.compile(r"^(simple|lan:(\d+)|wan:(\d+))$")
_PERIODIC = re.compile(r"^(\d+):(\d+)$")

# Durations that the node may report rounded to whole milliseconds; foca's
# presets derive suspect_to_down_after from a float, e.g. 5204.1199... ms.
_DURATION_TOLERANCE_MS = 1.0


@dataclass(frozen=True)
class Periodic:
    """A periodic task: every ``frequency_ms`` it contacts ``num_members`` members."""

    frequency_ms: int
    num_members: int

    def __str__(self) -> str:
        return f"{self.frequency_ms}:{self.num_members}"


@dataclass(frozen=True)
class SwimConfig:
    """The foca ``Config`` fields a node exposes through ``--set``."""

    probe_period_ms: float
    probe_rtt_ms: float
    num_indirect_probes: int
    max_transmissions: int
    suspect_to_down_after_ms: float
    remove_down_after_ms: float
    max_packet_size: int
    notify_down_members: bool
    periodic_announce: Periodic | None
    periodic_announce_to_down_members: Periodic | None
    periodic_gossip: Periodic | None

    def bound_variables(self) -> dict[str, float]:
        """Return the values that bound expressions may use, durations in seconds.

        A periodic task that is off contributes 0 for its frequency.
        """
        variables = {
            "probe_period": self.probe_period_ms / 1000,
            "probe_rtt": self.probe_rtt_ms / 1000,
            "suspect_to_down_after": self.suspect_to_down_after_ms / 1000,
            "remove_down_after": self.remove_down_after_ms / 1000,
            "num_indirect_probes": float(self.num_indirect_probes),
            "max_transmissions": float(self.max_transmissions),
        }
        for name in PERIODIC_FIELDS:
            periodic: Periodic | None = getattr(self, name)
            variables[name] = periodic.frequency_ms / 1000 if periodic else 0.0
        return variables


def _max_transmissions(cluster_size: int) -> int:
    # foca's Config::compute_max_tx: log10(n + 1) * 4, clamped to [1, 255], truncated.
    max_tx = math.log10(cluster_size + 1) * 4.0
    if max_tx <= 1.0:
        return 1
    if max_tx >= 255.0:
        return 255
    return int(max_tx)


def _suspicion_ms(
    cluster_size: int, probe_period_ms: float, multiplier: float
) -> float:
    # foca's Config::suspicion_duration: max(1, log10(n)) * multiplier * probe_period.
    return max(1.0, math.log10(cluster_size)) * multiplier * probe_period_ms


def preset_config(preset: str) -> SwimConfig:
    """Build foca 1.0's ``Config::simple()``, ``new_lan(N)`` or ``new_wan(N)``."""
    match = _PRESET.match(preset)
    if match is None:
        raise ScenarioError(
            f"invalid config preset {preset!r}: expected simple, lan:N or wan:N "
            "with N a positive integer"
        )
    if preset == "simple":
        return SwimConfig(
            probe_period_ms=1500,
            probe_rtt_ms=500,
            num_indirect_probes=3,
            max_transmissions=10,
            suspect_to_down_after_ms=3000,
            remove_down_after_ms=DEFAULT_REMOVE_DOWN_AFTER_MS,
            max_packet_size=1400,
            notify_down_members=False,
            periodic_announce=None,
            periodic_announce_to_down_members=None,
            periodic_gossip=None,
        )
    size = int(match.group(2) or match.group(3))
    if not 1 <= size <= 2**32 - 1:
        raise ScenarioError(f"invalid config preset {preset!r}: N must be in 1..2^32-1")
    if match.group(2) is not None:
        return SwimConfig(
            probe_period_ms=1000,
            probe_rtt_ms=500,
            num_indirect_probes=3,
            max_transmissions=_max_transmissions(size),
            suspect_to_down_after_ms=_suspicion_ms(size, 1000, 4.0),
            remove_down_after_ms=DEFAULT_REMOVE_DOWN_AFTER_MS,
            max_packet_size=1400,
            notify_down_members=True,
            periodic_announce=Periodic(30_000, 1),
            periodic_announce_to_down_members=Periodic(65_000, 2),
            periodic_gossip=Periodic(200, 3),
        )
    return SwimConfig(
        probe_period_ms=5000,
        probe_rtt_ms=3000,
        num_indirect_probes=3,
        max_transmissions=_max_transmissions(size),
        suspect_to_down_after_ms=_suspicion_ms(size, 5000, 6.0),
        remove_down_after_ms=DEFAULT_REMOVE_DOWN_AFTER_MS,
        max_packet_size=1400,
        notify_down_members=True,
        periodic_announce=Periodic(60_000, 2),
        periodic_announce_to_down_members=Periodic(125_000, 3),
        periodic_gossip=Periodic(500, 4),
    )


def parse_field_value(field: str, value: Any) -> Any:
    """Parse one ``--set`` value (a string, or a YAML scalar) into the field's type."""
    if field not in FIELDS:
        raise ScenarioError(
            f"unknown config field {field!r}; valid fields: {', '.join(FIELDS)}"
        )
    text = str(value).strip().lower() if not isinstance(value, bool) else value
    if field in DURATION_FIELDS or field in COUNT_FIELDS:
        if isinstance(value, bool) or not re.fullmatch(r"\d+", str(text)):
            raise ScenarioError(
                f"invalid value {value!r} for {field}: expected a non-negative integer"
                + (" of milliseconds" if field in DURATION_FIELDS else "")
            )
        number = int(str(text))
        if number == 0 and field != "remove_down_after_ms":
            raise ScenarioError(f"invalid value 0 for {field}: must be positive")
        return number
    if field == "notify_down_members":
        if isinstance(value, bool):
            return value
        if text in ("true", "false"):
            return text == "true"
        raise ScenarioError(
            f"invalid value {value!r} for {field}: expected true or false"
        )
    if text == "off":
        return None
    match = _PERIODIC.match(str(text))
    if match is None or int(match.group(1)) == 0 or int(match.group(2)) == 0:
        raise ScenarioError(
            f"invalid value {value!r} for {field}: expected off or "
            "FREQUENCY_MS:NUM_MEMBERS with both numbers positive"
        )
    return Periodic(int(match.group(1)), int(match.group(2)))


def format_field_value(value: Any) -> str:
    """Format a parsed field value the way ``--set FIELD=VALUE`` expects it."""
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def apply_overrides(config: SwimConfig, overrides: Mapping[str, Any]) -> SwimConfig:
    """Return ``config`` with each override parsed and applied in order."""
    parsed = {
        field: parse_field_value(field, value) for field, value in overrides.items()
    }
    return dataclasses.replace(config, **parsed)


def parse_set_option(text: str) -> tuple[str, Any]:
    """Parse one ``FIELD=VALUE`` command-line override."""
    field, sep, value = text.partition("=")
    if not sep:
        raise ScenarioError(f"invalid override {text!r}: expected FIELD=VALUE")
    field = field.strip()
    return field, parse_field_value(field, value)


def _normalize_reported(field: str, value: Any) -> Any:
    # The contract specifies only "every --set field with its value in force", so a
    # periodic task may come as "off", null, "F:N", [F, N] or an object.
    if field in PERIODIC_FIELDS:
        if value is None or value is False:
            return None
        if isinstance(value, dict):
            frequency = value.get("frequency_ms", value.get("frequency"))
            members = value.get("num_members")
            if isinstance(frequency, int | float) and isinstance(members, int):
                return Periodic(int(frequency), members)
            raise ContractError(f"config field {field} has an invalid value {value!r}")
        if isinstance(value, list) and len(value) == 2:
            return Periodic(int(value[0]), int(value[1]))
    if (
        field in DURATION_FIELDS
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return float(value)
    try:
        return parse_field_value(field, value)
    except ScenarioError as error:
        raise ContractError(
            f"config field {field} has an invalid value {value!r}"
        ) from error


def config_mismatches(expected: SwimConfig, reported: Mapping[str, Any]) -> list[str]:
    """Compare a ready line's ``config`` with the expected config.

    Returns one message per field that is missing or differs. Durations may
    differ by up to one millisecond, because a node may round them.
    """
    problems = []
    for field in FIELDS:
        want = getattr(expected, field)
        if field not in reported:
            problems.append(f"{field} is missing (expected {format_field_value(want)})")
            continue
        try:
            got = _normalize_reported(field, reported[field])
        except ContractError as error:
            problems.append(str(error))
            continue
        if field in DURATION_FIELDS:
            if abs(float(got) - float(want)) > _DURATION_TOLERANCE_MS:
                problems.append(f"{field} is {got:g}, expected {float(want):g}")
        elif got != want:
            problems.append(
                f"{field} is {format_field_value(got)}, "
                f"expected {format_field_value(want)}"
            )
    return problems

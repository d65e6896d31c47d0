"""Protocol parameters, with foca 1.0's presets and input checks.

Durations are float seconds. ``Config()`` equals ``Config.simple()``. Every
field is validated when a Config is built, and an invalid value raises
``ConfigError`` naming the field, the value and the allowed range.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from swim_py.errors import ConfigError

__all__ = [
    "Config",
    "PeriodicParams",
    "compute_max_tx",
    "suspicion_duration",
    "DEFAULT_REMOVE_DOWN_AFTER",
    "MIN_PACKET_SIZE",
    "MAX_PACKET_SIZE",
]

# foca 1.0 forgets Down members after 24 hours by default.
DEFAULT_REMOVE_DOWN_AFTER = 24 * 60 * 60.0

# The smallest packet limit still fits a header between two IPv4 identities
# with empty ids (about 30 bytes with the protobuf codec), COUNT and one
# update about such an identity (about 15 bytes).
MIN_PACKET_SIZE = 64
# The largest UDP datagram length field. The transport may impose less: IPv4
# carries at most 65507 bytes of UDP payload.
MAX_PACKET_SIZE = 65535

MAX_TRANSMISSIONS = 255
# foca takes the cluster size of its presets as a non-zero u32.
MAX_CLUSTER_SIZE = 2**32 - 1


# Durations are bounded by what foca's std::time::Duration holds: a
# resolution of one nanosecond (a shorter one would be zero there) and at
# most u64::MAX whole seconds.
MIN_DURATION = 1e-9
MAX_DURATION = float(2**64 - 1)


def _check_duration(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(
            f"invalid {field} {value!r}: expected a duration in seconds (float)"
        )
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if not (math.isfinite(seconds) and MIN_DURATION <= seconds <= MAX_DURATION):
        raise ConfigError(
            f"invalid {field} {value!r}: expected a finite number of seconds"
            f" from {MIN_DURATION:g} to 2**64 - 1"
        )


def _check_int(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"invalid {field} {value!r}: expected an int")
    if not low <= value <= high:
        raise ConfigError(f"invalid {field} {value}: expected {low} to {high}")
    return value


def _check_cluster_size(cluster_size: object) -> int:
    return _check_int("cluster_size", cluster_size, 1, MAX_CLUSTER_SIZE)


@dataclass(frozen=True, slots=True)
class PeriodicParams:
    """A periodic task: how often it runs and to how many random members."""

    frequency: float
    num_members: int

    def __post_init__(self) -> None:
        _check_duration("PeriodicParams.frequency", self.frequency)
        _check_int("PeriodicParams.num_members", self.num_members, 1, 2**63 - 1)


def compute_max_tx(cluster_size: int) -> int:
    """Return foca's ``max_transmissions`` for a cluster size: ``log10(n + 1) * 4``.

    Results at or below 1 give 1, results at or above 255 give 255, and the
    rest are truncated toward zero, as foca 1.0 does.
    """
    size = _check_cluster_size(cluster_size)
    # foca adds 1 with u32 saturation.
    max_tx = math.log10(min(size + 1, MAX_CLUSTER_SIZE)) * 4.0
    if max_tx <= 1.0:
        return 1
    if max_tx >= 255.0:
        return MAX_TRANSMISSIONS
    return int(max_tx)


def suspicion_duration(
    cluster_size: int, probe_period: float, multiplier: float
) -> float:
    """Return ``max(1, log10(n)) * multiplier * probe_period`` in seconds."""
    size = _check_cluster_size(cluster_size)
    return max(1.0, math.log10(size)) * multiplier * probe_period


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The parameters of one SWIM instance, with the defaults of foca's ``simple()``.

    ``probe_period``: how often a random member is probed, in seconds. Must
    be larger than ``probe_rtt``. foca's docs advise about three times it.

    ``probe_rtt``: how long to wait for a direct Ack before asking other
    members to probe indirectly, in seconds.

    ``num_indirect_probes``: how many members receive a PingReq for a failed
    direct probe. It is also the fan-out of ``gossip()`` and ``broadcast()``.

    ``max_transmissions``: how many packets carry each update and custom
    broadcast, from 1 to 255.

    ``suspect_to_down_after``: how long a member stays Suspect before it is
    declared Down, in seconds.

    ``remove_down_after``: how long a Down member is remembered, in seconds.
    While it is remembered, its identity cannot rejoin.

    ``max_packet_size``: the largest datagram sent and accepted, in bytes.

    ``notify_down_members``: send TurnUndead to members declared Down, and in
    reply to any message from a member known as Down.

    ``periodic_announce``: send Announce to random active members.

    ``periodic_announce_to_down_members``: send Announce to random Down members,
    which heals partitions together with ``notify_down_members``.

    ``periodic_gossip``: send Gossip to random active members while the
    updates or custom broadcast backlog is not empty.
    """

    probe_period: float = 1.5
    probe_rtt: float = 0.5
    num_indirect_probes: int = 3
    max_transmissions: int = 10
    suspect_to_down_after: float = 3.0
    remove_down_after: float = DEFAULT_REMOVE_DOWN_AFTER
    max_packet_size: int = 1400
    notify_down_members: bool = False
    periodic_announce: PeriodicParams | None = None
    periodic_announce_to_down_members: PeriodicParams | None = None
    periodic_gossip: PeriodicParams | None = None

    def __post_init__(self) -> None:
        _check_duration("probe_period", self.probe_period)
        _check_duration("probe_rtt", self.probe_rtt)
        if self.probe_rtt >= self.probe_period:
            raise ConfigError(
                f"invalid probe_rtt {self.probe_rtt!r}: expected less than"
                f" probe_period ({self.probe_period!r})"
            )
        _check_int("num_indirect_probes", self.num_indirect_probes, 1, 2**63 - 1)
        _check_int("max_transmissions", self.max_transmissions, 1, MAX_TRANSMISSIONS)
        _check_duration("suspect_to_down_after", self.suspect_to_down_after)
        _check_duration("remove_down_after", self.remove_down_after)
        _check_int(
            "max_packet_size", self.max_packet_size, MIN_PACKET_SIZE, MAX_PACKET_SIZE
        )
        if not isinstance(self.notify_down_members, bool):
            raise ConfigError(
                f"invalid notify_down_members {self.notify_down_members!r}:"
                " expected True or False"
            )
        for field in (
            "periodic_announce",
            "periodic_announce_to_down_members",
            "periodic_gossip",
        ):
            value = getattr(self, field)
            if value is not None and not isinstance(value, PeriodicParams):
                raise ConfigError(
                    f"invalid {field} {value!r}: expected PeriodicParams or None"
                )

    @classmethod
    def simple(cls) -> Config:
        """Return foca's ``Config::simple()``: plain SWIM with no extensions."""
        return cls()

    @classmethod
    def new_lan(cls, cluster_size: int) -> Config:
        """Return foca's ``Config::new_lan`` for about ``cluster_size`` members."""
        period = 1.0
        return cls(
            probe_period=period,
            probe_rtt=0.5,
            num_indirect_probes=3,
            max_transmissions=compute_max_tx(cluster_size),
            suspect_to_down_after=suspicion_duration(cluster_size, period, 4.0),
            remove_down_after=DEFAULT_REMOVE_DOWN_AFTER,
            max_packet_size=1400,
            notify_down_members=True,
            periodic_announce=PeriodicParams(frequency=30.0, num_members=1),
            periodic_announce_to_down_members=PeriodicParams(
                frequency=65.0, num_members=2
            ),
            periodic_gossip=PeriodicParams(frequency=0.2, num_members=3),
        )

    @classmethod
    def new_wan(cls, cluster_size: int) -> Config:
        """Return foca's ``Config::new_wan`` for about ``cluster_size`` members."""
        period = 5.0
        return cls(
            probe_period=period,
            probe_rtt=3.0,
            num_indirect_probes=3,
            max_transmissions=compute_max_tx(cluster_size),
            suspect_to_down_after=suspicion_duration(cluster_size, period, 6.0),
            remove_down_after=DEFAULT_REMOVE_DOWN_AFTER,
            max_packet_size=1400,
            notify_down_members=True,
            periodic_announce=PeriodicParams(frequency=60.0, num_members=2),
            periodic_announce_to_down_members=PeriodicParams(
                frequency=125.0, num_members=3
            ),
            periodic_gossip=PeriodicParams(frequency=0.5, num_members=4),
        )

    def replace(self, **changes: Any) -> Config:
        """Return a copy with ``changes`` applied, validated like a new Config."""
        return dataclasses.replace(self, **changes)

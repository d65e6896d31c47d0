"""Config presets, the foca formulas behind them, and field validation."""

from __future__ import annotations

import math

import pytest

from swim_py.config import (
    DEFAULT_REMOVE_DOWN_AFTER,
    Config,
    PeriodicParams,
    compute_max_tx,
    suspicion_duration,
)
from swim_py.errors import ConfigError


def test_config_defaults_equal_simple() -> None:
    assert Config() == Config.simple()


def test_config_simple_has_foca_values() -> None:
    config = Config.simple()
    assert config.probe_period == 1.5
    assert config.probe_rtt == 0.5
    assert config.num_indirect_probes == 3
    assert config.max_transmissions == 10
    assert config.suspect_to_down_after == 3.0
    assert config.remove_down_after == 86400.0
    assert config.max_packet_size == 1400
    assert config.notify_down_members is False
    assert config.periodic_announce is None
    assert config.periodic_announce_to_down_members is None
    assert config.periodic_gossip is None


def test_config_default_remove_down_after_is_one_day() -> None:
    assert DEFAULT_REMOVE_DOWN_AFTER == 24 * 3600


def test_config_new_lan_has_foca_values() -> None:
    config = Config.new_lan(10)
    assert config.probe_period == 1.0
    assert config.probe_rtt == 0.5
    assert config.num_indirect_probes == 3
    assert config.max_transmissions == 4
    assert config.suspect_to_down_after == 4.0
    assert config.remove_down_after == DEFAULT_REMOVE_DOWN_AFTER
    assert config.max_packet_size == 1400
    assert config.notify_down_members is True
    assert config.periodic_announce == PeriodicParams(frequency=30.0, num_members=1)
    assert config.periodic_announce_to_down_members == PeriodicParams(
        frequency=65.0, num_members=2
    )
    assert config.periodic_gossip == PeriodicParams(frequency=0.2, num_members=3)


def test_config_new_wan_has_foca_values() -> None:
    config = Config.new_wan(10)
    assert config.probe_period == 5.0
    assert config.probe_rtt == 3.0
    assert config.num_indirect_probes == 3
    assert config.max_transmissions == 4
    assert config.suspect_to_down_after == 30.0
    assert config.remove_down_after == DEFAULT_REMOVE_DOWN_AFTER
    assert config.max_packet_size == 1400
    assert config.notify_down_members is True
    assert config.periodic_announce == PeriodicParams(frequency=60.0, num_members=2)
    assert config.periodic_announce_to_down_members == PeriodicParams(
        frequency=125.0, num_members=3
    )
    assert config.periodic_gossip == PeriodicParams(frequency=0.5, num_members=4)


# (cluster size, max_transmissions, LAN suspect_to_down_after, WAN one)
PRESET_TABLE = [
    (1, 1, 4.0, 30.0),
    (2, 1, 4.0, 30.0),
    (3, 2, 4.0, 30.0),
    (5, 3, 4.0, 30.0),
    (10, 4, 4.0, 30.0),
    (20, 5, 5.2041, 39.031),
    (50, 6, 6.7959, 50.969),
    (100, 8, 8.0, 60.0),
    (1000, 12, 12.0, 90.0),
]


@pytest.mark.parametrize(
    ("size", "max_tx", "lan", "wan"),
    [pytest.param(*row, id=f"n={row[0]}") for row in PRESET_TABLE],
)
def test_config_presets_scale_with_size(
    size: int, max_tx: int, lan: float, wan: float
) -> None:
    assert compute_max_tx(size) == max_tx
    assert Config.new_lan(size).max_transmissions == max_tx
    assert Config.new_wan(size).max_transmissions == max_tx
    assert Config.new_lan(size).suspect_to_down_after == pytest.approx(lan, abs=1e-3)
    assert Config.new_wan(size).suspect_to_down_after == pytest.approx(wan, abs=1e-3)


def test_compute_max_tx_for_largest_cluster_size() -> None:
    # log10(n + 1) * 4 stays below 255 for every u32, so foca's 255 cap never
    # applies to its presets.
    assert compute_max_tx(2**32 - 1) == math.floor(math.log10(2**32 - 1) * 4)


def test_suspicion_duration_matches_foca_test_values() -> None:
    assert suspicion_duration(5, 1.0, 4.0) == 4.0
    assert suspicion_duration(10, 1.0, 4.0) == 4.0
    assert suspicion_duration(100, 1.0, 4.0) == 8.0


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param(2**32, id="above-u32"),
        pytest.param(1.5, id="float"),
        pytest.param(True, id="bool"),
    ],
)
def test_config_presets_reject_bad_size(size: object) -> None:
    with pytest.raises(ConfigError, match="cluster_size"):
        Config.new_lan(size)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cluster_size"):
        Config.new_wan(size)  # type: ignore[arg-type]


INVALID_FIELDS = [
    ("probe_period", 0),
    ("probe_period", -1.0),
    ("probe_period", math.inf),
    ("probe_period", math.nan),
    ("probe_period", 10**400),
    ("probe_period", 1e20),
    ("probe_rtt", 1e-320),
    ("probe_period", "1.5"),
    ("probe_period", True),
    ("probe_rtt", 0.0),
    ("probe_rtt", 1.5),
    ("probe_rtt", 2.0),
    ("num_indirect_probes", 0),
    ("num_indirect_probes", 2.0),
    ("num_indirect_probes", True),
    ("max_transmissions", 0),
    ("max_transmissions", 256),
    ("suspect_to_down_after", 0.0),
    ("remove_down_after", -5.0),
    ("max_packet_size", 63),
    ("max_packet_size", 65536),
    ("max_packet_size", 1400.0),
    ("notify_down_members", 1),
    ("notify_down_members", "yes"),
    ("periodic_gossip", (0.2, 3)),
]


@pytest.mark.parametrize(
    ("field", "value"),
    [pytest.param(f, v, id=f"{f}={v!r}") for f, v in INVALID_FIELDS],
)
def test_config_rejects_invalid_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.simple().replace(**{field: value})
    assert field in str(caught.value)
    assert repr(value) in str(caught.value) or str(value) in str(caught.value)


def test_config_probe_rtt_error_names_period() -> None:
    with pytest.raises(ConfigError, match="less than probe_period"):
        Config(probe_period=1.0, probe_rtt=1.0)


@pytest.mark.parametrize(
    ("frequency", "num_members"),
    [
        pytest.param(0.0, 1, id="zero-frequency"),
        pytest.param(-1.0, 1, id="negative-frequency"),
        pytest.param(math.inf, 1, id="infinite-frequency"),
        pytest.param(10**400, 1, id="huge-int-frequency"),
        pytest.param(1.0, 0, id="zero-members"),
        pytest.param(1.0, 1.0, id="float-members"),
    ],
)
def test_periodic_params_rejects_invalid_values(
    frequency: float, num_members: int
) -> None:
    with pytest.raises(ConfigError, match="PeriodicParams"):
        PeriodicParams(frequency=frequency, num_members=num_members)


def test_config_remove_down_after_huge_int_names_field() -> None:
    with pytest.raises(ConfigError, match="remove_down_after"):
        Config.simple().replace(remove_down_after=10**400)


def test_config_accepts_duration_limits() -> None:
    config = Config(probe_period=float(2**64 - 1), probe_rtt=1e-9)
    assert config.probe_rtt == 1e-9


def test_config_accepts_boundary_values() -> None:
    config = Config(
        max_transmissions=255,
        max_packet_size=64,
        num_indirect_probes=1,
        probe_period=1.0,
        probe_rtt=0.999,
    )
    assert config.max_packet_size == 64
    assert Config(max_packet_size=65535).max_packet_size == 65535
    assert Config(max_transmissions=1).max_transmissions == 1


def test_config_replace_returns_validated_copy() -> None:
    config = Config.simple().replace(notify_down_members=True)
    assert config.notify_down_members is True
    assert Config.simple().notify_down_members is False


def test_config_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        Config(1.5)  # type: ignore[call-arg]

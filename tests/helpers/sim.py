"""The simulator now lives in ``swim_py.testing.sim``; this module re-exports it."""

from swim_py.testing.sim import (
    FakeNetwork,
    NetworkStats,
    SimCluster,
    SimNode,
    TimerQueue,
    VirtualClock,
    sim_address,
)

__all__ = [
    "FakeNetwork",
    "NetworkStats",
    "SimCluster",
    "SimNode",
    "TimerQueue",
    "VirtualClock",
    "sim_address",
]

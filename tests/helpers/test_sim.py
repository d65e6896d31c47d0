"""Tests of the simulation helpers themselves."""

from __future__ import annotations

import random

import pytest

from swim_py.errors import NotConnectedError
from swim_py.events import (
    ChangeSuspectToDown,
    PeriodicGossip,
    ProbeRandomMember,
    RemoveDown,
    SendIndirectProbe,
)
from tests.helpers.craft import ident
from tests.helpers.sim import (
    FakeNetwork,
    SimCluster,
    TimerQueue,
    VirtualClock,
    sim_address,
)

A = sim_address(1)
B = sim_address(2)
C = sim_address(3)


def test_virtual_clock_never_moves_back() -> None:
    clock = VirtualClock()
    clock.advance_to(2.0)
    assert clock.now == 2.0
    with pytest.raises(ValueError, match="back"):
        clock.advance_to(1.0)


def test_timer_queue_orders_deadline_kind_sequence() -> None:
    queue = TimerQueue()
    queue.push(2.0, ProbeRandomMember(0))
    queue.push(1.0, RemoveDown(ident(2)))
    queue.push(1.0, ChangeSuspectToDown(ident(2), 0, 0))
    queue.push(1.0, PeriodicGossip(0))
    queue.push(1.0, SendIndirectProbe(ident(3), 0))
    queue.push(1.0, SendIndirectProbe(ident(2), 0))
    assert [t for _, t in queue.pending()] == [
        SendIndirectProbe(ident(3), 0),
        SendIndirectProbe(ident(2), 0),
        ChangeSuspectToDown(ident(2), 0, 0),
        PeriodicGossip(0),
        RemoveDown(ident(2)),
        ProbeRandomMember(0),
    ]


def test_timer_queue_pops_only_due_timers() -> None:
    queue = TimerQueue()
    queue.push(1.0, ProbeRandomMember(0))
    assert queue.pop_due(0.5) is None
    assert queue.pop_due(1.0) == ProbeRandomMember(0)
    assert queue.pop_due(5.0) is None
    assert len(queue) == 0


def test_network_delivers_after_latency() -> None:
    network = FakeNetwork(random.Random(1), latency=0.01, jitter=0.0)
    network.send(A, B, b"x", now=1.0)
    assert network.next_delivery() == pytest.approx(1.01)
    assert network.pop_due(1.0) is None
    assert network.pop_due(1.01) == (A, B, b"x")


def test_network_loss_is_seeded() -> None:
    def survivors(seed: int) -> int:
        network = FakeNetwork(random.Random(seed), loss=0.3)
        for _ in range(1000):
            network.send(A, B, b"x", now=0.0)
        return network.in_flight()

    assert survivors(5) == survivors(5)
    assert 600 < survivors(5) < 800


def test_network_partition_and_heal() -> None:
    network = FakeNetwork(random.Random(1))
    network.partition([A], [B, C])
    assert not network.can_reach(A, B)
    assert network.can_reach(B, C)
    network.send(A, B, b"x", now=0.0)
    assert network.stats.dropped_partition == 1
    network.heal()
    assert network.can_reach(A, B)


def test_network_unlisted_addresses_group() -> None:
    network = FakeNetwork(random.Random(1))
    network.partition([A])
    assert network.can_reach(B, C)
    assert not network.can_reach(A, C)


def test_network_block_is_one_way() -> None:
    network = FakeNetwork(random.Random(1))
    network.block(A, B)
    assert not network.can_reach(A, B)
    assert network.can_reach(B, A)
    network.unblock(A, B)
    assert network.can_reach(A, B)


def test_network_extra_delay_per_link() -> None:
    network = FakeNetwork(random.Random(1), latency=0.01, jitter=0.0)
    network.delay(A, B, 0.5)
    network.send(A, B, b"slow", now=0.0)
    network.send(B, A, b"fast", now=0.0)
    assert network.pop_due(0.02) == (B, A, b"fast")
    assert network.pop_due(0.02) is None
    assert network.pop_due(0.51) == (A, B, b"slow")


def test_network_drop_filter() -> None:
    network = FakeNetwork(random.Random(1))
    network.drop_filter = lambda src, dst, data: data == b"drop"
    network.send(A, B, b"drop", now=0.0)
    network.send(A, B, b"keep", now=0.0)
    assert network.stats.dropped_filter == 1
    assert network.in_flight() == 1


def test_network_rejects_invalid_loss_rate() -> None:
    with pytest.raises(ValueError, match="loss"):
        FakeNetwork(random.Random(1), loss=1.5)


def test_cluster_two_nodes_join() -> None:
    cluster = SimCluster(2, seed=1)
    cluster.start()
    assert cluster.run_until(cluster.is_converged, timeout=1.0)
    assert cluster.now < 0.1


def test_cluster_run_is_reproducible() -> None:
    def history(seed: int) -> list[tuple[float, str]]:
        cluster = SimCluster(5, seed=seed)
        cluster.start()
        cluster.run_for(10.0)
        return [(t, repr(n)) for node in cluster.nodes for t, n in node.notifications]

    assert history(3) == history(3)
    assert history(3) != history(4)


def test_cluster_run_until_stops_at_deadline() -> None:
    cluster = SimCluster(3, seed=1)
    assert not cluster.run_until(lambda: False, timeout=2.0)
    assert cluster.now == pytest.approx(2.0)


def test_cluster_killed_node_goes_silent() -> None:
    cluster = SimCluster(3, seed=2)
    cluster.start()
    cluster.run_until(cluster.is_converged, timeout=10.0)
    cluster.kill(2)
    pending = len(cluster.nodes[2].timers)
    cluster.run_for(5.0)
    assert pending == 0
    assert cluster.network.stats.dropped_no_node > 0


def test_cluster_records_errors() -> None:
    cluster = SimCluster(2, seed=1)
    assert cluster.call(0, lambda core: core.handle_timer(ProbeRandomMember(0))) is None
    [(_, error)] = cluster.nodes[0].errors
    assert isinstance(error, NotConnectedError)


def test_cluster_restart_keeps_address() -> None:
    cluster = SimCluster(2, seed=1)
    node = cluster.restart(1, ident(1, renewal=7))
    assert node.addr == cluster.nodes[1].addr
    assert cluster.nodes[1].identity.renewal == 7


def test_cluster_describe_names_seed() -> None:
    cluster = SimCluster(2, seed=1234)
    assert "seed=1234" in cluster.describe()

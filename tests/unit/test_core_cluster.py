"""Whole clusters of SwimCore nodes on the in-memory simulation.

Every test is parametrized by seed, and every assertion message starts with
the cluster's description, which names the seed.
"""

from __future__ import annotations

import pytest

from swim_py.config import Config
from swim_py.events import MemberDown, Rejoin, Rename
from tests.helpers.handlers import VersionedHandler
from tests.helpers.sim import SimCluster

SEEDS = [pytest.param(seed, id=f"seed={seed}") for seed in (1, 2, 3)]


def converged_cluster(size: int, seed: int, config: Config | None = None) -> SimCluster:
    cluster = SimCluster(size, seed=seed, config=config)
    cluster.start()
    assert cluster.run_until(cluster.is_converged, timeout=60.0), cluster.describe()
    return cluster


def sees_down(cluster: SimCluster, index: int) -> bool:
    """Return whether no other running node lists node ``index`` as active."""
    crashed_id = cluster.nodes[index].identity
    for node in cluster.running_nodes():
        if node.index == index:
            continue
        if crashed_id in node.member_ids():
            return False
    return True


@pytest.mark.parametrize("size", [pytest.param(n, id=f"{n}-nodes") for n in (5, 30)])
@pytest.mark.parametrize("seed", SEEDS)
def test_cluster_converges_from_cold_start(size: int, seed: int) -> None:
    cluster = SimCluster(size, seed=seed)
    cluster.start()
    assert cluster.run_until(cluster.is_converged, timeout=60.0), cluster.describe()
    errors = [e for node in cluster.nodes for e in node.error_classes()]
    assert errors == [], cluster.describe()


def test_cluster_of_100_converges() -> None:
    cluster = SimCluster(100, seed=1)
    cluster.start()
    assert cluster.run_until(cluster.is_converged, timeout=60.0), cluster.describe()


@pytest.mark.parametrize("seed", SEEDS)
def test_cluster_converges_with_lan_config(seed: int) -> None:
    converged_cluster(10, seed, Config.new_lan(10))


@pytest.mark.parametrize("seed", SEEDS)
def test_cluster_detects_crashed_member(seed: int) -> None:
    cluster = converged_cluster(8, seed)
    crashed = cluster.nodes[3].identity
    cluster.kill(3)
    # Within a few probe passes plus the suspicion timeout.
    detected = cluster.run_until(lambda: sees_down(cluster, 3), timeout=30.0)
    assert detected, cluster.describe()
    for node in cluster.running_nodes():
        downs = node.notifications_of(MemberDown)
        assert downs == [MemberDown(crashed)], cluster.describe()


@pytest.mark.parametrize("seed", SEEDS)
def test_cluster_accepts_renewed_identity(seed: int) -> None:
    cluster = converged_cluster(6, seed)
    old = cluster.nodes[2].identity
    renewed = old.renew()
    assert renewed is not None
    cluster.kill(2)
    cluster.restart(2, renewed)
    cluster.announce(2, 0)

    assert cluster.run_until(cluster.is_converged, timeout=30.0), cluster.describe()
    for node in cluster.running_nodes():
        if node.index == 2:
            continue
        assert Rename(old, renewed) in node.notifications_of(Rename), cluster.describe()


@pytest.mark.parametrize("seed", SEEDS)
def test_cluster_restart_with_old_identity_renews(seed: int) -> None:
    config = Config(notify_down_members=True)
    cluster = converged_cluster(6, seed, config)
    old = cluster.nodes[2].identity
    cluster.kill(2)
    assert cluster.run_until(lambda: sees_down(cluster, 2), timeout=30.0), (
        cluster.describe()
    )

    node = cluster.restart(2)
    cluster.announce(2, 0)
    assert cluster.run_until(cluster.is_converged, timeout=30.0), cluster.describe()
    assert node.identity == old.renew(), cluster.describe()
    assert node.notifications_of(Rejoin) == [Rejoin(node.identity)], cluster.describe()


@pytest.mark.parametrize("seed", SEEDS)
def test_cluster_broadcast_reaches_everyone(seed: int) -> None:
    handlers = [VersionedHandler() for _ in range(10)]
    cluster = SimCluster(10, seed=seed, handler_factory=lambda i: handlers[i])
    cluster.start()
    assert cluster.run_until(cluster.is_converged, timeout=60.0), cluster.describe()

    cluster.call(0, lambda core: core.add_broadcast(VersionedHandler.item(7, 1)))
    reached = cluster.run_until(
        lambda: all(h.versions == {7: 1} for h in handlers), timeout=30.0
    )
    assert reached, cluster.describe()


@pytest.mark.parametrize("seed", SEEDS)
def test_cluster_five_percent_loss_no_false_down(seed: int) -> None:
    cluster = converged_cluster(10, seed)
    cluster.network.loss = 0.05
    cluster.run_for(60.0)
    for node in cluster.nodes:
        assert node.notifications_of(MemberDown) == [], cluster.describe()
        assert node.core.num_members() == 9, cluster.describe()


@pytest.mark.parametrize("seed", SEEDS)
def test_cluster_lan_heals_partition(seed: int) -> None:
    cluster = converged_cluster(8, seed, Config.new_lan(8))
    left = [node.addr for node in cluster.nodes[:4]]
    right = [node.addr for node in cluster.nodes[4:]]
    cluster.network.partition(left, right)

    def split() -> bool:
        return all(node.core.num_members() == 3 for node in cluster.nodes)

    assert cluster.run_until(split, timeout=60.0), cluster.describe()

    # Announcing to Down members every 65 s finds the other side again, and
    # the TurnUndead replies make the members there renew their identities.
    cluster.network.heal()
    assert cluster.run_until(cluster.is_converged, timeout=300.0), cluster.describe()

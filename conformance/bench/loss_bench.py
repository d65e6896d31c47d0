"""Loss section: false positives of the protocol core under packet loss.

No node fails in this section, so every MemberDown about a member's
current identity is a false positive. swim_py runs on
``swim_py.testing.sim.SimCluster`` and foca on the same steps inside
``rust_peer tool sim-loss`` (see ``rust_peer/src/sim.rs``), both with
``Config.new_lan(N)`` and datagrams that take 2 ms plus a uniform 0 to 1 ms:

1. Every node applies every other one as Alive through ``apply_many``
   without broadcasting, then two probe periods of warm-up run.
2. For ``window_periods`` probe periods the network drops each datagram
   with probability ``loss``. The run counts MemberDown notifications that
   name a member's current identity (false downs), those that name an
   identity its member had already renewed away from (stale downs), and
   Rejoin notifications (renewals forced by a Down or a TurnUndead).
3. The loss stops and the run goes on until every node lists exactly the
   other nodes' current identities, checked every 0.1 virtual seconds,
   giving up after ``recover_periods``.

Neither simulator runs a driver. A node that renewed its identity and
heard back from no other node stays disconnected, where ``Swim`` and rust_peer
would announce to their seeds again, so step 3 understates how well real
nodes recover.

The two simulators draw their random numbers differently, so one seed
gives different runs on each side. A run's counts are heavy-tailed: one
cascade of suspicions and renewals can add a hundred downs to one run and
none to the next. So the summaries give totals over several seeds, the
median run and the number of runs with any false down.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from conformance.bench.timing import run_rust_tool
from swim_py.config import Config
from swim_py.events import MemberDown, Notification, Rejoin
from swim_py.testing.sim import SimCluster, SimNode

WARMUP_PERIODS = 2
POLL_SECONDS = 0.1


def bench_swim_py(
    nodes: int, seed: int, loss: float, window_periods: int, recover_periods: int
) -> dict[str, Any]:
    """Run the steps in the module documentation on swim_py's simulator."""
    if not 0.0 <= loss <= 1.0:
        raise ValueError(f"invalid loss {loss}: expected a share from 0 to 1")
    started = time.perf_counter()
    counts = {"false_downs": 0, "stale_downs": 0, "rejoins": 0}
    counting = False

    def on_notification(node: SimNode, notification: Notification) -> None:
        if not counting:
            return
        if isinstance(notification, MemberDown):
            member = by_addr.get(notification.id.addr)
            current = (
                member is not None
                and member.running
                and member.identity == notification.id
            )
            counts["false_downs" if current else "stale_downs"] += 1
        elif isinstance(notification, Rejoin):
            counts["rejoins"] += 1

    config = Config.new_lan(nodes)
    period = config.probe_period
    cluster = SimCluster(
        nodes,
        seed=seed,
        config=config,
        record_notifications=False,
        on_notification=on_notification,
    )
    by_addr = {node.addr: node for node in cluster.nodes}
    cluster.bootstrap_full_membership()
    cluster.run_for(WARMUP_PERIODS * period)

    counting = True
    cluster.network.loss = loss
    cluster.run_for(window_periods * period)
    cluster.network.loss = 0.0
    counting = False

    recover_start = cluster.now
    recovered = cluster.run_until(
        cluster.is_converged, recover_periods * period, POLL_SECONDS
    )
    return {
        "implementation": "swim_py",
        "nodes": nodes,
        "seed": seed,
        "loss": loss,
        "window_periods": window_periods,
        "probe_period_seconds": period,
        **counts,
        "dropped": cluster.network.stats.dropped_loss,
        "recover_periods": (cluster.now - recover_start) / period
        if recovered
        else None,
        "max_recover_periods": recover_periods,
        "errors": sum(len(node.errors) for node in cluster.nodes),
        "total_wall_seconds": time.perf_counter() - started,
    }


def _bench_rust_peer(
    rust_peer: Path,
    nodes: int,
    seed: int,
    loss: float,
    window_periods: int,
    recover_periods: int,
    timeout: float,
) -> dict[str, Any]:
    try:
        return run_rust_tool(
            rust_peer,
            [
                "sim-loss",
                "--nodes",
                str(nodes),
                "--seed",
                str(seed),
                "--loss",
                str(loss),
                "--window-periods",
                str(window_periods),
                "--recover-periods",
                str(recover_periods),
            ],
            timeout=timeout,
        )
    except RuntimeError as error:
        return {"implementation": "rust_peer", "error": str(error)}


def _summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    valid = [run for run in runs if "error" not in run]
    recovered = [run["recover_periods"] for run in valid]
    return {
        "seeds": len(valid),
        "false_downs": sum(run["false_downs"] for run in valid),
        "median_false_downs": (
            statistics.median(run["false_downs"] for run in valid) if valid else None
        ),
        "runs_with_false_downs": sum(1 for run in valid if run["false_downs"]),
        "stale_downs": sum(run["stale_downs"] for run in valid),
        "rejoins": sum(run["rejoins"] for run in valid),
        "recovered": sum(1 for value in recovered if value is not None),
        "max_recover_periods": max(
            (value for value in recovered if value is not None), default=None
        ),
        "errors": sum(run["errors"] for run in valid),
    }


def run_loss_section(
    sizes: list[int],
    losses: list[float],
    seeds: int,
    rust_peer: Path | None,
    *,
    window_periods: int,
    recover_periods: int,
    rust_timeout: float,
) -> dict[str, Any]:
    """Run both sides for each size, loss and seed; return the runs and sums."""
    cases = []
    for nodes in sizes:
        for loss in losses:
            per_impl: dict[str, list[dict[str, Any]]] = {"swim_py": []}
            if rust_peer is not None:
                per_impl["rust_peer"] = []
            for seed in range(1, seeds + 1):
                per_impl["swim_py"].append(
                    bench_swim_py(nodes, seed, loss, window_periods, recover_periods)
                )
                if rust_peer is not None:
                    per_impl["rust_peer"].append(
                        _bench_rust_peer(
                            rust_peer,
                            nodes,
                            seed,
                            loss,
                            window_periods,
                            recover_periods,
                            rust_timeout,
                        )
                    )
            cases.append(
                {
                    "nodes": nodes,
                    "loss": loss,
                    "runs": per_impl,
                    "totals": {
                        name: _summarize(runs) for name, runs in per_impl.items()
                    },
                }
            )
    return {
        "window_periods": window_periods,
        "recover_periods": recover_periods,
        "seeds": seeds,
        "cases": cases,
    }

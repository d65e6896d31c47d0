"""Simulation section: N members on an in-memory network in virtual time.

swim_py runs on ``swim_py.testing.sim.SimCluster`` and foca on the same
steps inside ``rust_peer tool sim`` (see ``rust_peer/src/sim.rs``), both with
``Config.new_lan(N)`` and datagrams that take 2 ms plus a uniform 0 to 1 ms:

1. Every node applies every other one as Alive at incarnation 0 through
   ``apply_many`` without broadcasting, instead of joining by announces.
2. Two probe periods of warm-up, then ``steady_periods`` timed periods.
3. A new node announces to node 0; the run goes on until each of the N
   nodes has reported it up (a MemberUp notification).
4. Node 1 stops; the run goes on until each live node has reported it down.

Steps 3 and 4 check their goal every 0.1 virtual seconds and give up after
``max_periods``. The periods they took are reported beside log2(N).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from conformance.bench.timing import run_rust_tool
from swim_py.config import Config
from swim_py.events import MemberDown, MemberUp, Notification
from swim_py.identity import Identity
from swim_py.testing.sim import SimCluster, SimNode

# Wall-clock figures count time spent waiting for a CPU on a loaded machine;
# the CPU figures (this process's CPU time) do not.
WARMUP_PERIODS = 2
POLL_SECONDS = 0.1


class _Watch:
    """The nodes that reported one identity up or down."""

    def __init__(self, kind: type[MemberUp] | type[MemberDown], target: Identity):
        self.kind = kind
        self.target = target
        self.seen: set[int] = set()

    def observe(self, node: SimNode, notification: Notification) -> None:
        if isinstance(notification, self.kind) and notification.id == self.target:
            self.seen.add(node.index)


def bench_swim_py(
    nodes: int, seed: int, steady_periods: int, max_periods: int
) -> dict[str, Any]:
    """Run the steps in the module documentation on swim_py's simulator."""
    cpu_start = time.process_time()
    started = time.perf_counter()
    watches: list[_Watch] = []

    def on_notification(node: SimNode, notification: Notification) -> None:
        for watch in watches:
            watch.observe(node, notification)

    config = Config.new_lan(nodes)
    period = config.probe_period
    cluster = SimCluster(
        nodes,
        seed=seed,
        config=config,
        record_notifications=False,
        on_notification=on_notification,
    )
    cluster.bootstrap_full_membership()
    bootstrap_seconds = time.perf_counter() - started

    cluster.run_for(WARMUP_PERIODS * period)
    steady_start = time.perf_counter()
    steady_cpu_start = time.process_time()
    cluster.run_for(steady_periods * period)
    steady_seconds = time.perf_counter() - steady_start
    steady_cpu = time.process_time() - steady_cpu_start
    limit = max_periods * period

    joiner = cluster.add_node()
    join_watch = _Watch(MemberUp, joiner.identity)
    watches.append(join_watch)
    cluster.announce(joiner.index, 0)
    join_start = time.perf_counter()
    join_cpu_start = time.process_time()
    join_virtual_start = cluster.now
    joined = cluster.run_until(
        lambda: len(join_watch.seen - {joiner.index}) >= nodes, limit, POLL_SECONDS
    )
    join_seconds = time.perf_counter() - join_start
    join_cpu = time.process_time() - join_cpu_start
    join_virtual = cluster.now - join_virtual_start

    crashed = cluster.nodes[1]
    crash_watch = _Watch(MemberDown, crashed.identity)
    watches.append(crash_watch)
    cluster.kill(crashed.index)
    live = {node.index for node in cluster.running_nodes()}
    crash_start = time.perf_counter()
    crash_cpu_start = time.process_time()
    crash_virtual_start = cluster.now
    detected = cluster.run_until(lambda: live <= crash_watch.seen, limit, POLL_SECONDS)
    crash_seconds = time.perf_counter() - crash_start
    crash_cpu = time.process_time() - crash_cpu_start
    crash_virtual = cluster.now - crash_virtual_start

    errors = sum(len(node.errors) for node in cluster.nodes)
    join_periods = max(join_virtual / period, 1e-9)
    crash_periods = max(crash_virtual / period, 1e-9)
    return {
        "implementation": "swim_py",
        "nodes": nodes,
        "seed": seed,
        "bootstrap_wall_seconds": bootstrap_seconds,
        "steady_periods": steady_periods,
        "steady_wall_seconds_per_period": steady_seconds / max(steady_periods, 1),
        "steady_cpu_seconds_per_period": steady_cpu / max(steady_periods, 1),
        "join_periods": join_virtual / period if joined else None,
        "join_wall_seconds_per_period": join_seconds / join_periods,
        "join_cpu_seconds_per_period": join_cpu / join_periods,
        "crash_periods": crash_virtual / period if detected else None,
        "crash_wall_seconds_per_period": crash_seconds / crash_periods,
        "crash_cpu_seconds_per_period": crash_cpu / crash_periods,
        "max_periods": max_periods,
        "errors": errors,
        "total_wall_seconds": time.perf_counter() - started,
        "total_cpu_seconds": time.process_time() - cpu_start,
    }


def run_sim_section(
    sizes: list[int],
    rust_peer: Path | None,
    *,
    seed: int,
    steady_periods: int,
    max_periods: int,
    rust_timeout: float,
) -> dict[str, Any]:
    """Run both sides for each cluster size and return the results."""
    runs = []
    for nodes in sizes:
        results: dict[str, Any] = {
            "swim_py": bench_swim_py(nodes, seed, steady_periods, max_periods)
        }
        if rust_peer is not None:
            try:
                results["rust_peer"] = run_rust_tool(
                    rust_peer,
                    [
                        "sim",
                        "--nodes",
                        str(nodes),
                        "--seed",
                        str(seed),
                        "--steady-periods",
                        str(steady_periods),
                        "--max-periods",
                        str(max_periods),
                    ],
                    timeout=rust_timeout,
                )
            except RuntimeError as error:
                results["rust_peer"] = {
                    "implementation": "rust_peer",
                    "error": str(error),
                }
        runs.append(
            {"nodes": nodes, "log2_nodes": math.log2(nodes), "results": results}
        )
    return {"runs": runs}

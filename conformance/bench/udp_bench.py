"""UDP sections: real clusters on 127.0.0.1 with ``Config.new_lan(N)`` timing.

``udp`` starts a cluster of each size for each implementation, lets it join
by announces to node 0 and converge, waits ``settle`` seconds, then sums
the CPU time of every process of the cluster over ``window`` seconds, read
from ``/proc/PID/stat``. It then stops the node with the last port, without
a leave, and waits until every other node reports it down: the detection
latency. How the nodes run:

- swim_py: all nodes in one asyncio process (``swim_py_host``).
- rust_peer: one process per node, standalone, its events read from stderr.
- swim-protocol: ``swim_protocol_host`` processes run by the interpreter of
  a separate virtual environment, one node per process by default. All in
  one process, its thread pools (one per node) contend for the GIL and the
  process saturates a core at about 30 nodes.

``soak`` runs swim_py clusters of growing size in one process, bootstrapped
with ``Swim.apply_many`` instead of announces, and checks that no node is
reported down while every node stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import signal
import socket
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from conformance.bench.procstat import cpu_seconds, total_cpu_seconds

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
_POLL_SECONDS = 0.5
# A stderr event line of rust_peer in standalone mode, for example
# "2026-12-04T17:14:54.463958Z  INFO rust_peer::control: event member_up
# -@127.0.0.1:47002#0".
_RUST_EVENT = re.compile(
    r"^(?P<ts>\S+)\s+INFO\s+rust_peer::control: event"
    r" (?P<kind>member_up|member_down|rename) (?P<rest>.*)$"
)
_RUST_IDENTITY_PORT = re.compile(r"@(?:\[[^\]]*\]|[^:#\s]+):(?P<port>\d+)#")


@dataclass(slots=True)
class DownEvent:
    """One node's report that another one is down (or suspect)."""

    observer: int
    member: int
    ts: float


@dataclass(slots=True)
class ClusterEvents:
    downs: list[DownEvent] = field(default_factory=list)
    suspects: int = 0


def allocate_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports that are free for UDP and TCP on HOST.

    The sockets are closed before returning, so another process may take a
    port in between; cluster start-up then fails with a bind error.
    """
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((HOST, 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind((HOST, port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            held.extend((udp, tcp))
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


class Cluster:
    """A running cluster: start, member counts, kill one node, stop."""

    name = ""

    def __init__(self, ports: list[int], cluster_size: int) -> None:
        self.ports = ports
        self.cluster_size = cluster_size
        self.events = ClusterEvents()

    async def start(self) -> None:
        raise NotImplementedError

    async def member_counts(self) -> dict[int, int]:
        """Return the number of active members that each live node lists."""
        raise NotImplementedError

    async def kill(self, port: int) -> float:
        """Stop the node at ``port`` without a leave and return the Unix time."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError


class _HostProcess:
    """One host process that speaks the ``swim_py_host`` JSON lines."""

    def __init__(
        self,
        name: str,
        command: list[str],
        spec: dict[str, Any],
        events: ClusterEvents,
        log: Any,
        log_path: Path,
        cwd: Path | None,
    ) -> None:
        self.name = name
        self.ports: list[int] = spec["ports"]
        self._command = command
        self._spec = spec
        self._events = events
        self._log = log
        self._log_path = log_path
        self._cwd = cwd
        self.process: asyncio.subprocess.Process | None = None
        self._replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self._command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            cwd=self._cwd,
            limit=2**20,
        )
        self._reader = asyncio.create_task(self._read_lines())
        await self._send(self._spec)
        ready = await self._reply("ready", timeout=120 + 0.2 * len(self.ports))
        logger.info("%s host ready with %s nodes", self.name, ready.get("nodes"))

    async def _send(self, line: dict[str, Any]) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write((json.dumps(line) + "\n").encode())
        await self.process.stdin.drain()

    async def _read_lines(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            line = json.loads(raw)
            kind = line.get("type")
            if kind == "down":
                self._events.downs.append(
                    DownEvent(line["observer"], line["member"], line["ts"])
                )
            elif kind == "suspect":
                self._events.suspects += 1
            else:
                await self._replies.put(line)
        await self._replies.put({"type": "exited"})

    async def _reply(self, kind: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.name} host sent no {kind!r} line in time")
            line = await asyncio.wait_for(self._replies.get(), remaining)
            if line.get("type") == kind:
                return line
            if line.get("type") == "exited":
                raise RuntimeError(
                    f"{self.name} host exited; see {self._log_path} for its stderr"
                )

    async def member_counts(self) -> dict[int, int]:
        await self._send({"op": "status"})
        line = await self._reply("status", timeout=60)
        return {int(port): count for port, count in line["members"].items()}

    async def kill(self, port: int) -> float:
        await self._send({"op": "kill", "port": port})
        line = await self._reply("killed", timeout=60)
        return float(line["ts"])

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ConnectionError, AssertionError):
                await self._send({"op": "stop"})
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)


class HostCluster(Cluster):
    """Nodes in host processes, ``nodes_per_process`` each (None: all in one)."""

    def __init__(
        self,
        name: str,
        command: list[str],
        ports: list[int],
        cluster_size: int,
        bootstrap: str,
        log_path: Path,
        cwd: Path | None = None,
        nodes_per_process: int | None = None,
    ) -> None:
        super().__init__(ports, cluster_size)
        self.name = name
        self._command = command
        self._bootstrap = bootstrap
        self._log_path = log_path
        self._cwd = cwd
        self._group_size = nodes_per_process or len(ports)
        self._hosts: list[_HostProcess] = []
        self._log: Any = None

    async def start(self) -> None:
        self._log = open(self._log_path, "ab")  # noqa: SIM115 (closed in stop)
        for first in range(0, len(self.ports), self._group_size):
            spec = {
                "ports": self.ports[first : first + self._group_size],
                "cluster_size": self.cluster_size,
                "seed_port": self.ports[0],
                "bootstrap": self._bootstrap,
                "member_ports": self.ports,
            }
            self._hosts.append(
                _HostProcess(
                    self.name,
                    self._command,
                    spec,
                    self.events,
                    self._log,
                    self._log_path,
                    self._cwd,
                )
            )
        await asyncio.gather(*(host.start() for host in self._hosts))

    async def member_counts(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for part in await asyncio.gather(
            *(host.member_counts() for host in self._hosts)
        ):
            counts.update(part)
        return counts

    async def kill(self, port: int) -> float:
        host = next(host for host in self._hosts if port in host.ports)
        return await host.kill(port)

    def pids(self) -> list[int]:
        return [host.process.pid for host in self._hosts if host.process is not None]

    async def stop(self) -> None:
        await asyncio.gather(*(host.stop() for host in self._hosts))
        if self._log is not None:
            self._log.close()


class RustCluster(Cluster):
    """One standalone ``rust_peer`` process per node, events from stderr."""

    name = "rust_peer"

    def __init__(
        self, binary: Path, ports: list[int], cluster_size: int, log_path: Path
    ) -> None:
        super().__init__(ports, cluster_size)
        self._binary = binary
        self._log_path = log_path
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._readers: list[asyncio.Task[None]] = []
        self._active: dict[int, set[int]] = {port: set() for port in ports}
        self._ready: set[int] = set()
        self._log: Any = None

    async def start(self) -> None:
        self._log = open(self._log_path, "a", encoding="utf-8")  # noqa: SIM115
        seed = self.ports[0]
        for index, port in enumerate(self.ports):
            command = [
                str(self._binary),
                "--bind",
                f"{HOST}:{port}",
                "--config",
                f"lan:{self.cluster_size}",
                "--rng-seed",
                str(index + 1),
            ]
            if port != seed:
                command += ["--seed", f"{HOST}:{seed}"]
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env={"RUST_LOG": "info", "PATH": "/usr/bin:/bin"},
            )
            self._processes[port] = process
            self._readers.append(asyncio.create_task(self._read_stderr(port, process)))
        deadline = time.monotonic() + 60
        while len(self._ready) < len(self.ports):
            if time.monotonic() > deadline:
                raise TimeoutError("rust_peer nodes did not all report ready")
            await asyncio.sleep(0.05)

    async def _read_stderr(
        self, port: int, process: asyncio.subprocess.Process
    ) -> None:
        assert process.stderr is not None
        while raw := await process.stderr.readline():
            text = raw.decode(errors="replace").rstrip()
            if "node ready" in text:
                self._ready.add(port)
                continue
            match = _RUST_EVENT.match(text)
            if match is None:
                if " WARN " in text or " ERROR " in text:
                    self._log.write(f"{port}: {text}\n")
                continue
            ports = [
                int(m["port"]) for m in _RUST_IDENTITY_PORT.finditer(match["rest"])
            ]
            if not ports:
                continue
            active = self._active[port]
            kind = match["kind"]
            if kind == "member_up":
                active.add(ports[0])
            elif kind == "member_down":
                active.discard(ports[0])
                ts = datetime.fromisoformat(match["ts"]).timestamp()
                self.events.downs.append(DownEvent(port, ports[0], ts))

    async def member_counts(self) -> dict[int, int]:
        return {
            port: len(self._active[port])
            for port, process in self._processes.items()
            if process.returncode is None
        }

    async def kill(self, port: int) -> float:
        process = self._processes[port]
        killed_at = time.time()
        process.send_signal(signal.SIGKILL)
        await process.wait()
        return killed_at

    def pids(self) -> list[int]:
        return [process.pid for process in self._processes.values()]

    async def stop(self) -> None:
        for process in self._processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self._processes.values():
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        for reader in self._readers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader, 5)
        if self._log is not None:
            self._log.close()


async def wait_converged(
    cluster: Cluster, expected: int, timeout: float
) -> tuple[bool, float, dict[int, int]]:
    """Poll until every live node lists ``expected`` members or ``timeout``."""
    started = time.monotonic()
    counts: dict[int, int] = {}
    while time.monotonic() - started < timeout:
        counts = await cluster.member_counts()
        if counts and all(count == expected for count in counts.values()):
            return True, time.monotonic() - started, counts
        await asyncio.sleep(_POLL_SECONDS)
    return False, time.monotonic() - started, counts


async def measure_cpu(pids: list[int], seconds: float) -> tuple[float, float]:
    """Return the CPU seconds that ``pids`` used over ``seconds`` of wall time."""
    cpu_start = total_cpu_seconds(pids)
    wall_start = time.monotonic()
    await asyncio.sleep(seconds)
    return total_cpu_seconds(pids) - cpu_start, time.monotonic() - wall_start


async def wait_detected(
    cluster: Cluster, victim: int, killed_at: float, timeout: float
) -> dict[str, Any]:
    """Wait until every other node reported ``victim`` down; return latencies."""
    observers = {port for port in cluster.ports if port != victim}
    started = time.monotonic()
    first: dict[int, float] = {}
    while True:
        for event in cluster.events.downs:
            if event.member == victim and event.observer in observers:
                first.setdefault(event.observer, event.ts)
        if len(first) == len(observers) or time.monotonic() - started > timeout:
            break
        await asyncio.sleep(0.1)
    latencies = sorted(ts - killed_at for ts in first.values())
    return {
        "reported_by": len(first),
        "observers": len(observers),
        "complete": len(first) == len(observers),
        "max_seconds": latencies[-1] if latencies else None,
        "median_seconds": statistics.median(latencies) if latencies else None,
        "first_seconds": latencies[0] if latencies else None,
        "timeout_seconds": timeout,
    }


def suspicion_seconds(cluster_size: int) -> float:
    """Return new_lan's suspect_to_down_after for ``cluster_size``."""
    return max(1.0, math.log10(cluster_size)) * 4.0


@dataclass(frozen=True, slots=True)
class UdpTiming:
    settle: float
    window: float
    detect_extra: float


async def run_udp_cluster(
    make_cluster: Callable[[list[int]], Cluster], size: int, timing: UdpTiming
) -> dict[str, Any]:
    """Start one cluster, measure its CPU use and one crash, and stop it."""
    ports = allocate_ports(size)
    cluster = make_cluster(ports)
    result: dict[str, Any] = {"implementation": cluster.name, "nodes": size}
    started = time.monotonic()
    try:
        await cluster.start()
        converged, join_seconds, counts = await wait_converged(
            cluster, size - 1, timeout=60 + 0.5 * size
        )
        result["converged"] = converged
        result["join_seconds"] = join_seconds
        if not converged:
            result["member_counts_min"] = min(counts.values(), default=0)
            return result
        await asyncio.sleep(timing.settle)
        pids = cluster.pids()
        cpu, wall = await measure_cpu(pids, timing.window)
        result["processes"] = len(pids)
        result["cpu_seconds"] = cpu
        result["window_seconds"] = wall
        result["cpu_ms_per_member_per_second"] = cpu * 1000 / size / wall
        victim = ports[-1]
        killed_at = await cluster.kill(victim)
        result["detection"] = await wait_detected(
            cluster,
            victim,
            killed_at,
            timeout=suspicion_seconds(size) + timing.detect_extra,
        )
        result["false_downs"] = sum(
            1 for event in cluster.events.downs if event.member != victim
        )
        result["suspect_reports"] = cluster.events.suspects
    except (OSError, RuntimeError, TimeoutError) as error:
        result["error"] = f"{type(error).__name__}: {error}"
    finally:
        await cluster.stop()
        result["total_seconds"] = time.monotonic() - started
    return result


async def run_soak_size(
    python: str, size: int, seconds: float, settle: float, log_path: Path, cwd: Path
) -> dict[str, Any]:
    """Run ``size`` swim_py nodes in one process for ``seconds`` and count downs.

    The count starts ``settle`` seconds after start-up, because bootstrapping
    blocks the event loop and the timers that fall due meanwhile fire in a
    burst. Downs during the settle time are reported apart.
    """
    ports = allocate_ports(size)
    cluster = HostCluster(
        "swim_py",
        [python, "-m", "conformance.bench.swim_py_host"],
        ports,
        size,
        "members",
        log_path,
        cwd=cwd,
    )
    result: dict[str, Any] = {"nodes": size, "seconds": seconds}
    started = time.monotonic()
    try:
        await cluster.start()
        result["start_seconds"] = time.monotonic() - started
        converged, _, counts = await wait_converged(cluster, size - 1, timeout=60)
        result["converged_at_start"] = converged
        await asyncio.sleep(settle)
        result["settle_seconds"] = settle
        result["downs_while_settling"] = len(cluster.events.downs)
        pid = cluster.pids()[0]
        cpu_start = cpu_seconds(pid) or 0.0
        wall_start = time.monotonic()
        downs_before = len(cluster.events.downs)
        suspects_before = cluster.events.suspects
        while time.monotonic() - wall_start < seconds:
            await asyncio.sleep(min(5.0, seconds))
            if len(cluster.events.downs) > downs_before:
                break
        wall = time.monotonic() - wall_start
        cpu = (cpu_seconds(pid) or 0.0) - cpu_start
        counts = await cluster.member_counts()
        result["observed_seconds"] = wall
        result["false_downs"] = len(cluster.events.downs) - downs_before
        result["suspect_reports"] = cluster.events.suspects - suspects_before
        result["cpu_fraction_of_one_core"] = cpu / wall
        result["cpu_ms_per_member_per_second"] = cpu * 1000 / size / wall
        result["member_counts_min"] = min(counts.values(), default=0)
        result["passed"] = result["false_downs"] == 0 and wall >= seconds
    except (OSError, RuntimeError, TimeoutError) as error:
        result["error"] = f"{type(error).__name__}: {error}"
        result["passed"] = False
    finally:
        await cluster.stop()
        result["total_seconds"] = time.monotonic() - started
    return result


def python_host_command() -> list[str]:
    return [sys.executable, "-m", "conformance.bench.swim_py_host"]


SWIM_PROTOCOL_REQUIREMENT = "swim-protocol==0.6.3"


def ensure_swim_protocol_venv(folder: Path) -> Path:
    """Return the interpreter of a virtual environment with swim-protocol.

    Creates the environment in ``folder`` and installs the pinned package
    with pip when the interpreter is missing or cannot import it. Raises
    RuntimeError with pip's output when that fails.
    """
    import subprocess

    python = folder / "bin" / "python"
    check = [str(python), "-c", "import swimprotocol.udp"]
    if python.is_file() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    steps = [
        [sys.executable, "-m", "venv", str(folder)],
        [str(python), "-m", "pip", "install", "--quiet", SWIM_PROTOCOL_REQUIREMENT],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(step)} failed: {(done.stderr or done.stdout)[-2000:]}"
            )
    return python


def _cluster_factory(
    name: str,
    size: int,
    log_path: Path,
    cwd: Path,
    *,
    rust_peer: Path | None,
    swim_protocol_python: Path | None,
    swim_protocol_nodes_per_process: int | None,
) -> Callable[[list[int]], Cluster] | str:
    """Return a function that builds the cluster, or why it cannot be built."""
    nodes_per_process = None
    if name == "swim_py":
        command = python_host_command()
    elif name == "swim_protocol":
        if swim_protocol_python is None:
            return "swim-protocol is not installed"
        script = Path(__file__).with_name("swim_protocol_host.py")
        command = [str(swim_protocol_python), str(script)]
        nodes_per_process = swim_protocol_nodes_per_process
    elif name == "rust_peer":
        if rust_peer is None:
            return "rust_peer is not built"
        binary = rust_peer
        return lambda ports: RustCluster(binary, ports, size, log_path)
    else:
        raise ValueError(f"unknown implementation {name!r}")
    return lambda ports: HostCluster(
        name, command, ports, size, "announce", log_path, cwd, nodes_per_process
    )


async def run_udp_section(
    sizes: list[int],
    implementations: list[str],
    *,
    rust_peer: Path | None,
    swim_protocol_python: Path | None,
    swim_protocol_nodes_per_process: int | None,
    timing: UdpTiming,
    log_dir: Path,
    cwd: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Measure each implementation at each size, one cluster at a time."""
    runs = []
    for size in sizes:
        results: dict[str, Any] = {}
        for name in implementations:
            make = _cluster_factory(
                name,
                size,
                log_dir / f"udp-{name}-{size}.log",
                cwd,
                rust_peer=rust_peer,
                swim_protocol_python=swim_protocol_python,
                swim_protocol_nodes_per_process=swim_protocol_nodes_per_process,
            )
            if isinstance(make, str):
                results[name] = {"implementation": name, "error": make}
                continue
            progress(f"udp: {name} with {size} nodes")
            results[name] = await run_udp_cluster(make, size, timing)
        runs.append({"nodes": size, "results": results})
    return {
        "settle_seconds": timing.settle,
        "window_seconds": timing.window,
        "layout": {
            "swim_py": "all nodes in one asyncio process",
            "rust_peer": "one process per node",
            "swim_protocol": "all nodes in one asyncio process"
            if swim_protocol_nodes_per_process is None
            else f"{swim_protocol_nodes_per_process} nodes per asyncio process",
        },
        "runs": runs,
    }


async def run_soak_section(
    sizes: list[int],
    *,
    screen_seconds: float,
    soak_seconds: float | None,
    settle: float,
    log_dir: Path,
    cwd: Path,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Find the largest one-process swim_py cluster with no false down.

    Each size in ``sizes`` runs for ``screen_seconds`` after ``settle``
    seconds, in increasing order, until one fails. With ``soak_seconds``,
    the largest size that passed then runs that long, and if it fails, the
    size below it does.
    """
    screens = []
    passed: list[int] = []
    for size in sorted(sizes):
        progress(f"soak: screening {size} swim_py nodes for {screen_seconds:g} s")
        result = await run_soak_size(
            sys.executable,
            size,
            screen_seconds,
            settle,
            log_dir / f"soak-{size}.log",
            cwd,
        )
        screens.append(result)
        if not result["passed"]:
            break
        passed.append(size)
    soaks = []
    reached: int | None = None
    if soak_seconds:
        for size in list(reversed(passed))[:2]:
            progress(f"soak: {size} swim_py nodes for {soak_seconds:g} s")
            result = await run_soak_size(
                sys.executable,
                size,
                soak_seconds,
                settle,
                log_dir / f"soak-full-{size}.log",
                cwd,
            )
            soaks.append(result)
            if result["passed"]:
                reached = size
                break
    return {
        "screen_seconds": screen_seconds,
        "soak_seconds": soak_seconds,
        "screens": screens,
        "soaks": soaks,
        "largest_screened": passed[-1] if passed else None,
        "largest_soaked": reached,
    }

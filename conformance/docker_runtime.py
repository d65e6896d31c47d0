"""The docker runtime: each node a container, on networks that the run creates.

Each scenario run gets two user-defined bridge networks, each on a free /24
in 172.29.0.0/16 (172.29.77.0/24 is left to docker-compose.yml):

- the node network (``...-swim``), where every node binds a static IP on
  UDP port 7946, advertises it and is seeded by it. A ``disconnect`` step
  detaches a container from this network only.
- the control network (``...-ctl``), which carries nothing but the control
  channel.

A container cannot connect to the harness's listener on the host's
127.0.0.1, so the control channel runs the other way. Each node runs with
``--control-listen CONTROL_IP:7000``. Docker publishes that port on
127.0.0.1 at a random host port, and the harness connects there. Docker
publishes a container's ports through one network only, its gateway
network, which is the one whose name sorts first among equals: ``-ctl``
before ``-swim``. So the port stays published while the node network is
detached. Docker's port proxy accepts a connection before the node listens
and then closes it, so the harness reconnects until it reads the ready
line (``Launch.reconnect``).

The host reaches the node network directly through its bridge, so hand-made
datagrams leave from the host's address on that bridge.

Link faults (``set_links``) are applied inside the containers' network
namespaces by one of the backends of netem.py. With ``tc netem``, each
source container gets a qdisc tree on its node-network interface for the
links out of it. On a host without netem, each destination container gets
iptables rules that drop the UDP datagrams from its faulted sources as they
arrive (loss and cuts only), so the senders see no error. The runtime keeps
the last fault state and applies a node's faults again whenever they or its
container change: after a restart (a new container with a new namespace)
and, for netem, after a ``connect`` (a new interface). A container that is
not running gets its faults when it starts again.

Every container and network carries the labels ``swim-conformance.run`` (the
suite's run id), ``swim-conformance.scenario`` (``SCENARIO-MIX``) and
``swim-conformance.owner`` (``HOST:PID`` of the harness). A scenario run
removes its own at the end; the CLI removes the whole run's in a finally
block, and at start it removes those whose owner process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import logging
import os
import random
import re
import secrets
import socket
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from conformance.control import LINE_LIMIT
from conformance.datagrams import DatagramSender
from conformance.errors import DockerError, HarnessError, NodeStartError
from conformance.faults import Link, LinkFault
from conformance.impls import Implementation
from conformance.netem import (
    LinkFaultBackend,
    fault_unavailable,
    link_faults_unavailable,
    select_backend,
)
from conformance.runtime import FaultUnavailable, Launch, Runtime, StreamPair

logger = logging.getLogger(__name__)

LABEL_RUN = "swim-conformance.run"
LABEL_SCENARIO = "swim-conformance.scenario"
LABEL_OWNER = "swim-conformance.owner"

# The UDP port of every node and the TCP port of its control listener.
NODE_PORT = 7946
CONTROL_PORT = 7000
# Host number of node nN's address in both networks: FIRST_HOST + N.
FIRST_HOST = 10
MAX_NODES = 200
_NODE_NAME = re.compile(r"n(\d+)")

# Subnets are taken from 172.29.X.0/24. docker-compose.yml uses X = 77.
SUBNET_PREFIX = "172.29"
RESERVED_THIRD_OCTETS = frozenset({0, 77, 255})

# Seconds between attempts to reach a control port that is not published yet.
CONNECT_RETRY = 0.1

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")

# The scenario steps that set link faults, which need tc netem or iptables on
# the host.
LINK_FAULT_STEPS = ("link_fault", "partition", "heal")


def _sdk() -> Any:
    # Imported by name: the repository's docker/ folder would otherwise
    # shadow the SDK for mypy, as a namespace package.
    try:
        return importlib.import_module("docker")
    except ImportError:
        raise DockerError(
            "the Docker SDK for Python is not installed: pip install 'docker>=7.1'"
        ) from None


def connect_client() -> Any:
    """Return a Docker SDK client for the local daemon.

    Raises DockerError with the reason when the SDK is missing or the
    daemon does not respond.
    """
    docker = _sdk()
    try:
        # Each container's exit is awaited on a connection of its own.
        client = docker.from_env(max_pool_size=64)
        client.ping()
    except Exception as error:
        raise DockerError(f"cannot reach the Docker daemon: {error}") from None
    return client


def new_run_id() -> str:
    return secrets.token_hex(4)


def owner_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_gone(owner: str) -> bool:
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _remove_labelled(client: Any, *labels: str) -> tuple[int, int]:
    """Remove every container, then every network, that carries all of
    ``labels`` (each ``KEY=VALUE``). Return how many of each were removed."""
    filters = {"label": list(labels)}
    containers = client.containers.list(all=True, filters=filters)
    for container in containers:
        with contextlib.suppress(Exception):
            container.remove(force=True)
    networks = client.networks.list(filters=filters)
    removed = 0
    for network in networks:
        try:
            network.remove()
            removed += 1
        except Exception as error:
            logger.warning("could not remove network %s: %s", network.name, error)
    return len(containers), removed


def remove_run(client: Any, run_id: str) -> tuple[int, int]:
    """Remove the containers and networks of suite run ``run_id``."""
    return _remove_labelled(client, f"{LABEL_RUN}={run_id}")


def remove_stale(client: Any) -> list[str]:
    """Remove the containers and networks of runs whose harness process is gone.

    Runs of a live harness on this host, and runs from other hosts, are
    left alone. Returns the run ids removed.
    """
    owners: dict[str, str] = {}
    for item in [
        *client.containers.list(all=True, filters={"label": LABEL_OWNER}),
        *client.networks.list(filters={"label": LABEL_OWNER}),
    ]:
        labels = item.attrs.get("Labels") or item.attrs.get("Config", {}).get(
            "Labels", {}
        )
        run_id = labels.get(LABEL_RUN)
        if run_id:
            owners[run_id] = labels.get(LABEL_OWNER, "")
    stale = sorted(run for run, owner in owners.items() if _owner_gone(owner))
    for run_id in stale:
        remove_run(client, run_id)
    return stale


def _used_subnets(client: Any) -> list[ipaddress.IPv4Network]:
    used = []
    for network in client.networks.list():
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                subnet = ipaddress.ip_network(config["Subnet"], strict=False)
                if isinstance(subnet, ipaddress.IPv4Network):
                    used.append(subnet)
    used += _host_routes()
    return used


def _host_routes() -> list[ipaddress.IPv4Network]:
    # /proc/net/route lists destination and mask as little-endian hex.
    routes: list[ipaddress.IPv4Network] = []
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return routes
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[1] == "00000000":
            continue
        with contextlib.suppress(ValueError):
            destination = ipaddress.IPv4Address(bytes.fromhex(fields[1])[::-1])
            mask = ipaddress.IPv4Address(bytes.fromhex(fields[7])[::-1])
            routes.append(ipaddress.IPv4Network(f"{destination}/{mask}", strict=False))
    return routes


def _candidate_subnets(used: Iterable[ipaddress.IPv4Network]) -> list[str]:
    in_use = list(used)
    octets = [n for n in range(1, 255) if n not in RESERVED_THIRD_OCTETS]
    random.SystemRandom().shuffle(octets)
    candidates = []
    for octet in octets:
        subnet = ipaddress.IPv4Network(f"{SUBNET_PREFIX}.{octet}.0/24")
        if not any(subnet.overlaps(other) for other in in_use):
            candidates.append(str(subnet))
    return candidates


def _container_name(text: str) -> str:
    return _NAME_UNSAFE.sub("_", text)


class ContainerNode:
    """One node container: the NodeHandle of the docker runtime.

    A thread waits for the container to exit and then saves its log to
    ``log_path``, so ``running()`` and ``returncode`` cost no Docker call.
    ``returncode`` is the container's exit code: the node's exit status,
    or 128 + N after signal N (137 after SIGKILL).
    """

    def __init__(
        self,
        container: Any,
        command: Sequence[str],
        log_path: Path,
        image: str,
        ip: str,
    ) -> None:
        self._container = container
        self.command = tuple(command)
        self.log_path = log_path
        self.image = image
        self.ip = ip
        self.name: str = container.name
        self.pid: int = int(container.attrs.get("State", {}).get("Pid") or 0)
        self.killed = False
        self.paused = False
        self._returncode: int | None = None
        loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = loop.create_future()
        self._logs_saved = threading.Event()
        threading.Thread(
            target=self._watch, args=(loop,), name=f"wait-{self.name}", daemon=True
        ).start()

    @property
    def container(self) -> Any:
        return self._container

    @property
    def returncode(self) -> int | None:
        return self._returncode

    def running(self) -> bool:
        return self._returncode is None

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            code = int(self._container.wait(timeout=None).get("StatusCode", -1))
        except Exception as error:
            logger.debug("waiting for %s failed: %s", self.name, error)
            code = -1
        self.save_logs()
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._set_exit, code)

    def _set_exit(self, code: int) -> None:
        self._returncode = code
        self.paused = False
        if not self._exited.done():
            self._exited.set_result(code)

    def save_logs(self) -> None:
        """Write the container's output to ``log_path``, once."""
        if self._logs_saved.is_set():
            return
        try:
            data = self._container.logs(stdout=True, stderr=True)
        except Exception as error:
            data = f"(could not read the container's log: {error})\n".encode()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_bytes(data)
        self._logs_saved.set()

    async def pause(self) -> None:
        """Freeze every process of the container (the cgroup freezer)."""
        if self.running():
            await _call(self._container.pause)
            self.paused = True

    async def resume(self) -> None:
        if self.paused and self.running():
            await _call(self._container.unpause)
        self.paused = False

    async def kill(self) -> None:
        """SIGKILL the container and wait until Docker reports its exit."""
        self.killed = True
        await self.resume()
        if self.running():
            with contextlib.suppress(DockerError):
                await _call(self._container.kill, "SIGKILL")
        await self.wait()

    async def wait(self, timeout: float | None = None) -> int | None:
        try:
            return await asyncio.wait_for(asyncio.shield(self._exited), timeout)
        except TimeoutError:
            return None

    async def terminate(self, grace: float) -> int | None:
        """SIGTERM the node, and SIGKILL it after ``grace`` seconds."""
        await self.resume()
        if self.running():
            with contextlib.suppress(DockerError):
                await _call(self._container.stop, timeout=max(1, round(grace)))
        return await self.wait(grace + 10)

    def log_tail(self, lines: int = 20) -> str:
        if self._logs_saved.is_set():
            try:
                text = self.log_path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return ""
            return "\n".join(text.splitlines()[-lines:])
        try:
            data: bytes = self._container.logs(stdout=True, stderr=True, tail=lines)
        except Exception:
            return ""
        return data.decode("utf-8", "replace").rstrip("\n")

    def details(self) -> dict[str, Any]:
        return {"container": self.name, "image": self.image}


async def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking Docker SDK call in a thread; raise DockerError on failure."""
    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except HarnessError:
        raise
    except Exception as error:
        raise DockerError(
            f"{getattr(function, '__name__', function)}: {error}"
        ) from None


class DockerRuntime:
    """The containers and networks of one scenario run."""

    name = "docker"

    def __init__(self, client: Any, run_id: str, run_name: str) -> None:
        self._client = client
        self._run_id = run_id
        self._run_name = run_name
        prefix = _container_name(f"swimconf-{run_id}-{run_name}")
        self._prefix = prefix
        self._labels = {
            LABEL_RUN: run_id,
            LABEL_SCENARIO: run_name,
            LABEL_OWNER: owner_label(),
        }
        self._node_network: Any = None
        self._control_network: Any = None
        self._node_subnet = ipaddress.IPv4Network("0.0.0.0/32")
        self._control_subnet = ipaddress.IPv4Network("0.0.0.0/32")
        self._hosts: dict[str, int] = {}
        self._handles: dict[str, ContainerNode] = {}
        self._all: list[ContainerNode] = []
        # The fault state of the last set_links call, and per node the
        # container PID and faults that its network namespace applies now,
        # keyed by the IP at the link's other end (see _node_faults). A node
        # whose namespace applies no faults has no entry.
        self._link_faults: dict[Link, LinkFault] = {}
        self._applied: dict[str, tuple[int, dict[str, LinkFault]]] = {}
        self._disconnected: set[str] = set()
        self._backend: LinkFaultBackend | None = None

    @property
    def node_subnet(self) -> ipaddress.IPv4Network:
        return self._node_subnet

    async def open(self) -> None:
        """Create the control network and the node network."""
        # The names decide which network publishes the control port (see
        # the module docstring). Neither is internal: the host must reach
        # the node network to send hand-made datagrams.
        self._control_network, self._control_subnet = await self._create_network("ctl")
        self._node_network, self._node_subnet = await self._create_network("swim")

    async def _create_network(self, role: str) -> tuple[Any, ipaddress.IPv4Network]:
        docker = _sdk()
        name = f"{self._prefix}-{role}"
        used = await _call(_used_subnets, self._client)
        failures = []
        for subnet in _candidate_subnets(used)[:10]:
            network = ipaddress.IPv4Network(subnet)
            gateway = str(network.network_address + 1)
            ipam = docker.types.IPAMConfig(
                pool_configs=[docker.types.IPAMPool(subnet=subnet, gateway=gateway)]
            )
            try:
                created = await _call(
                    self._client.networks.create,
                    name,
                    driver="bridge",
                    ipam=ipam,
                    labels=self._labels,
                    check_duplicate=True,
                )
            except DockerError as error:
                # Another run may have taken the subnet since the check.
                failures.append(f"{subnet}: {error}")
                continue
            logger.info("created network %s on %s", name, subnet)
            return created, network
        raise DockerError(
            f"could not create network {name} on a free /24 in "
            f"{SUBNET_PREFIX}.0.0/16: " + "; ".join(failures[-3:] or ["none free"])
        )

    def _host(self, name: str) -> int:
        # nN gets FIRST_HOST + N; any other name gets the lowest free number.
        if name in self._hosts:
            return self._hosts[name]
        used = set(self._hosts.values())
        free = [
            host
            for host in range(FIRST_HOST, FIRST_HOST + MAX_NODES)
            if host not in used
        ]
        match = _NODE_NAME.fullmatch(name)
        number = FIRST_HOST + int(match[1]) if match else None
        if number not in free:
            if not free:
                raise HarnessError(f"the docker runtime runs at most {MAX_NODES} nodes")
            number = free[0]
        assert number is not None
        self._hosts[name] = number
        return number

    def _ip(self, subnet: ipaddress.IPv4Network, name: str) -> str:
        return str(subnet.network_address + self._host(name))

    def bind_address(self, name: str) -> str:
        return f"{self._ip(self._node_subnet, name)}:{NODE_PORT}"

    async def launch(
        self,
        name: str,
        generation: int,
        implementation: Implementation,
        arguments: Sequence[str],
        log_path: Path,
    ) -> Launch:
        if implementation.image is None:
            raise NodeStartError(
                f"implementation {implementation.name} has no container image; "
                "the docker runtime runs only implementations with one"
            )
        node_ip = self._ip(self._node_subnet, name)
        control_ip = self._ip(self._control_subnet, name)
        container_name = _container_name(f"{self._prefix}-{name}.{generation}")
        command = [*arguments, "--control-listen", f"{control_ip}:{CONTROL_PORT}"]
        # A restarted node reuses the address of its previous container.
        previous = self._handles.get(name)
        if previous is not None:
            await self._remove(previous)
        try:
            container = await _call(
                self._start_container,
                container_name,
                implementation.image,
                command,
                node_ip,
                control_ip,
            )
        except DockerError as error:
            raise NodeStartError(
                f"cannot start container {container_name} from "
                f"{implementation.image}: {error}"
            ) from None
        description = [
            "docker",
            "run",
            "--network",
            self._node_network.name,
            "--ip",
            node_ip,
            implementation.image,
            *command,
        ]
        handle = ContainerNode(
            container, description, log_path, implementation.image, node_ip
        )
        self._handles[name] = handle
        self._all.append(handle)
        self._applied.pop(name, None)
        self._disconnected.discard(name)
        # NOTE: the node runs from container.start() on, so its first
        # datagrams may pass before the faults of its namespace are in place:
        # those it sends with netem, those it receives with iptables.
        await self._apply_links(name)
        port = self._published_port(container)

        async def connect() -> StreamPair:
            while True:
                try:
                    return await asyncio.open_connection(
                        "127.0.0.1", port, limit=LINE_LIMIT
                    )
                except ConnectionRefusedError:
                    await asyncio.sleep(CONNECT_RETRY)

        async def release() -> None:
            return None

        return Launch(handle, connect, release, reconnect=True)

    def _start_container(
        self,
        container_name: str,
        image: str,
        command: Sequence[str],
        node_ip: str,
        control_ip: str,
    ) -> Any:
        # Runs in a worker thread: create on the control network, attach the
        # node network, start.
        client = self._client
        control_name = self._control_network.name
        container = client.containers.create(
            image,
            command=list(command),
            name=container_name,
            labels=self._labels,
            init=True,
            detach=True,
            ports={f"{CONTROL_PORT}/tcp": ("127.0.0.1", None)},
            network=control_name,
            networking_config={
                control_name: client.api.create_endpoint_config(ipv4_address=control_ip)
            },
        )
        try:
            self._node_network.connect(container, ipv4_address=node_ip)
            container.start()
            container.reload()
        except Exception:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            raise
        return container

    @staticmethod
    def _published_port(container: Any) -> int:
        ports = container.attrs["NetworkSettings"]["Ports"] or {}
        bindings = ports.get(f"{CONTROL_PORT}/tcp") or []
        for binding in bindings:
            if binding.get("HostIp") == "127.0.0.1":
                return int(binding["HostPort"])
        raise NodeStartError(
            f"container {container.name} has no control port published on "
            f"127.0.0.1: {ports}"
        )

    def _handle(self, name: str) -> ContainerNode:
        try:
            return self._handles[name]
        except KeyError:
            raise HarnessError(f"node {name} has no container") from None

    async def disconnect(self, name: str) -> None:
        handle = self._handle(name)
        await _call(self._node_network.disconnect, handle.container)
        self._disconnected.add(name)
        # A netem tree goes with the interface, but iptables rules stay.
        if self._backend is None or self._backend.bound_to_interface:
            self._applied.pop(name, None)

    async def connect(self, name: str) -> None:
        handle = self._handle(name)
        await _call(
            self._node_network.connect, handle.container, ipv4_address=handle.ip
        )
        self._disconnected.discard(name)
        await self._apply_links(name)

    async def advertise_address(self, name: str) -> str | None:
        return None

    def node_started(self, name: str, bind: str) -> None:
        return None

    async def set_links(self, faults: Mapping[Link, LinkFault]) -> None:
        """Make ``faults`` the fault state, and apply it at every node it changes.

        Checks every node at either end of a link in ``faults`` and every
        node whose namespace applies faults now, because a netem tree
        applies the faults of a node's outgoing links and iptables rules
        those of its incoming ones. ``_apply_links`` skips the nodes whose
        faults are unchanged. Raises FaultUnavailable when tc or iptables
        fails, naming the command.
        """
        self._link_faults = dict(faults)
        ends = {name for link in faults for name in link}
        for name in sorted(ends | set(self._applied)):
            await self._apply_links(name)

    def _node_faults(self, name: str, ingress: bool) -> dict[str, LinkFault]:
        """Return the faults that node ``name``'s namespace applies, by peer IP.

        These are the faults of the links into the node, keyed by source IP,
        when ``ingress`` is true, and of the links out of it, keyed by
        destination IP, when it is false. Clear links are left out.
        """
        faults = {}
        for (source, destination), fault in self._link_faults.items():
            local, peer = (destination, source) if ingress else (source, destination)
            if local == name and not fault.clear:
                faults[self._ip(self._node_subnet, peer)] = fault
        return faults

    def _has_faulted_link(self, name: str) -> bool:
        return any(
            name in link and not fault.clear
            for link, fault in self._link_faults.items()
        )

    async def _fault_backend(self) -> LinkFaultBackend:
        if self._backend is None:
            # The probes usually ran for unavailable_steps already, and their
            # results are cached.
            self._backend = await asyncio.to_thread(select_backend)
            logger.info("link faults run with %s", self._backend.name)
        return self._backend

    async def _apply_links(self, name: str) -> None:
        """Apply the faults of node ``name``'s namespace for the current state.

        Skips a node without a running container, and with netem a node
        detached from the node network. Its launch or connect applies the
        faults later.
        """
        handle = self._handles.get(name)
        if handle is None or not handle.running():
            self._applied.pop(name, None)
            return
        current = self._applied.get(name)
        # A node with no faulted link and none applied needs no backend, so a
        # scenario without link faults never runs the probes.
        if current is None and not self._has_faulted_link(name):
            return
        backend = await self._fault_backend()
        desired = self._node_faults(name, backend.ingress)
        if current == (handle.pid, desired) or (current is None and not desired):
            return
        if name in self._disconnected and backend.bound_to_interface:
            self._applied.pop(name, None)
            return
        try:
            await backend.apply(handle.pid, handle.ip, desired)
        except FaultUnavailable as error:
            if await self._exited(handle):
                logger.info("%s exited before its link faults were applied", name)
                self._applied.pop(name, None)
                return
            raise FaultUnavailable(
                f"cannot apply the link faults of container {handle.name} "
                f"(pid {handle.pid}) with {backend.name}: {error}"
            ) from None
        if desired:
            self._applied[name] = (handle.pid, desired)
        else:
            self._applied.pop(name, None)
        peer = "from" if backend.ingress else "to"
        logger.info(
            "link faults in the namespace of %s: %s",
            name,
            ", ".join(
                f"{peer} {ip} {fault.describe()}"
                for ip, fault in sorted(desired.items())
            )
            or "none",
        )

    @staticmethod
    async def _exited(handle: ContainerNode) -> bool:
        # The exit watcher may not have seen an exit that made nsenter fail.
        if not handle.running():
            return True
        try:
            await _call(handle.container.reload)
        except DockerError:
            return True
        return not handle.container.attrs.get("State", {}).get("Running", False)

    def traffic(self) -> dict[str, dict[str, int]] | None:
        return None

    def datagram_sender(self) -> DatagramSender:
        gateway = str(self._node_subnet.network_address + 1)
        return DatagramSender(local_ip=gateway, network=str(self._node_subnet))

    async def _remove(self, handle: ContainerNode) -> None:
        await asyncio.to_thread(handle.save_logs)
        with contextlib.suppress(DockerError):
            await _call(handle.container.remove, force=True)

    async def close(self) -> None:
        """Save every container's log, then remove the run's containers and
        networks by label."""
        for handle in self._all:
            await self._remove(handle)
        await asyncio.to_thread(
            _remove_labelled,
            self._client,
            f"{LABEL_RUN}={self._run_id}",
            f"{LABEL_SCENARIO}={self._run_name}",
        )


class DockerRuntimeKind:
    """The docker runtime across a suite run, with the run id of its labels."""

    name = "docker"

    def __init__(self, client: Any, run_id: str | None = None) -> None:
        self.client = client
        self.run_id = run_id or new_run_id()

    @property
    def unavailable_steps(self) -> Mapping[str, str]:
        # The probes run once per process and cache their results. A cut
        # works with either backend, so these steps need only one of them.
        reason = link_faults_unavailable()
        if reason is None:
            return {}
        return dict.fromkeys(LINK_FAULT_STEPS, reason)

    def fault_unavailable(self, fault: LinkFault) -> str | None:
        # Only netem delays, duplicates and reorders datagrams.
        return fault_unavailable(fault)

    def new_runtime(self, run_name: str) -> Runtime:
        return DockerRuntime(self.client, self.run_id, run_name)

    def remove_all(self) -> tuple[int, int]:
        """Remove every container and network of this run; blocking."""
        return remove_run(self.client, self.run_id)

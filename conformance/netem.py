"""Link faults with ``tc netem``, as the docker runtime applies them.

The docker runtime (docker_runtime.py) runs the host's ``tc`` inside each
source container's network namespace (``nsenter -t PID -n``), because the
images have no ``tc``. The faults of one source node form one qdisc tree on
the interface that carries the node network:

- a root ``prio`` qdisc ``1:`` with 2 + G bands, where G is the number of
  distinct faults on the source's links. Its priomap sends every priority
  to band ``1:1``, so traffic that no filter matches is untouched. Band
  ``1:1`` gets a ``pfifo`` ``10:`` with an explicit limit, because Docker
  creates the containers' veth interfaces with txqueuelen 0 and a default
  pfifo takes its limit from that, so it would drop every datagram. Band
  ``1:2`` keeps prio's default pfifo and stays empty.
- for each distinct fault, a band ``1:B`` (B = 3, 4, ..., in hex as tc
  writes class ids) whose qdisc is a ``netem`` with handle ``B0:``, and for
  some reordering faults a second ``netem`` ``B1:`` below it (see
  ``netem_options``).
- per faulted destination, a ``u32`` filter that sends ``ip dst IP/32`` to
  the band of that link's fault. Destinations with equal faults share a
  band: each datagram still gets its own random loss, delay and so on.

The builders here are pure functions that return ``tc`` argument lists.
``NetnsTc`` runs them, and ``probe_netem`` checks once whether this host
can build such a tree at all.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conformance.faults import LinkFault
from conformance.runtime import FaultUnavailable

# TCQ_PRIO_BANDS, the kernel's maximum number of bands of a prio qdisc.
PRIO_MAX_BANDS = 16
# The band of the first distinct fault. Band 1:1 carries unfaulted traffic.
FIRST_FAULT_BAND = 3
# Packets that band 1:1's pfifo queues, as many as tc gives a netem by default.
UNFAULTED_QUEUE_LIMIT = 1000
MAX_DISTINCT_FAULTS = PRIO_MAX_BANDS - FIRST_FAULT_BAND + 1

ROOT_HANDLE = "1:"
# Seconds that one tc, ip or nsenter call may take.
COMMAND_TIMEOUT = 10.0

_BATCH_LINE = re.compile(r"Command failed -:(\d+)")


def _percent(probability: float) -> str:
    # netem stores a probability as a fraction of 2**32, so six decimals of
    # a percent are finer than it resolves.
    return f"{probability * 100:.6f}".rstrip("0").rstrip(".") + "%"


def _milliseconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") + "ms"


def netem_options(fault: LinkFault) -> tuple[list[str], list[str] | None]:
    """Return the netem options of a fault's band qdisc and of its child qdisc.

    The child is None unless the fault reorders datagrams on a link that
    also has a delay of its own.
    """
    if fault.cut:
        return ["loss", "100%"], None
    delay_ms = fault.delay_ms
    gap_ms = fault.reorder_gap_ms if fault.reorder > 0 else 0.0
    if fault.reorder >= 1:
        # Every datagram gets the extra delay, so none overtakes another.
        delay_ms += gap_ms
        gap_ms = 0.0
    # NOTE: netem's `reorder P%` sends a fraction P of the datagrams at once,
    # ahead of its queue, and gives the rest the qdisc's delay. So "a
    # fraction r gets reorder_gap_ms extra" becomes `delay GAP reorder
    # (1 - r)` with `gap 1`, which makes every datagram a candidate. The
    # datagrams sent at once get no delay at all, so on a link with a delay
    # of its own the reordering goes into a second netem below the first:
    # the first adds delay and jitter, the second the gap. Neither form is
    # tested against a kernel with netem, only as commands. A kernel that
    # rejects a duplicating netem beside other netems (Linux 6.16 and its
    # stable backports) cannot combine duplicate with reordering and a delay
    # on one link, or with faults on other links of the same source.
    reorder = ["reorder", _percent(1 - fault.reorder), "gap", "1"]
    options: list[str] = []
    child = None
    if fault.loss:
        options += ["loss", _percent(fault.loss)]
    if gap_ms and not delay_ms:
        options += ["delay", _milliseconds(gap_ms), *reorder]
    else:
        if delay_ms:
            # LinkFault keeps jitter_ms <= delay_ms, so jitter comes with a delay.
            options += ["delay", _milliseconds(delay_ms)]
            if fault.jitter_ms:
                options.append(_milliseconds(fault.jitter_ms))
        if gap_ms:
            child = ["delay", _milliseconds(gap_ms), *reorder]
    if fault.duplicate:
        # netem draws the loss after the duplication, so a datagram that is
        # both duplicated and lost still arrives once, where the process
        # runtime's relay drops it and its copy.
        options += ["duplicate", _percent(fault.duplicate)]
    return options, child


def band_class(band: int) -> str:
    """Return the class id of prio band ``band`` (1-based), in tc's hex."""
    return f"{ROOT_HANDLE}{band:x}"


def band_handle(band: int, child: bool = False) -> str:
    """Return the handle of band ``band``'s qdisc, or of the netem below it."""
    return f"{band:x}{1 if child else 0}:"


def group_by_fault(
    faults: Mapping[str, LinkFault],
) -> list[tuple[LinkFault, list[str]]]:
    """Group the destination IPs by equal fault, leaving out clear links.

    Groups and the IPs in each come in address order, so the same faults
    always get the same bands.
    """
    groups: dict[LinkFault, list[str]] = {}
    ordered = sorted(faults, key=ipaddress.IPv4Address)
    for address in ordered:
        fault = faults[address]
        if not fault.clear:
            groups.setdefault(fault, []).append(address)
    return list(groups.items())


def tree_commands(device: str, faults: Mapping[str, LinkFault]) -> list[list[str]]:
    """Return the tc commands that build a source's fault tree on ``device``.

    ``faults`` maps each destination IP to the fault of the link to it.
    Each command is an argument list without the leading ``tc``. The list
    is empty when every link is clear. Raises FaultUnavailable when the
    faults need more bands than prio has.
    """
    groups = group_by_fault(faults)
    if not groups:
        return []
    if len(groups) > MAX_DISTINCT_FAULTS:
        raise FaultUnavailable(
            f"the links from one node carry {len(groups)} distinct faults, but "
            f"a prio qdisc holds at most {MAX_DISTINCT_FAULTS} netem bands; "
            "give more of its links the same fault"
        )
    bands = FIRST_FAULT_BAND - 1 + len(groups)
    priomap = ["0"] * 16
    commands = [
        ["qdisc", "add", "dev", device, "root", "handle", ROOT_HANDLE, "prio"]
        + ["bands", str(bands), "priomap", *priomap],
        ["qdisc", "add", "dev", device, "parent", band_class(1)]
        + ["handle", band_handle(1), "pfifo", "limit", str(UNFAULTED_QUEUE_LIMIT)],
    ]
    filters = []
    for band, (fault, addresses) in enumerate(groups, start=FIRST_FAULT_BAND):
        options, child = netem_options(fault)
        handle = band_handle(band)
        commands.append(
            ["qdisc", "add", "dev", device, "parent", band_class(band)]
            + ["handle", handle, "netem", *options]
        )
        if child is not None:
            commands.append(
                ["qdisc", "add", "dev", device, "parent", f"{handle}1"]
                + ["handle", band_handle(band, child=True), "netem", *child]
            )
        for address in addresses:
            filters.append(
                ["filter", "add", "dev", device, "parent", ROOT_HANDLE]
                + ["protocol", "ip", "prio", "1", "u32"]
                + ["match", "ip", "dst", f"{address}/32", "flowid", band_class(band)]
            )
    # Filters last, so that no datagram reaches a band before its netem.
    return commands + filters


def delete_command(device: str) -> list[str]:
    return ["qdisc", "del", "dev", device, "root"]


def batch_input(commands: Sequence[Sequence[str]]) -> str:
    """Return the commands as the input of ``tc -batch -``, one a line."""
    return "".join(" ".join(command) + "\n" for command in commands)


def device_for_address(ip_output: str, address: str) -> str | None:
    """Return the interface that has ``address``, from ``ip -o -4 addr show``."""
    for line in ip_output.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "inet":
            if fields[3].split("/")[0] == address:
                return fields[1].split("@")[0]
    return None


def has_fault_tree(qdisc_output: str) -> bool:
    """Return whether ``tc qdisc show dev DEV root`` lists this module's root."""
    return any(
        line.startswith(f"qdisc prio {ROOT_HANDLE} root")
        for line in qdisc_output.splitlines()
    )


def _hint(stderr: str) -> str:
    if "qdisc kind is unknown" in stderr:
        return (
            "the host kernel lacks sch_netem or sch_prio: load them with "
            "`modprobe sch_netem sch_prio cls_u32`, or run the scenario with "
            "--runtime process"
        )
    if "duplicating netem" in stderr:
        return (
            "this kernel allows a netem with duplicate only as the sole netem "
            "of an interface: give duplicate only to a node's single faulted "
            "link, without reordering"
        )
    return "run the command by hand as root to see the cause"


def _failed_line(stderr: str, stdin: str | None) -> str:
    # `tc -batch` names the line of the command that failed.
    match = _BATCH_LINE.search(stderr)
    if match is None or stdin is None:
        return ""
    lines = stdin.splitlines()
    index = int(match[1]) - 1
    return f" at `tc {lines[index]}`" if 0 <= index < len(lines) else ""


@dataclass(frozen=True)
class HostTools:
    """Paths of the host's tc, ip, nsenter and unshare."""

    tc: str
    ip: str
    nsenter: str
    unshare: str

    @classmethod
    def find(cls) -> HostTools | None:
        """Return the tools on PATH or in /usr/sbin, /sbin and /usr/bin, or None."""
        search = os.pathsep.join(
            [os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin"]
        )
        paths = {
            name: shutil.which(name, path=search)
            for name in ("tc", "ip", "nsenter", "unshare")
        }
        if any(path is None for path in paths.values()):
            return None
        return cls(**{name: str(path) for name, path in paths.items()})


def _run(
    argv: Sequence[str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise FaultUnavailable(
            f"`{' '.join(argv)}` timed out after {COMMAND_TIMEOUT:g} s"
        ) from None
    except OSError as error:
        raise FaultUnavailable(f"cannot run `{' '.join(argv)}`: {error}") from None


@functools.cache
def probe_netem() -> str | None:
    """Return why this host cannot apply link faults with netem, or None if it can.

    Builds a one-band tree on the loopback interface of a network
    namespace that exists only while ``unshare --net`` runs, so nothing
    is left behind. Blocks for one short tc call, once per process.
    """
    tools = HostTools.find()
    if tools is None:
        return (
            "link faults need tc, ip, nsenter and unshare on the host, and one "
            "is missing: apt-get install iproute2 util-linux"
        )
    if os.geteuid() != 0:
        return (
            "link faults need root, because tc runs in the containers' network "
            "namespaces: run the harness as root"
        )
    probe = tree_commands("lo", {"127.0.0.2": LinkFault(loss=0.5, delay_ms=1.0)})
    stdin = batch_input(probe)
    try:
        completed = _run([tools.unshare, "--net", tools.tc, "-batch", "-"], stdin)
    except FaultUnavailable as error:
        return f"the netem probe failed: {error}"
    if completed.returncode != 0:
        stderr = completed.stderr.strip()
        return (
            f"tc cannot build a netem tree on this host{_failed_line(stderr, stdin)}"
            f" ({stderr.splitlines()[0] if stderr else 'no output'}); " + _hint(stderr)
        )
    return None


class NetnsTc:
    """Runs ip and tc in the network namespace of a process on this host.

    Every method runs its commands in a worker thread, so the event loop
    keeps running, and raises FaultUnavailable with the command, its
    stderr and a hint when one fails.
    """

    def __init__(self, tools: HostTools) -> None:
        self.tools = tools

    def _netns(self, pid: int) -> list[str]:
        return [self.tools.nsenter, "-t", str(pid), "-n"]

    async def _check(self, argv: list[str], stdin: str | None = None) -> str:
        completed = await asyncio.to_thread(_run, argv, stdin)
        if completed.returncode != 0:
            stderr = completed.stderr.strip()
            raise FaultUnavailable(
                f"`{' '.join(argv)}` failed{_failed_line(stderr, stdin)} with status "
                f"{completed.returncode}: {stderr or 'no output'}; {_hint(stderr)}"
            )
        return completed.stdout

    async def device(self, pid: int, address: str) -> str | None:
        """Return the interface that has ``address`` in ``pid``'s namespace."""
        output = await self._check(
            [*self._netns(pid), self.tools.ip, "-o", "-4", "addr", "show"]
        )
        return device_for_address(output, address)

    async def replace_tree(
        self, pid: int, device: str, faults: Mapping[str, LinkFault]
    ) -> None:
        """Replace the fault tree on ``device`` by one for ``faults``, or delete it.

        The deletion of an old tree and the new tree go through one
        ``tc -batch`` call, so the link runs without its faults only for
        the moment between two netlink requests. Datagrams that an old
        netem still delays are dropped with it.
        """
        netns = self._netns(pid)
        root_qdisc = await self._check(
            [*netns, self.tools.tc, "qdisc", "show", "dev", device, "root"]
        )
        commands = tree_commands(device, faults)
        if has_fault_tree(root_qdisc):
            commands.insert(0, delete_command(device))
        if commands:
            await self._check(
                [*netns, self.tools.tc, "-batch", "-"], batch_input(commands)
            )

"""Link faults in the docker runtime: ``tc netem``, or iptables where netem is missing.

The docker runtime (docker_runtime.py) runs the host's ``tc`` or
``iptables`` inside the containers' network namespaces (``nsenter -t PID
-n``), because the images have neither. netem delays and drops datagrams as
they leave, so it runs in the source container of each faulted link.
iptables drops them as they arrive, so it runs in the destination
container: a datagram dropped on the sending side would fail the sender's
``sendto`` with EPERM, where a datagram lost on a network vanishes
silently. ``select_backend`` picks netem when ``probe_netem`` passes, and
iptables when only ``probe_iptables`` does.

With netem, the faults of one source node form one qdisc tree on the
interface that carries the node network:

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

With iptables, the faults of the links into one destination node are the
rules of the chain ``SWIMCONF`` in the filter table, which the first rule
of ``INPUT`` jumps to. Each faulted source gets one rule that drops UDP
from ``IP/32``, with the ``statistic`` match for a loss below 1 (see
``chain_rules``). iptables can only drop, so this backend runs loss and
cuts, and ``iptables_unsupported`` names the parts of a fault that it
cannot apply.

The builders here are pure functions that return ``tc`` argument lists or
``iptables-restore`` input. ``NetnsTc`` and ``NetnsIptables`` run them, and
the probes check once whether this host can apply them at all.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

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
        paths = _find_tools("tc", "ip", "nsenter", "unshare")
        return None if paths is None else cls(**paths)


def _find_tools(*names: str) -> dict[str, str] | None:
    """Return the path of each program, keyed by its name with ``_`` for ``-``.

    Searches PATH, then /usr/sbin, /sbin and /usr/bin. Returns None when
    one of them is missing.
    """
    search = os.pathsep.join(
        [os.environ.get("PATH", ""), "/usr/sbin", "/sbin", "/usr/bin"]
    )
    paths = {name: shutil.which(name, path=search) for name in names}
    if any(path is None for path in paths.values()):
        return None
    return {name.replace("-", "_"): str(path) for name, path in paths.items()}


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


class LinkFaultBackend(Protocol):
    """Applies the link faults of one node inside its network namespace."""

    # "netem" or "iptables", for logs and messages.
    name: str
    # Whether the faults live on the node-network interface, so that they
    # go with it when the container is detached from that network.
    bound_to_interface: bool
    # Whether a node's namespace applies the faults of the links into it
    # (iptables, which drops on receipt) rather than out of it (netem).
    ingress: bool

    async def apply(
        self, pid: int, address: str, faults: Mapping[str, LinkFault]
    ) -> None:
        """Make ``faults`` the faults that process ``pid``'s namespace applies.

        ``address`` is the node's node-network IP. ``faults`` maps the IP at
        the other end of each link to the link's fault: each destination of
        the node's outgoing links, or with ``ingress`` each source of its
        incoming links. An empty mapping removes every fault. Raises
        FaultUnavailable when a command fails.
        """
        ...


def _netns_prefix(nsenter: str, pid: int) -> list[str]:
    """Return the command prefix that runs a program in ``pid``'s network namespace."""
    return [nsenter, "-t", str(pid), "-n"]


async def _run_checked(
    argv: list[str],
    stdin: str | None,
    failed_line: Callable[[str], str],
    hint: Callable[[str], str] | None = None,
) -> str:
    """Run ``argv`` in a worker thread and return its stdout.

    Raises FaultUnavailable with the command, the input line that failed
    (from ``failed_line``), the status, stderr and, with ``hint``, a hint.
    """
    completed = await asyncio.to_thread(_run, argv, stdin)
    if completed.returncode == 0:
        return completed.stdout
    stderr = completed.stderr.strip()
    message = (
        f"`{' '.join(argv)}` failed{failed_line(stderr)} with status "
        f"{completed.returncode}: {stderr or 'no output'}"
    )
    if hint is not None:
        message += f"; {hint(stderr)}"
    raise FaultUnavailable(message)


class NetnsTc:
    """Runs ip and tc in the network namespace of a process on this host.

    Every method runs its commands in a worker thread, so the event loop
    keeps running, and raises FaultUnavailable with the command, its
    stderr and a hint when one fails.
    """

    name = "netem"
    bound_to_interface = True
    ingress = False

    def __init__(self, tools: HostTools) -> None:
        self.tools = tools

    def _netns(self, pid: int) -> list[str]:
        return _netns_prefix(self.tools.nsenter, pid)

    async def _check(self, argv: list[str], stdin: str | None = None) -> str:
        return await _run_checked(
            argv,
            stdin,
            lambda stderr: _failed_line(stderr, stdin),
            _hint,
        )

    async def device(self, pid: int, address: str) -> str | None:
        """Return the interface that has ``address`` in ``pid``'s namespace."""
        output = await self._check(
            [*self._netns(pid), self.tools.ip, "-o", "-4", "addr", "show"]
        )
        return device_for_address(output, address)

    async def apply(
        self, pid: int, address: str, faults: Mapping[str, LinkFault]
    ) -> None:
        """Replace the fault tree on the interface that has ``address``."""
        device = await self.device(pid, address)
        if device is None:
            raise FaultUnavailable(
                f"the network namespace of process {pid} has no interface with "
                f"the node-network address {address}. Check the container's "
                "networks with `docker inspect`"
            )
        await self.replace_tree(pid, device, faults)

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


# The iptables backend, for hosts whose kernel has no netem.

# The filter-table chain that contains a destination's drop rules. The first
# rule of INPUT jumps to it, so its rules see every datagram that the node
# receives. A drop there is silent to the sender, where one in OUTPUT would
# fail the sender's sendto with EPERM.
CHAIN = "SWIMCONF"
JUMP_RULE = f"-A INPUT -j {CHAIN}"

_RESTORE_LINE = re.compile(r"Error occurred at line: (\d+)")


def _probability(value: float) -> str:
    # xt_statistic stores the probability in units of 2**-31, so ten
    # decimals are finer than it resolves.
    return f"{value:.10f}".rstrip("0").rstrip(".")


def iptables_unsupported(fault: LinkFault) -> list[str]:
    """Return the fields of ``fault`` that dropping datagrams cannot apply.

    Each entry is ``NAME VALUE``, such as ``delay_ms 40``. A cut needs
    nothing else, so the list is empty for one.
    """
    if fault.cut:
        return []
    fields = [
        ("delay_ms", fault.delay_ms),
        ("jitter_ms", fault.jitter_ms),
        ("duplicate", fault.duplicate),
        ("reorder", fault.reorder),
    ]
    return [f"{name} {value:g}" for name, value in fields if value]


def drop_rule(address: str, fault: LinkFault) -> list[str]:
    """Return the ``CHAIN`` rule that drops UDP datagrams from ``address``.

    It drops all of them for a cut, and for a loss below 1 a random share
    of that size (the ``statistic`` match).
    """
    rule = ["-A", CHAIN, "-s", f"{address}/32", "-p", "udp"]
    if not fault.cut:
        rule += ["-m", "statistic", "--mode", "random"]
        rule += ["--probability", _probability(fault.loss)]
    return rule + ["-j", "DROP"]


def chain_rules(faults: Mapping[str, LinkFault]) -> list[list[str]]:
    """Return the rules of ``CHAIN`` for a destination's faults, one per source.

    ``faults`` maps each source IP to the fault of the link from it.
    Rules come in address order and clear links get none. Raises
    FaultUnavailable for a fault with a delay, jitter, duplication or
    reordering, which a drop rule cannot apply.
    """
    rules = []
    for address in sorted(faults, key=ipaddress.IPv4Address):
        fault = faults[address]
        if fault.clear:
            continue
        unsupported = iptables_unsupported(fault)
        if unsupported:
            raise FaultUnavailable(
                f"the link from {address} needs tc netem for "
                f"{_and_list(unsupported)}, but link faults run with iptables on "
                "this host, which only drops datagrams"
            )
        rules.append(drop_rule(address, fault))
    return rules


@dataclass(frozen=True)
class ChainState:
    """Whether a filter table has ``CHAIN`` and the jump from INPUT to it."""

    chain: bool
    jump: bool

    @classmethod
    def parse(cls, rules_output: str) -> ChainState:
        """Read the state from the output of ``iptables -S`` for the filter table."""
        lines = {line.strip() for line in rules_output.splitlines()}
        return cls(chain=f"-N {CHAIN}" in lines, jump=JUMP_RULE in lines)


def restore_input(faults: Mapping[str, LinkFault], state: ChainState) -> str | None:
    """Return the ``iptables-restore --noflush`` input that rebuilds ``CHAIN``.

    With faults, the chain is created or flushed and filled, and the jump
    is inserted first in INPUT if it is missing. Without faults, the chain
    and its jump are deleted. Returns None when nothing is to change.
    """
    rules = chain_rules(faults)
    # With --noflush, a chain line creates the chain or flushes it.
    lines = ["*filter", f":{CHAIN} - [0:0]"]
    if rules:
        if not state.jump:
            lines.append(f"-I INPUT 1 -j {CHAIN}")
        lines += [" ".join(rule) for rule in rules]
    elif state.chain:
        if state.jump:
            lines.append(f"-D INPUT -j {CHAIN}")
        lines.append(f"-X {CHAIN}")
    else:
        return None
    lines.append("COMMIT")
    return "".join(line + "\n" for line in lines)


def _restore_failed_line(stderr: str, stdin: str | None) -> str:
    # iptables-restore names the input line at which it failed.
    match = _RESTORE_LINE.search(stderr)
    if match is None or stdin is None:
        return ""
    lines = stdin.splitlines()
    index = int(match[1]) - 1
    return f" at `{lines[index]}`" if 0 <= index < len(lines) else ""


def _first_line(stderr: str) -> str:
    return stderr.splitlines()[0] if stderr else "no output"


_IPTABLES_HINT = (
    "check that the host kernel has nf_tables and the statistic match "
    "(CONFIG_NF_TABLES, CONFIG_NFT_COMPAT, CONFIG_NETFILTER_XT_MATCH_STATISTIC) "
    "for iptables-nft, or ip_tables for iptables-legacy"
)


@dataclass(frozen=True)
class IptablesTools:
    """Paths of the host's iptables, iptables-restore, nsenter and unshare."""

    iptables: str
    iptables_restore: str
    nsenter: str
    unshare: str

    @classmethod
    def find(cls) -> IptablesTools | None:
        """Return the tools on PATH or in /usr/sbin, /sbin and /usr/bin, or None."""
        paths = _find_tools("iptables", "iptables-restore", "nsenter", "unshare")
        return None if paths is None else cls(**paths)


@functools.cache
def probe_iptables() -> str | None:
    """Return why this host cannot apply link faults with iptables, or None if it can.

    Builds the chain for a cut and a loss in a network namespace that exists
    only while ``unshare --net`` runs, so nothing is left behind. Blocks for
    one short iptables-restore call, once per process.
    """
    tools = IptablesTools.find()
    if tools is None:
        return (
            "link faults with iptables need iptables, iptables-restore, nsenter "
            "and unshare on the host, and one is missing: apt-get install "
            "iptables util-linux"
        )
    if os.geteuid() != 0:
        return (
            "link faults need root, because iptables runs in the containers' "
            "network namespaces: run the harness as root"
        )
    faults = {"127.0.0.2": LinkFault(loss=0.5), "127.0.0.3": LinkFault(loss=1.0)}
    stdin = restore_input(faults, ChainState(chain=False, jump=False))
    argv = [tools.unshare, "--net", tools.iptables_restore, "-w", "--noflush"]
    try:
        completed = _run(argv, stdin)
    except FaultUnavailable as error:
        return f"the iptables probe failed: {error}"
    if completed.returncode != 0:
        stderr = completed.stderr.strip()
        return (
            "iptables-restore cannot build the drop rules on this host"
            f"{_restore_failed_line(stderr, stdin)} ({_first_line(stderr)}); "
            + _IPTABLES_HINT
        )
    return None


class NetnsIptables:
    """Runs iptables in the network namespace of a process on this host.

    Every method runs its commands in a worker thread, so the event loop
    keeps running, and raises FaultUnavailable with the command and its
    stderr when one fails.
    """

    name = "iptables"
    # The rules match source IPs on any interface and stay in the namespace
    # while the container is detached from the node network.
    bound_to_interface = False
    ingress = True

    def __init__(self, tools: IptablesTools) -> None:
        self.tools = tools

    def _netns(self, pid: int) -> list[str]:
        return _netns_prefix(self.tools.nsenter, pid)

    async def _check(self, argv: list[str], stdin: str | None = None) -> str:
        return await _run_checked(
            argv, stdin, lambda stderr: _restore_failed_line(stderr, stdin)
        )

    async def apply(
        self, pid: int, address: str, faults: Mapping[str, LinkFault]
    ) -> None:
        """Rebuild ``CHAIN`` in ``pid``'s namespace for ``faults``, or delete it.

        The new rules replace the old ones in one iptables-restore
        transaction, so no datagram passes between them.
        """
        netns = self._netns(pid)
        listing = await self._check([*netns, self.tools.iptables, "-w", "-S"])
        stdin = restore_input(faults, ChainState.parse(listing))
        if stdin is not None:
            await self._check(
                [*netns, self.tools.iptables_restore, "-w", "--noflush"], stdin
            )


def link_faults_unavailable() -> str | None:
    """Return why neither backend can apply link faults on this host, or None.

    Runs each probe at most once per process.
    """
    netem = probe_netem()
    if netem is None:
        return None
    iptables = probe_iptables()
    if iptables is None:
        return None
    return f"{netem}. The iptables fallback is not usable either: {iptables}"


def fault_unavailable(fault: LinkFault) -> str | None:
    """Return why this host cannot apply ``fault`` to a link, or None if it can."""
    reason = link_faults_unavailable()
    if reason is not None or probe_netem() is None:
        return reason
    unsupported = iptables_unsupported(fault)
    if not unsupported:
        return None
    # The cause comes last, because the CLI prints only the first 300
    # characters of a reason.
    return (
        f"this link fault needs tc netem for {_and_list(unsupported)}, but netem "
        "is not usable on this host, and the iptables fallback only drops "
        f"datagrams (loss and cuts). Why netem fails: {probe_netem()}"
    )


def _and_list(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def select_backend() -> LinkFaultBackend:
    """Return the backend for this host: netem if it works, else iptables.

    Raises FaultUnavailable with both probes' reasons when neither works.
    Blocks for the probes on the first call.
    """
    reason = link_faults_unavailable()
    if reason is not None:
        raise FaultUnavailable(reason)
    if probe_netem() is None:
        tc_tools = HostTools.find()
        assert tc_tools is not None
        return NetnsTc(tc_tools)
    iptables_tools = IptablesTools.find()
    assert iptables_tools is not None
    return NetnsIptables(iptables_tools)

"""swim-node: a swim_py member that speaks the conformance peer contract.

The contract (``conformance/PEER_CONTRACT.md``) fixes the flags, the ready
line, the event lines and the commands; ``rust_peer`` implements the same
one for foca, so the harness drives both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import swim_py
from swim_py import (
    AsyncIoUdpTransport,
    Config,
    EventKind,
    KeyedBroadcastHandler,
    KeyedItem,
    StaticDiscovery,
    Swim,
)
from swim_py.config import PeriodicParams
from swim_py.errors import ERROR_CLASSES, ConfigError, SwimError
from swim_py.events import ConnectionState
from swim_py.identity import Address, Identity
from swim_py.payload import State

CONTRACT_VERSION = 1
logger = logging.getLogger("swim_node")

_DURATION_FIELDS = {
    "probe_period_ms": "probe_period",
    "probe_rtt_ms": "probe_rtt",
    "suspect_to_down_after_ms": "suspect_to_down_after",
    "remove_down_after_ms": "remove_down_after",
}
_INT_FIELDS = ("num_indirect_probes", "max_transmissions", "max_packet_size")
_PERIODIC_FIELDS = (
    "periodic_announce",
    "periodic_announce_to_down_members",
    "periodic_gossip",
)
_STATE_NAMES = {State.ALIVE: "alive", State.SUSPECT: "suspect", State.DOWN: "down"}
_CONNECTION_NAMES = {
    ConnectionState.DISCONNECTED: "disconnected",
    ConnectionState.CONNECTED: "connected",
    ConnectionState.UNDEAD: "undead",
}


class UsageError(Exception):
    """An invalid flag value; the message names the flag and the fix."""


def parse_preset(text: str) -> Config:
    """Build the Config for ``simple``, ``lan:N`` or ``wan:N``."""
    name, _, count = text.partition(":")
    if name == "simple" and not count:
        return Config.simple()
    if name in ("lan", "wan") and count:
        try:
            size = int(count)
        except ValueError:
            size = 0
        if size < 1:
            raise UsageError(f"invalid --config {text!r}: N must be a positive integer")
        return Config.new_lan(size) if name == "lan" else Config.new_wan(size)
    raise UsageError(f"invalid --config {text!r}: expected simple, lan:N or wan:N")


def apply_overrides(config: Config, assignments: Sequence[str]) -> Config:
    """Return ``config`` with every ``FIELD=VALUE`` from ``--set`` applied.

    The fields are validated together after the last one, so the order of
    the flags does not matter.
    """
    changes: dict[str, Any] = {}
    for assignment in assignments:
        field, value = _parse_override(assignment)
        changes[field] = value
    try:
        return replace(config, **changes)
    except ValueError as exc:
        raise UsageError(f"invalid --set values {list(assignments)}: {exc}") from None


def _parse_override(assignment: str) -> tuple[str, object]:
    field, sep, value = assignment.partition("=")
    if not sep:
        raise UsageError(f"invalid --set {assignment!r}: expected FIELD=VALUE")
    try:
        if field in _DURATION_FIELDS:
            return _DURATION_FIELDS[field], int(value) / 1000
        if field in _INT_FIELDS:
            return field, int(value)
        if field == "notify_down_members":
            if value not in ("true", "false"):
                raise UsageError(
                    f"invalid --set {assignment!r}: expected true or false"
                )
            return field, value == "true"
        if field in _PERIODIC_FIELDS:
            return field, _parse_periodic(assignment, value)
    except ValueError as exc:
        raise UsageError(f"invalid --set {assignment!r}: {exc}") from None
    known = ", ".join(
        [*_DURATION_FIELDS, *_INT_FIELDS, "notify_down_members", *_PERIODIC_FIELDS]
    )
    raise UsageError(f"unknown --set field {field!r}: expected one of {known}")


def _parse_periodic(assignment: str, value: str) -> PeriodicParams | None:
    if value == "off":
        return None
    frequency, sep, count = value.partition(":")
    if not sep:
        raise UsageError(
            f"invalid --set {assignment!r}: expected off or FREQUENCY_MS:NUM_MEMBERS"
        )
    return PeriodicParams(frequency=int(frequency) / 1000, num_members=int(count))


def config_to_contract(config: Config) -> dict[str, Any]:
    """Return the config as the ready line reports it, with ``--set`` names."""
    report: dict[str, Any] = {
        name: round(getattr(config, attr) * 1000)
        for name, attr in _DURATION_FIELDS.items()
    }
    for name in _INT_FIELDS:
        report[name] = getattr(config, name)
    report["notify_down_members"] = config.notify_down_members
    for name in _PERIODIC_FIELDS:
        params: PeriodicParams | None = getattr(config, name)
        report[name] = (
            "off"
            if params is None
            else f"{round(params.frequency * 1000)}:{params.num_members}"
        )
    return report


def identity_to_json(identity: Identity) -> dict[str, Any]:
    return {
        "id": identity.id.hex(),
        "addr": str(identity.addr),
        "renewal": identity.renewal,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swim-node",
        description="Run one swim_py member driven over the conformance peer contract.",
    )
    parser.add_argument(
        "--bind",
        default="127.0.0.1:0",
        help="UDP IP:PORT to bind; port 0 lets the OS choose",
    )
    parser.add_argument(
        "--advertise", help="IP:PORT put in the identity (default: the bound address)"
    )
    parser.add_argument("--id", default="", help="the identity's opaque id, as hex")
    parser.add_argument(
        "--renewal", default="0", help="the identity's renewal counter (u64)"
    )
    parser.add_argument(
        "--config", default="simple", help="preset: simple, lan:N or wan:N"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one config field; durations in ms",
    )
    parser.add_argument(
        "--seed",
        action="append",
        default=[],
        metavar="IP:PORT",
        help="member to announce to at start (repeatable)",
    )
    control = parser.add_mutually_exclusive_group()
    control.add_argument(
        "--control",
        help=(
            "IP:PORT of the harness's TCP listener; without it or"
            " --control-listen the node runs standalone and logs events to stderr"
        ),
    )
    control.add_argument(
        "--control-listen",
        metavar="IP:PORT",
        help=(
            "TCP address to listen on for the harness's one control connection,"
            " instead of connecting to it; for nodes in containers"
        ),
    )
    parser.add_argument("--rng-seed", help="seed for the random generator (u64)")
    return parser


class NodeAgent:
    """One Swim instance and its control connection."""

    def __init__(
        self,
        swim: Swim,
        transport: AsyncIoUdpTransport,
        writer: asyncio.StreamWriter | None,
    ) -> None:
        self.swim = swim
        self.transport = transport
        self.writer = writer

    def send_line(self, payload: dict[str, Any]) -> None:
        if self.writer is None:
            _log_standalone(payload)
            return
        if self.writer.is_closing():
            return
        self.writer.write(json.dumps(payload, separators=(",", ":")).encode() + b"\n")

    def send_event(self, kind: str, **fields: Any) -> None:
        self.send_line(
            {
                "type": "event",
                "ts": fields.pop("ts", time.time()),
                "kind": kind,
                **fields,
            }
        )

    def on_broadcast(self, item: KeyedItem, sender: Identity | None) -> None:
        self.send_event(
            "broadcast",
            key=item.key,
            version=item.version,
            data=item.data.hex(),
            **{"from": None if sender is None else identity_to_json(sender)},
        )

    async def forward_events(self) -> None:
        async for event in self.swim.events:
            fields: dict[str, Any] = {"ts": event.ts}
            match event.kind:
                case EventKind.MEMBER_UP | EventKind.MEMBER_DOWN:
                    assert event.member is not None
                    fields["member"] = identity_to_json(event.member)
                    kind = event.kind.value
                case EventKind.MEMBER_RENAMED:
                    assert event.member is not None and event.previous is not None
                    fields["old"] = identity_to_json(event.previous)
                    fields["new"] = identity_to_json(event.member)
                    kind = "rename"
                case EventKind.REJOIN:
                    assert event.member is not None
                    fields["identity"] = identity_to_json(event.member)
                    kind = "rejoin"
                case EventKind.ACTIVE | EventKind.IDLE | EventKind.DEFUNCT:
                    kind = event.kind.value
                case EventKind.MEMBER_SUSPECT:
                    # Suspicion is not a foca notification, so the contract
                    # reports it only through the members reply.
                    continue
            self.send_event(kind, **fields)
            if self.writer is not None:
                await self.writer.drain()

    async def serve_commands(self, reader: asyncio.StreamReader) -> None:
        assert self.writer is not None
        while True:
            line = await reader.readline()
            if not line:
                return
            try:
                command = json.loads(line)
                if not isinstance(command, dict):
                    raise ValueError("expected a JSON object")
            except ValueError as exc:
                self.send_line(
                    {
                        "type": "reply",
                        "req": None,
                        "ok": False,
                        "error": f"invalid command line: {exc}",
                    }
                )
                continue
            request = command.get("req")
            try:
                reply = self.execute(command)
            except (SwimError, ValueError, KeyError, TypeError, RuntimeError) as exc:
                self.send_line(
                    {"type": "reply", "req": request, "ok": False, "error": str(exc)}
                )
            else:
                self.send_line({"type": "reply", "req": request, "ok": True, **reply})
            await self.writer.drain()
            if command.get("cmd") == "stop":
                return

    def execute(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command.get("cmd")
        swim = self.swim
        if name == "members":
            return {
                "identity": identity_to_json(swim.identity),
                "connection": _CONNECTION_NAMES[swim.connection_state],
                "incarnation": swim.incarnation,
                "members": [
                    {
                        "member": identity_to_json(member.id),
                        "incarnation": member.incarnation,
                        "state": _STATE_NAMES[member.state],
                    }
                    for member in swim.membership_state()
                ],
            }
        if name == "stats":
            errors = {
                error_class: swim.error_counts.get(error_class, 0)
                for error_class in ERROR_CLASSES
            }
            received = {
                addr: dict(counts) for addr, counts in swim.received_counts.items()
            }
            return {"errors": errors, "received": received}
        if name == "broadcast":
            item = KeyedItem(
                str(command["key"]),
                int(command["version"]),
                bytes.fromhex(command.get("data", "")),
            )
            added = swim.add_broadcast(item.encode())
            if command.get("send"):
                swim.send_broadcast()
            return {"added": added}
        if name == "announce":
            swim.announce(Address.parse(str(command["addr"])))
            return {}
        if name == "gossip":
            swim.gossip()
            return {}
        if name == "renew":
            return {"identity": identity_to_json(swim.renew())}
        if name == "leave":
            swim.leave()
            return {}
        if name == "stop":
            return {}
        raise ValueError(
            f"unknown command {name!r}: expected members, stats, broadcast,"
            " announce, gossip, renew, leave or stop"
        )


async def run_node(
    args: argparse.Namespace,
    config: Config,
    identity_id: bytes,
    renewal: int,
    rng: random.Random,
) -> int:
    transport = AsyncIoUdpTransport(args.bind)
    await transport.start()
    advertise = (
        Address.parse(args.advertise) if args.advertise else transport.local_address
    )
    identity = Identity(advertise, identity_id, renewal)
    handler = KeyedBroadcastHandler()
    swim = Swim(
        identity=identity,
        config=config,
        transport=transport,
        discovery=StaticDiscovery(args.seed),
        broadcast_handler=handler,
        rng=rng,
    )
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    if args.control:
        control = Address.parse(args.control)
        reader, writer = await asyncio.open_connection(str(control.ip), control.port)
    elif args.control_listen:
        reader, writer = await accept_control(Address.parse(args.control_listen))
    agent = NodeAgent(swim, transport, writer)
    handler.on_item = agent.on_broadcast
    agent.send_line(
        {
            "type": "ready",
            "ts": time.time(),
            "contract": CONTRACT_VERSION,
            "impl": "swim_py",
            "version": f"swim_py {swim_py.__version__}",
            "identity": identity_to_json(identity),
            "bind": str(transport.local_address),
            "pid": os.getpid(),
            "config": config_to_contract(config),
        }
    )
    if writer is not None:
        await writer.drain()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, swim.stop)
    run_task = asyncio.create_task(swim.run())
    events_task = asyncio.create_task(agent.forward_events())
    waited: set[asyncio.Task[None]] = {run_task}
    if reader is not None:
        waited.add(asyncio.create_task(agent.serve_commands(reader)))
    await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
    swim.stop()
    await asyncio.wait({run_task})
    await asyncio.wait({events_task}, timeout=1.0)
    for task in (events_task, *waited):
        task.cancel()
    transport.close()
    if writer is not None:
        try:
            await writer.drain()
            writer.close()
        except ConnectionError:
            pass
    # Re-raise a failure of the node itself, for example a bind error.
    run_task.result()
    return 0


async def accept_control(
    address: Address,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Listen on ``address``, return the first connection and stop listening.

    Closing the listener makes later connection attempts fail, so the
    harness cannot end up talking to a node that ignores it.
    """
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if accepted.done():
            writer.close()
        else:
            accepted.set_result((reader, writer))

    server = await asyncio.start_server(
        on_connect, host=str(address.ip), port=address.port
    )
    logger.info("waiting for the control connection on %s", address)
    try:
        reader, writer = await accepted
    finally:
        # Only the listening socket closes; the accepted connection stays open.
        server.close()
    logger.info("control connection from %s", writer.get_extra_info("peername"))
    return reader, writer


def _log_standalone(payload: dict[str, Any]) -> None:
    fields = " ".join(
        f"{name}={_describe(value)}"
        for name, value in payload.items()
        if name not in ("type", "ts", "kind")
    )
    label = payload.get("kind", payload.get("type"))
    logger.info("%s %s", label, fields)


def _describe(value: Any) -> str:
    if isinstance(value, dict) and "addr" in value and "renewal" in value:
        name = bytes.fromhex(value["id"]).decode("utf-8", "replace")
        return f"{name}@{value['addr']}#{value['renewal']}"
    return json.dumps(value, separators=(",", ":"))


def _parse_hex(flag: str, value: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise UsageError(f"invalid {flag} {value!r}: expected hex digits") from None


def _parse_u64(flag: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number < 2**64:
        raise UsageError(
            f"invalid {flag} {value!r}: expected an integer from 0 to 2^64-1"
        )
    return number


def _parse_address(flag: str, value: str) -> Address:
    try:
        return Address.parse(value)
    except ValueError as exc:
        raise UsageError(f"invalid {flag}: {exc}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("SWIM_NODE_LOG", "INFO").upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = parse_preset(args.config)
        config = apply_overrides(config, args.set)
        identity_id = _parse_hex("--id", args.id)
        renewal = _parse_u64("--renewal", args.renewal)
        _parse_address("--bind", args.bind)
        if args.control:
            _parse_address("--control", args.control)
        if args.control_listen:
            _parse_address("--control-listen", args.control_listen)
        if args.advertise:
            _parse_address("--advertise", args.advertise)
        for seed in args.seed:
            _parse_address("--seed", seed)
        rng = random.Random()
        if args.rng_seed is not None:
            rng = random.Random(_parse_u64("--rng-seed", args.rng_seed))
    except (UsageError, ConfigError) as exc:
        print(f"swim-node: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run_node(args, config, identity_id, renewal, rng))


if __name__ == "__main__":
    sys.exit(main())

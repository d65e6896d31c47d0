"""A stand-in node that speaks the peer contract without SWIM.

It exists to test the harness without swim-node or rust_peer. Membership is
a toy full-state gossip over JSON datagrams. Every probe period a node sends
its member list and known broadcast items to every alive member. It
declares a member down after hearing nothing from it for
suspect_to_down_after plus two probe periods. An identity with a larger
renewal replaces the one on the same address (a ``rename``). A node that
contacts a member that lists its identity as down gets a ``turn_undead``
when notify_down_members is on, so it renews and emits ``rejoin``.

``--fake-mode`` makes it misbehave on purpose: see MODES.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections import defaultdict
from typing import Any

from conformance.config import (
    FIELDS,
    apply_overrides,
    format_field_value,
    preset_config,
)

MODES = (
    "normal",
    "exit-before-ready",  # print an error and exit 3 before connecting
    "no-ready",  # connect but never send the ready line
    "bad-ready",  # send a line that is not JSON as the ready line
    "wrong-config",  # report probe_period_ms 100 ms higher than in force
    "mute",  # send the ready line, then never reply to commands
    "crash-after-ready",  # exit 1 shortly after the ready line
    "misclassify-datagrams",  # count undecodable datagrams as malformed_packet
)

Ident = tuple[str, str, int]


def ident_json(identity: Ident) -> dict[str, Any]:
    return {"id": identity[0], "addr": identity[1], "renewal": identity[2]}


def ident_from(obj: dict[str, Any]) -> Ident:
    return (str(obj["id"]), str(obj["addr"]), int(obj["renewal"]))


def parse_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


class FakeNode(asyncio.DatagramProtocol):
    def __init__(self, args: argparse.Namespace) -> None:
        overrides = dict(item.split("=", 1) for item in args.set)
        self.config = apply_overrides(preset_config(args.config), overrides)
        self.args = args
        self.period = self.config.probe_period_ms / 1000
        self.down_after = self.config.suspect_to_down_after_ms / 1000 + 2 * self.period
        self.identity: Ident = ("", "", 0)
        self.members: dict[str, dict[str, Any]] = {}
        self.items: dict[str, tuple[int, str]] = {}
        self.received: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.errors: dict[str, int] = defaultdict(int)
        self.transport: asyncio.DatagramTransport | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.announced_ok = False

    # Control channel.

    def emit(self, obj: dict[str, Any]) -> None:
        if self.writer is not None:
            self.writer.write((json.dumps(obj) + "\n").encode())

    def event(self, kind: str, **fields: Any) -> None:
        self.emit({"type": "event", "ts": time.time(), "kind": kind, **fields})

    def connected(self) -> bool:
        return any(m["state"] == "alive" for m in self.members.values())

    def reply(self, command: dict[str, Any]) -> dict[str, Any]:
        cmd = command.get("cmd")
        if cmd == "members":
            return {
                "identity": ident_json(self.identity),
                "connection": "connected" if self.connected() else "disconnected",
                "incarnation": 0,
                "members": [
                    {
                        "member": ident_json(m["identity"]),
                        "incarnation": 0,
                        "state": m["state"],
                    }
                    for m in self.members.values()
                ],
            }
        if cmd == "stats":
            return {
                "errors": dict(self.errors),
                "received": {
                    addr: dict(counts) for addr, counts in self.received.items()
                },
            }
        if cmd == "broadcast":
            key, version, data = (
                command["key"],
                int(command["version"]),
                command["data"],
            )
            added = self.take_item(key, version, data, None)
            if command.get("send"):
                for member in self.alive_members():
                    self.send(member["identity"][1], "broadcast")
            return {"added": added}
        if cmd == "announce":
            self.send(command["addr"], "announce")
            return {}
        if cmd == "gossip":
            self.probe_round()
            return {}
        if cmd == "renew":
            self.renew(emit=False)
            return {"identity": ident_json(self.identity)}
        raise ValueError(f"unknown command {cmd!r}")

    # Membership.

    def alive_members(self) -> list[dict[str, Any]]:
        return [m for m in self.members.values() if m["state"] == "alive"]

    def send(self, addr: str, kind: str) -> None:
        assert self.transport is not None
        payload = {
            "t": kind,
            "src": ident_json(self.identity),
            "members": [
                [ident_json(m["identity"]), m["state"]] for m in self.alive_members()
            ],
            "items": [[k, v, d] for k, (v, d) in self.items.items()],
        }
        self.transport.sendto(json.dumps(payload).encode(), parse_addr(addr))

    def learn(self, identity: Ident, direct: bool) -> bool:
        """Apply news that ``identity`` is alive; return False if it is inactive."""
        addr = identity[1]
        if addr == self.identity[1]:
            return False
        known = self.members.get(addr)
        now = time.monotonic()
        if known is None:
            self.members[addr] = {"identity": identity, "state": "alive", "heard": now}
            self.event("member_up", member=ident_json(identity))
            return True
        if known["identity"] == identity:
            if known["state"] == "down":
                return False
            if direct:
                known["heard"] = now
            return True
        if identity[2] > known["identity"][2]:
            old = known["identity"]
            was_down = known["state"] == "down"
            self.members[addr] = {"identity": identity, "state": "alive", "heard": now}
            self.event("rename", old=ident_json(old), new=ident_json(identity))
            if was_down:
                self.event("member_up", member=ident_json(identity))
            return True
        return False

    def take_item(
        self, key: str, version: int, data: str, sender: Ident | None
    ) -> bool:
        known = self.items.get(key)
        if known is not None and known[0] >= version:
            return False
        self.items[key] = (version, data)
        self.event(
            "broadcast",
            key=key,
            version=version,
            data=data,
            **{"from": ident_json(sender) if sender else None},
        )
        return True

    def renew(self, emit: bool) -> None:
        self.identity = (self.identity[0], self.identity[1], self.identity[2] + 1)
        if emit:
            self.event("rejoin", identity=ident_json(self.identity))
        self.announced_ok = False
        for member in self.alive_members():
            self.send(member["identity"][1], "announce")

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = json.loads(data)
            kind = message["t"]
            sender = ident_from(message["src"])
        except (ValueError, KeyError, TypeError):
            if self.args.fake_mode == "misclassify-datagrams":
                self.errors["malformed_packet"] += 1
            else:
                self.errors["decode"] += 1
            return
        source = f"{addr[0]}:{addr[1]}"
        self.received[source][kind] += 1
        if kind == "turn_undead":
            self.learn(sender, direct=True)
            self.renew(emit=True)
            return
        if not self.learn(sender, direct=True):
            if self.config.notify_down_members:
                self.send(sender[1], "turn_undead")
            return
        self.announced_ok = True
        for member, state in message.get("members", []):
            if state == "alive":
                self.learn(ident_from(member), direct=False)
        for key, version, item in message.get("items", []):
            self.take_item(key, int(version), item, sender)
        if kind == "announce":
            self.send(sender[1], "feed")
        elif kind == "ping":
            self.send(sender[1], "ack")

    def probe_round(self) -> None:
        now = time.monotonic()
        for member in self.alive_members():
            if now - member["heard"] > self.down_after:
                member["state"] = "down"
                self.event("member_down", member=ident_json(member["identity"]))
            else:
                self.send(member["identity"][1], "ping")

    async def run(self) -> int:
        args = self.args
        loop = asyncio.get_running_loop()
        if args.fake_mode == "exit-before-ready":
            print("fake node: simulated start-up failure", file=sys.stderr)
            return 3
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=parse_addr(args.bind)
        )
        host, port = self.transport.get_extra_info("sockname")[:2]
        bind = f"{host}:{port}"
        self.identity = (args.id.lower(), args.advertise or bind, args.renewal)

        reader, self.writer = await asyncio.open_connection(*parse_addr(args.control))
        if args.fake_mode == "no-ready":
            await reader.read()
            return 0
        if args.fake_mode == "bad-ready":
            self.writer.write(b"this is not json\n")
            await reader.read()
            return 0

        config: dict[str, Any] = {}
        for field in FIELDS:
            value = getattr(self.config, field)
            plain = isinstance(value, bool | int | float)
            config[field] = value if plain else format_field_value(value)
        if args.fake_mode == "wrong-config":
            config["probe_period_ms"] = self.config.probe_period_ms + 100
        self.emit(
            {
                "type": "ready",
                "ts": time.time(),
                "contract": 1,
                "impl": "fake_node",
                "version": "0.0 (fake)",
                "identity": ident_json(self.identity),
                "bind": bind,
                "pid": os.getpid(),
                "config": config,
            }
        )

        for seed in args.seed:
            self.send(seed, "announce")
        tasks = [asyncio.create_task(self.timers(args.seed))]
        if args.fake_mode == "crash-after-ready":
            await asyncio.sleep(self.period)
            os._exit(1)

        try:
            while True:
                line = await reader.readline()
                if not line:
                    return 0
                command = json.loads(line)
                if args.fake_mode == "mute":
                    continue
                if command.get("cmd") == "stop":
                    self.emit({"type": "reply", "req": command["req"], "ok": True})
                    await self.writer.drain()
                    return 0
                try:
                    body = self.reply(command)
                    self.emit(
                        {"type": "reply", "req": command["req"], "ok": True, **body}
                    )
                except (ValueError, KeyError) as error:
                    self.emit(
                        {
                            "type": "reply",
                            "req": command["req"],
                            "ok": False,
                            "error": str(error),
                        }
                    )
        finally:
            for task in tasks:
                task.cancel()

    async def timers(self, seeds: list[str]) -> None:
        while True:
            await asyncio.sleep(self.period)
            if not self.announced_ok:
                for seed in seeds:
                    self.send(seed, "announce")
            self.probe_round()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="127.0.0.1:0")
    parser.add_argument("--advertise")
    parser.add_argument("--id", default="")
    parser.add_argument("--renewal", type=int, default=0)
    parser.add_argument("--config", default="simple")
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--seed", action="append", default=[])
    parser.add_argument("--control", required=True)
    parser.add_argument("--rng-seed", type=int)
    parser.add_argument("--fake-mode", choices=MODES, default="normal")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return asyncio.run(FakeNode(args).run())


if __name__ == "__main__":
    sys.exit(main())

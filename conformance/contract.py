"""Typed views of the JSON lines in the peer contract (PEER_CONTRACT.md).

Every parser raises ContractError naming the field that is missing or has the
wrong type, so a node that breaks the contract fails with a readable message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from conformance.errors import ContractError

CONTRACT_VERSION = 1

MESSAGE_TYPES = (
    "ping",
    "ack",
    "ping_req",
    "indirect_ping",
    "indirect_ack",
    "forwarded_ack",
    "announce",
    "feed",
    "gossip",
    "broadcast",
    "turn_undead",
)

ERROR_CLASSES = (
    "data_too_big",
    "decode",
    "data_from_ourselves",
    "malformed_packet",
    "indirect_for_ourselves",
    "custom_broadcast",
    "incomplete_probe_cycle",
    "not_connected",
    "encode",
    "other",
)

MEMBER_STATES = ("alive", "suspect", "down")
CONNECTION_STATES = ("connected", "disconnected", "undead")


def _field(obj: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in obj:
        raise ContractError(f"missing field {name!r} in {json.dumps(obj)[:300]}")
    value = obj[name]
    # bool is a subclass of int, so an int field must reject true/false explicitly.
    if isinstance(value, bool) and bool not in _as_tuple(kind):
        raise ContractError(f"field {name!r} must be {_kind_name(kind)}, got {value!r}")
    if not isinstance(value, kind):
        raise ContractError(f"field {name!r} must be {_kind_name(kind)}, got {value!r}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _object(value: Any, description: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ContractError(f"{description} must be a JSON object, got {value!r}")
    return value


@dataclass(frozen=True, order=True)
class Identity:
    """A member identity: opaque id bytes as lowercase hex, address, renewal."""

    id: str
    addr: str
    renewal: int

    @classmethod
    def from_json(cls, value: Any) -> Identity:
        obj = _object(value, "identity")
        hex_id = _field(obj, "id", str).lower()
        try:
            bytes.fromhex(hex_id)
        except ValueError:
            raise ContractError(f"identity id {hex_id!r} is not hex") from None
        renewal = _field(obj, "renewal", int)
        if renewal < 0:
            raise ContractError(f"identity renewal {renewal} is negative")
        return cls(id=hex_id, addr=_field(obj, "addr", str), renewal=renewal)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "addr": self.addr, "renewal": self.renewal}

    def renewed(self) -> Identity:
        """Return the identity that ``renew()`` produces: renewal + 1."""
        return Identity(id=self.id, addr=self.addr, renewal=self.renewal + 1)

    def __str__(self) -> str:
        return f"{self.id or '-'}@{self.addr}#{self.renewal}"


@dataclass(frozen=True)
class ReadyLine:
    """The first line a node sends on its control connection."""

    ts: float
    contract: int
    impl: str
    version: str
    identity: Identity
    bind: str
    pid: int
    config: dict[str, Any]

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ReadyLine:
        if obj.get("type") != "ready":
            raise ContractError(
                f"first line is not a ready line: {json.dumps(obj)[:300]}"
            )
        contract = _field(obj, "contract", int)
        if contract != CONTRACT_VERSION:
            raise ContractError(
                f"node speaks contract version {contract}, harness speaks "
                f"{CONTRACT_VERSION}"
            )
        return cls(
            ts=float(_field(obj, "ts", (int, float))),
            contract=contract,
            impl=_field(obj, "impl", str),
            version=_field(obj, "version", str),
            identity=Identity.from_json(_field(obj, "identity", dict)),
            bind=_field(obj, "bind", str),
            pid=_field(obj, "pid", int),
            config=_field(obj, "config", dict),
        )


@dataclass(frozen=True)
class Event:
    """One event line, tagged with the node (and process generation) that sent it.

    ``ts`` is the node's wall-clock time of the notification. ``received_at`` is
    the harness's wall-clock time when the line arrived.
    """

    node: str
    generation: int
    ts: float
    received_at: float
    kind: str
    raw: dict[str, Any]

    def identity_field(self, name: str) -> Identity:
        return Identity.from_json(self.raw.get(name))

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "generation": self.generation,
            "received_at": self.received_at,
            **self.raw,
        }


# Fields each known event kind must carry, with the parser that checks them.
_EVENT_IDENTITY_FIELDS = {
    "member_up": ("member",),
    "member_down": ("member",),
    "rename": ("old", "new"),
    "rejoin": ("identity",),
}


def parse_event(
    obj: dict[str, Any], node: str, generation: int, received_at: float
) -> Event:
    """Validate an event line and wrap it as an Event.

    Unknown event kinds are kept without further checks, so a newer node can
    report more notifications than this harness recognizes.
    """
    ts = float(_field(obj, "ts", (int, float)))
    kind = _field(obj, "kind", str)
    for name in _EVENT_IDENTITY_FIELDS.get(kind, ()):
        Identity.from_json(_field(obj, name, dict))
    if kind == "broadcast":
        _field(obj, "key", str)
        _field(obj, "version", int)
        _hex_field(obj, "data")
        sender = obj.get("from")
        if sender is not None:
            Identity.from_json(sender)
    return Event(
        node=node,
        generation=generation,
        ts=ts,
        received_at=received_at,
        kind=kind,
        raw=obj,
    )


def _hex_field(obj: dict[str, Any], name: str) -> str:
    value: str = _field(obj, name, str).lower()
    try:
        bytes.fromhex(value)
    except ValueError:
        raise ContractError(f"field {name!r} is not hex: {value!r}") from None
    return value


def broadcast_fields(event: Event) -> tuple[str, int, str]:
    """Return ``(key, version, data_hex)`` of a validated broadcast event."""
    return (
        str(event.raw["key"]),
        int(event.raw["version"]),
        str(event.raw["data"]).lower(),
    )


@dataclass(frozen=True)
class MemberEntry:
    """One row of a ``members`` reply."""

    member: Identity
    incarnation: int
    state: str


@dataclass(frozen=True)
class MembersReply:
    """A node's own identity, its connection state and every member in its list."""

    identity: Identity
    connection: str
    incarnation: int
    members: tuple[MemberEntry, ...]

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> MembersReply:
        connection = _field(obj, "connection", str)
        if connection not in CONNECTION_STATES:
            raise ContractError(f"unknown connection state {connection!r}")
        entries = []
        for row in _field(obj, "members", list):
            row_obj = _object(row, "members entry")
            state = _field(row_obj, "state", str)
            if state not in MEMBER_STATES:
                raise ContractError(f"unknown member state {state!r}")
            entries.append(
                MemberEntry(
                    member=Identity.from_json(_field(row_obj, "member", dict)),
                    incarnation=_field(row_obj, "incarnation", int),
                    state=state,
                )
            )
        return cls(
            identity=Identity.from_json(_field(obj, "identity", dict)),
            connection=connection,
            incarnation=_field(obj, "incarnation", int),
            members=tuple(entries),
        )

    def state_of(self, identity: Identity) -> str | None:
        """Return the state listed for exactly this identity, or None if absent."""
        for entry in self.members:
            if entry.member == identity:
                return entry.state
        return None

    def alive(self) -> set[Identity]:
        return {entry.member for entry in self.members if entry.state == "alive"}


@dataclass(frozen=True)
class StatsReply:
    """Error counts per class and decoded datagrams per sender and message type."""

    errors: dict[str, int]
    received: dict[str, dict[str, int]]

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> StatsReply:
        errors: dict[str, int] = {}
        for name, count in _field(obj, "errors", dict).items():
            if not isinstance(count, int) or isinstance(count, bool):
                raise ContractError(
                    f"error count for {name!r} must be an int, got {count!r}"
                )
            errors[str(name)] = count
        received: dict[str, dict[str, int]] = {}
        for sender, per_type in _field(obj, "received", dict).items():
            counts: dict[str, int] = {}
            for message, count in _object(per_type, f"received[{sender!r}]").items():
                if not isinstance(count, int) or isinstance(count, bool):
                    raise ContractError(
                        f"received count for {sender!r}/{message!r} must be an int, "
                        f"got {count!r}"
                    )
                counts[str(message)] = count
            received[str(sender)] = counts
        return cls(errors=errors, received=received)

"""The JSON form of headers, members and datagrams, as rust_peer writes it.

``tests/vectors/foca_vectors.json`` and the ``rust_peer oracle`` subcommand
use this form, and ``rust_peer/src/datagram_json.rs`` is its Rust side. An
identity is ``{"id": HEX, "addr": "IP:PORT", "renewal": INT}`` with
``[IP]:PORT`` for IPv6. A message is ``{"type": NAME, ...}`` with NAME the
``Header.message`` field name in ``proto/swim.proto`` and the variant's
fields beside it. A datagram is ``{"header", "updates", "broadcasts"}``, where
``updates`` is null when the datagram has no COUNT and ``broadcasts`` lists
each custom broadcast item as hex.

Compare decoded values, not JSON text: Rust and Python print some IPv6
addresses differently (``::ffff:192.0.2.9`` against ``::ffff:c000:209``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swim_py.codec.datagram import Datagram
from swim_py.identity import Address, Identity
from swim_py.payload import (
    MAX_INCARNATION,
    MAX_PROBE_NUMBER,
    MESSAGE_NAMES,
    Ack,
    Announce,
    Broadcast,
    Feed,
    ForwardedAck,
    Gossip,
    Header,
    IndirectAck,
    IndirectPing,
    Member,
    Message,
    Ping,
    PingReq,
    State,
    TurnUndead,
)

__all__ = [
    "JsonObject",
    "datagram_from_json",
    "datagram_to_json",
    "header_from_json",
    "header_to_json",
    "identity_from_json",
    "identity_to_json",
    "member_from_json",
    "member_to_json",
]

JsonObject = dict[str, Any]

_STATE_NAMES = {State.ALIVE: "alive", State.SUSPECT: "suspect", State.DOWN: "down"}
_STATES_BY_NAME = {name: state for state, name in _STATE_NAMES.items()}
_EMPTY_MESSAGES: dict[str, Message] = {
    "announce": Announce(),
    "feed": Feed(),
    "gossip": Gossip(),
    "broadcast": Broadcast(),
    "turn_undead": TurnUndead(),
}
_PROBE_MESSAGES: dict[str, Callable[[int], Message]] = {"ping": Ping, "ack": Ack}
_TARGET_MESSAGES: dict[str, Callable[[Identity, int], Message]] = {
    "ping_req": PingReq,
    "indirect_ack": IndirectAck,
}
_ORIGIN_MESSAGES: dict[str, Callable[[Identity, int], Message]] = {
    "indirect_ping": IndirectPing,
    "forwarded_ack": ForwardedAck,
}


def identity_to_json(identity: Identity) -> JsonObject:
    return {
        "id": identity.id.hex(),
        "addr": str(identity.addr),
        "renewal": identity.renewal,
    }


def header_to_json(header: Header) -> JsonObject:
    return {
        "src": identity_to_json(header.src),
        "src_incarnation": header.src_incarnation,
        "dst": identity_to_json(header.dst),
        "message": _message_to_json(header.message),
    }


def member_to_json(member: Member) -> JsonObject:
    return {
        "id": identity_to_json(member.id),
        "incarnation": member.incarnation,
        "state": _STATE_NAMES[member.state],
    }


def datagram_to_json(datagram: Datagram) -> JsonObject:
    updates = None
    if datagram.updates is not None:
        updates = [member_to_json(member) for member in datagram.updates]
    return {
        "header": header_to_json(datagram.header),
        "updates": updates,
        "broadcasts": [item.hex() for item in datagram.broadcasts],
    }


def _message_to_json(message: Message) -> JsonObject:
    value: JsonObject = {"type": MESSAGE_NAMES[type(message)]}
    match message:
        case Ping(probe_number=number) | Ack(probe_number=number):
            value["probe_number"] = number
        case (
            PingReq(target=target, probe_number=number)
            | IndirectAck(target=target, probe_number=number)
        ):
            value["target"] = identity_to_json(target)
            value["probe_number"] = number
        case (
            IndirectPing(origin=origin, probe_number=number)
            | ForwardedAck(origin=origin, probe_number=number)
        ):
            value["origin"] = identity_to_json(origin)
            value["probe_number"] = number
        case _:
            pass
    return value


def datagram_from_json(value: object, path: str = "datagram") -> Datagram:
    """Read the JSON form back, raising ValueError that names the offending path."""
    obj = _object(value, path)
    header = header_from_json(_field(obj, "header", path), f"{path}.header")
    updates_value = _field(obj, "updates", path)
    updates: tuple[Member, ...] | None = None
    if updates_value is not None:
        if not isinstance(updates_value, list):
            raise ValueError(f"{path}.updates: expected null or an array")
        updates = tuple(
            member_from_json(item, f"{path}.updates[{index}]")
            for index, item in enumerate(updates_value)
        )
    broadcasts_value = _field(obj, "broadcasts", path)
    if not isinstance(broadcasts_value, list):
        raise ValueError(f"{path}.broadcasts: expected an array of hex strings")
    broadcasts = tuple(
        _hex(item, f"{path}.broadcasts[{index}]")
        for index, item in enumerate(broadcasts_value)
    )
    return Datagram(header, updates, broadcasts)


def header_from_json(value: object, path: str = "header") -> Header:
    obj = _object(value, path)
    return Header(
        src=identity_from_json(_field(obj, "src", path), f"{path}.src"),
        src_incarnation=_int(obj, "src_incarnation", path, MAX_INCARNATION),
        dst=identity_from_json(_field(obj, "dst", path), f"{path}.dst"),
        message=_message_from_json(_field(obj, "message", path), f"{path}.message"),
    )


def member_from_json(value: object, path: str = "member") -> Member:
    obj = _object(value, path)
    state_name = _field(obj, "state", path)
    state = _STATES_BY_NAME.get(state_name) if isinstance(state_name, str) else None
    if state is None:
        raise ValueError(f'{path}.state: expected "alive", "suspect" or "down"')
    return Member(
        id=identity_from_json(_field(obj, "id", path), f"{path}.id"),
        incarnation=_int(obj, "incarnation", path, MAX_INCARNATION),
        state=state,
    )


def identity_from_json(value: object, path: str = "identity") -> Identity:
    obj = _object(value, path)
    addr_text = _field(obj, "addr", path)
    if not isinstance(addr_text, str):
        raise ValueError(f"{path}.addr: expected a string IP:PORT")
    try:
        addr = Address.parse(addr_text)
    except ValueError as exc:
        raise ValueError(f"{path}.addr: {exc}") from None
    return Identity(
        addr=addr,
        id=_hex(_field(obj, "id", path), f"{path}.id"),
        renewal=_int(obj, "renewal", path, 2**64 - 1),
    )


def _message_from_json(value: object, path: str) -> Message:
    obj = _object(value, path)
    kind = _field(obj, "type", path)
    if not isinstance(kind, str):
        raise ValueError(f"{path}.type: expected a string")
    if kind in _EMPTY_MESSAGES:
        return _EMPTY_MESSAGES[kind]
    if kind in _PROBE_MESSAGES:
        number = _int(obj, "probe_number", path, MAX_PROBE_NUMBER)
        return _PROBE_MESSAGES[kind](number)
    if kind in _TARGET_MESSAGES:
        target = identity_from_json(_field(obj, "target", path), f"{path}.target")
        number = _int(obj, "probe_number", path, MAX_PROBE_NUMBER)
        return _TARGET_MESSAGES[kind](target, number)
    if kind in _ORIGIN_MESSAGES:
        origin = identity_from_json(_field(obj, "origin", path), f"{path}.origin")
        number = _int(obj, "probe_number", path, MAX_PROBE_NUMBER)
        return _ORIGIN_MESSAGES[kind](origin, number)
    raise ValueError(f"{path}.type: unknown message type {kind!r}")


def _object(value: object, path: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return value


def _field(obj: dict[str, object], name: str, path: str) -> object:
    if name not in obj:
        raise ValueError(f"{path}.{name}: missing")
    return obj[name]


def _int(obj: dict[str, object], name: str, path: str, maximum: int) -> int:
    value = _field(obj, name, path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{path}.{name}: expected an integer from 0 to {maximum}")
    if not 0 <= value <= maximum:
        raise ValueError(f"{path}.{name}: {value} is outside 0 to {maximum}")
    return value


def _hex(value: object, path: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{path}: expected a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise ValueError(f"{path}: invalid hex {value!r}: {exc}") from None

# This file is generated from proto/swim.proto by grpcio-tools (pinned in
# pyproject.toml) with `python proto/generate.py`. Do not edit it.
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATE_ALIVE: _ClassVar[State]
    STATE_SUSPECT: _ClassVar[State]
    STATE_DOWN: _ClassVar[State]
STATE_ALIVE: State
STATE_SUSPECT: State
STATE_DOWN: State

class Address(_message.Message):
    __slots__ = ("ip", "port")
    IP_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    ip: bytes
    port: int
    def __init__(self, ip: _Optional[bytes] = ..., port: _Optional[int] = ...) -> None: ...

class Identity(_message.Message):
    __slots__ = ("id", "addr", "renewal")
    ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    RENEWAL_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    addr: Address
    renewal: int
    def __init__(self, id: _Optional[bytes] = ..., addr: _Optional[_Union[Address, _Mapping]] = ..., renewal: _Optional[int] = ...) -> None: ...

class Member(_message.Message):
    __slots__ = ("id", "incarnation", "state")
    ID_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    id: Identity
    incarnation: int
    state: State
    def __init__(self, id: _Optional[_Union[Identity, _Mapping]] = ..., incarnation: _Optional[int] = ..., state: _Optional[_Union[State, str]] = ...) -> None: ...

class Ping(_message.Message):
    __slots__ = ("probe_number",)
    PROBE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    probe_number: int
    def __init__(self, probe_number: _Optional[int] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("probe_number",)
    PROBE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    probe_number: int
    def __init__(self, probe_number: _Optional[int] = ...) -> None: ...

class PingReq(_message.Message):
    __slots__ = ("target", "probe_number")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PROBE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    target: Identity
    probe_number: int
    def __init__(self, target: _Optional[_Union[Identity, _Mapping]] = ..., probe_number: _Optional[int] = ...) -> None: ...

class IndirectPing(_message.Message):
    __slots__ = ("origin", "probe_number")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    PROBE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    origin: Identity
    probe_number: int
    def __init__(self, origin: _Optional[_Union[Identity, _Mapping]] = ..., probe_number: _Optional[int] = ...) -> None: ...

class IndirectAck(_message.Message):
    __slots__ = ("target", "probe_number")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PROBE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    target: Identity
    probe_number: int
    def __init__(self, target: _Optional[_Union[Identity, _Mapping]] = ..., probe_number: _Optional[int] = ...) -> None: ...

class ForwardedAck(_message.Message):
    __slots__ = ("origin", "probe_number")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    PROBE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    origin: Identity
    probe_number: int
    def __init__(self, origin: _Optional[_Union[Identity, _Mapping]] = ..., probe_number: _Optional[int] = ...) -> None: ...

class Announce(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Feed(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Gossip(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Broadcast(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TurnUndead(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Header(_message.Message):
    __slots__ = ("src", "src_incarnation", "dst", "ping", "ack", "ping_req", "indirect_ping", "indirect_ack", "forwarded_ack", "announce", "feed", "gossip", "broadcast", "turn_undead")
    SRC_FIELD_NUMBER: _ClassVar[int]
    SRC_INCARNATION_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    PING_REQ_FIELD_NUMBER: _ClassVar[int]
    INDIRECT_PING_FIELD_NUMBER: _ClassVar[int]
    INDIRECT_ACK_FIELD_NUMBER: _ClassVar[int]
    FORWARDED_ACK_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCE_FIELD_NUMBER: _ClassVar[int]
    FEED_FIELD_NUMBER: _ClassVar[int]
    GOSSIP_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    TURN_UNDEAD_FIELD_NUMBER: _ClassVar[int]
    src: Identity
    src_incarnation: int
    dst: Identity
    ping: Ping
    ack: Ack
    ping_req: PingReq
    indirect_ping: IndirectPing
    indirect_ack: IndirectAck
    forwarded_ack: ForwardedAck
    announce: Announce
    feed: Feed
    gossip: Gossip
    broadcast: Broadcast
    turn_undead: TurnUndead
    def __init__(self, src: _Optional[_Union[Identity, _Mapping]] = ..., src_incarnation: _Optional[int] = ..., dst: _Optional[_Union[Identity, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., ping_req: _Optional[_Union[PingReq, _Mapping]] = ..., indirect_ping: _Optional[_Union[IndirectPing, _Mapping]] = ..., indirect_ack: _Optional[_Union[IndirectAck, _Mapping]] = ..., forwarded_ack: _Optional[_Union[ForwardedAck, _Mapping]] = ..., announce: _Optional[_Union[Announce, _Mapping]] = ..., feed: _Optional[_Union[Feed, _Mapping]] = ..., gossip: _Optional[_Union[Gossip, _Mapping]] = ..., broadcast: _Optional[_Union[Broadcast, _Mapping]] = ..., turn_undead: _Optional[_Union[TurnUndead, _Mapping]] = ...) -> None: ...

class KeyedBroadcast(_message.Message):
    __slots__ = ("key", "version", "data")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    key: str
    version: int
    data: bytes
    def __init__(self, key: _Optional[str] = ..., version: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

"""swim_py: SWIM membership in pure Python, wire-compatible with foca 1.0.

The protocol core (``swim_py.core.SwimCore``) is sans-IO: bytes and timer
events in, datagrams, timer requests and notifications out. ``Swim`` runs it
on asyncio with a UDP transport and a discovery plug-in.
"""

from swim_py.aio import Event, EventKind, Swim
from swim_py.broadcast import BroadcastHandler
from swim_py.codec import Codec, ProtobufCodec
from swim_py.config import Config, PeriodicParams
from swim_py.discovery import Discovery, StaticDiscovery
from swim_py.errors import SwimError
from swim_py.identity import Address, Identity
from swim_py.keyed_broadcast import KeyedBroadcastHandler, KeyedItem
from swim_py.payload import Member, State
from swim_py.transport import AsyncIoUdpTransport, Transport

__version__ = "0.1.0"

__all__ = [
    "Address",
    "AsyncIoUdpTransport",
    "BroadcastHandler",
    "Codec",
    "Config",
    "Discovery",
    "Event",
    "EventKind",
    "Identity",
    "KeyedBroadcastHandler",
    "KeyedItem",
    "Member",
    "PeriodicParams",
    "ProtobufCodec",
    "StaticDiscovery",
    "State",
    "Swim",
    "SwimError",
    "Transport",
    "__version__",
]

"""UDP transport for the asyncio driver."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Protocol

from swim_py.identity import Address

logger = logging.getLogger(__name__)

DatagramHandler = Callable[[bytes, Address], None]

# Socket addresses converted to Address and back. Building an Address from
# a socket address, and back, runs ipaddress code that costs more than
# handling a typical datagram. The caches are shared by every transport of
# the process, since the values are immutable. A full cache is emptied,
# which bounds the memory that datagrams from many sources can take.
_MAX_CACHED_ADDRESSES = 4096
_addresses: dict[tuple[object, ...], Address] = {}
_sockaddrs: dict[Address, tuple[str, int]] = {}


def _to_sockaddr(addr: Address) -> tuple[str, int]:
    sockaddr = _sockaddrs.get(addr)
    if sockaddr is None:
        if len(_sockaddrs) >= _MAX_CACHED_ADDRESSES:
            _sockaddrs.clear()
        sockaddr = _sockaddrs[addr] = addr.to_sockaddr()
    return sockaddr


def _from_sockaddr(sockaddr: tuple[object, ...]) -> Address:
    addr = _addresses.get(sockaddr)
    if addr is None:
        if len(_addresses) >= _MAX_CACHED_ADDRESSES:
            _addresses.clear()
        addr = _addresses[sockaddr] = Address.from_sockaddr(sockaddr)
    return addr


class Transport(Protocol):
    """The datagram transport interface that ``Swim`` drives."""

    @property
    def local_address(self) -> Address: ...

    def set_receiver(self, handler: DatagramHandler | None) -> None: ...

    def send(self, data: bytes, addr: Address) -> None: ...


class AsyncIoUdpTransport:
    """One UDP socket on the running asyncio loop.

    ``bind`` is the local address to bind, ``"0.0.0.0:0"`` style text, a
    ``(host, port)`` tuple or an ``Address``; port 0 lets the OS choose.
    Call ``await start()`` before handing the transport to ``Swim``.
    """

    def __init__(self, bind: str | tuple[str, int] | Address = "127.0.0.1:0") -> None:
        self._bind = _to_address(bind)
        self._transport: asyncio.DatagramTransport | None = None
        self._receiver: DatagramHandler | None = None
        self._local: Address | None = None
        self.send_errors = 0

    async def start(self) -> None:
        """Bind the socket; raise OSError naming the address when that fails."""
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if self._bind.ip.version == 6 else socket.AF_INET
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Protocol(self),
                local_addr=self._bind.to_sockaddr(),
                family=family,
            )
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"failed to bind UDP socket on {self._bind}: {exc.strerror}"
                " (is another process using that port?)",
            ) from exc
        self._transport = transport
        self._local = Address.from_sockaddr(transport.get_extra_info("sockname"))
        logger.info("udp transport bound local=%s", self._local)

    @property
    def local_address(self) -> Address:
        """The bound address; raises RuntimeError before ``start()``."""
        if self._local is None:
            raise RuntimeError(
                "AsyncIoUdpTransport is not started: await start() first"
            )
        return self._local

    def set_receiver(self, handler: DatagramHandler | None) -> None:
        """Route every received datagram to ``handler``; None drops them."""
        self._receiver = handler

    def send(self, data: bytes, addr: Address) -> None:
        """Queue one datagram. A closed transport counts the send as an error."""
        if self._transport is None or self._transport.is_closing():
            self.send_errors += 1
            return
        self._transport.sendto(data, _to_sockaddr(addr))

    def close(self) -> None:
        """Close the socket. A closed transport can be started again."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
            logger.info("udp transport closed local=%s", self._local)

    def _deliver(self, data: bytes, sockaddr: tuple[object, ...]) -> None:
        handler = self._receiver
        if handler is not None:
            handler(data, _from_sockaddr(sockaddr))


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: AsyncIoUdpTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: tuple[object, ...]) -> None:
        self._owner._deliver(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port-unreachable from a dead peer shows up here on Linux; the
        # failure detector handles dead peers, so this is only counted.
        self._owner.send_errors += 1
        logger.debug("udp error received error=%s", exc)


def _to_address(value: str | tuple[str, int] | Address) -> Address:
    if isinstance(value, Address):
        return value
    if isinstance(value, tuple):
        return Address.parse(f"[{value[0]}]:{value[1]}")
    return Address.parse(value)

"""Member identities: an address, an opaque id and a renewal counter."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_RENEWAL = 2**64 - 1


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """A UDP socket address: an IPv4 or IPv6 address and a port."""

    ip: IPAddress
    port: int

    def __post_init__(self) -> None:
        if not isinstance(self.ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            raise TypeError(f"Address.ip must be an ipaddress object, got {self.ip!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"invalid port {self.port}: expected 0 to 65535")

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse ``IP:PORT`` or ``[IPv6]:PORT``; raise ValueError naming the text."""
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(
                f"invalid address {text!r}: expected IP:PORT or [IPv6]:PORT"
            )
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            ip = ipaddress.ip_address(host)
            port = int(port_text)
        except ValueError as exc:
            raise ValueError(
                f"invalid address {text!r}: expected IP:PORT or [IPv6]:PORT ({exc})"
            ) from None
        return cls(ip, port)

    @classmethod
    def from_sockaddr(cls, sockaddr: tuple[object, ...]) -> Address:
        """Build an Address from a ``socket`` address tuple."""
        return cls(ipaddress.ip_address(str(sockaddr[0])), int(str(sockaddr[1])))

    def to_sockaddr(self) -> tuple[str, int]:
        """Return the ``(host, port)`` tuple that ``socket.sendto`` takes."""
        return (str(self.ip), self.port)

    def __str__(self) -> str:
        if self.ip.version == 6:
            return f"[{self.ip}]:{self.port}"
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True, slots=True)
class Identity:
    """A member's identity as it travels on the wire.

    ``addr`` is the conflict key: a cluster keeps at most one member per
    address, and when two identities share one, the larger ``renewal`` wins.
    """

    addr: Address
    id: bytes = b""
    renewal: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.renewal <= MAX_RENEWAL:
            raise ValueError(f"invalid renewal {self.renewal}: expected a u64")

    def renew(self) -> Identity | None:
        """Return this identity with ``renewal + 1``, or None at the u64 limit."""
        if self.renewal == MAX_RENEWAL:
            return None
        return Identity(self.addr, self.id, self.renewal + 1)

    def win_addr_conflict(self, other: Identity) -> bool:
        """Return True when this identity replaces ``other`` at the same address."""
        return self.renewal > other.renewal

    def __str__(self) -> str:
        if self.id:
            return f"{self.id.hex()}@{self.addr}#{self.renewal}"
        return f"{self.addr}#{self.renewal}"


@dataclass(frozen=True, slots=True)
class SocketAddrIdentity(Identity):
    """An identity that is only its address, like foca's ``SocketAddr`` identity.

    ``id`` is always empty and ``renewal`` always 0. It cannot renew, so a
    node declared Down goes undead instead of rejoining. An instance never
    equals a plain ``Identity`` with the same fields, because dataclass
    equality compares the class too.
    """

    def __post_init__(self) -> None:
        Identity.__post_init__(self)
        if self.id or self.renewal:
            raise ValueError(
                f"SocketAddrIdentity takes only an address, got id={self.id!r}"
                f" renewal={self.renewal}: use Identity for those fields"
            )

    def renew(self) -> Identity | None:
        """Return None: an address-only identity has no successor."""
        return None

    def win_addr_conflict(self, other: Identity) -> bool:
        """Return False.

        Two SocketAddrIdentity values with one address are equal, so the core
        calls this only when an identity of another class shares the address.
        An update with that identity then replaces a stored SocketAddrIdentity.
        """
        return False

    def __str__(self) -> str:
        return str(self.addr)

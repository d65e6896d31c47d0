"""Member identities: an address, an opaque id and a renewal counter."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_RENEWAL = 2**64 - 1


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """A UDP socket address: an IPv4 or IPv6 address and a port.

    The hash is computed once at construction, because hashing an
    ``ipaddress`` object runs Python code and the core hashes addresses for
    every update it applies.
    """

    ip: IPAddress
    port: int
    _hash: int = field(init=False, repr=False, compare=False)
    # (IP version, IP as an int, port): equal exactly when ip and port are,
    # and compared without calling Python code.
    _key: tuple[int, int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            raise TypeError(f"Address.ip must be an ipaddress object, got {self.ip!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"invalid port {self.port}: expected 0 to 65535")
        object.__setattr__(self, "_hash", hash((self.ip, self.port)))
        object.__setattr__(self, "_key", (self.ip.version, int(self.ip), self.port))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        # Equal to what the generated method returns: same class, ip and
        # port. The hashes differ for most unequal pairs, which ends early.
        if self is other:
            return True
        if not isinstance(other, Address) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._hash == other._hash and self._key == other._key

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
    # Computed once, as for Address: identities key the core's lookups.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.renewal <= MAX_RENEWAL:
            raise ValueError(f"invalid renewal {self.renewal}: expected a u64")
        object.__setattr__(self, "_hash", hash((self.addr, self.id, self.renewal)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        # Equal to the generated method: same class and fields. Identities of
        # different classes never compare equal, as dataclasses do.
        if self is other:
            return True
        if not isinstance(other, Identity) or other.__class__ is not self.__class__:
            return NotImplemented
        return (
            self._hash == other._hash
            and self.renewal == other.renewal
            and self.id == other.id
            and self.addr._key == other.addr._key
            and self.addr.__class__ is other.addr.__class__
        )

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

    # Keep the base class's cached hash and fast equality: the dataclass
    # decorator would generate slower ones for this subclass.
    __hash__ = Identity.__hash__
    __eq__ = Identity.__eq__

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

"""IPv4 address management for ports.

The database's unique (network, address) constraint is what makes two
concurrent requests unable to get the same address; this module only picks
candidates and validates user choices.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Iterator


class AddressError(ValueError):
    """A requested address is unusable; the message says why."""


def usable_hosts(cidr4: str) -> Iterator[ipaddress.IPv4Address]:
    return ipaddress.IPv4Network(cidr4).hosts()


def check_static(cidr4: str, address: str, taken: Iterable[str]) -> str:
    """Validate a user-chosen address for a port in ``cidr4``."""
    net = ipaddress.IPv4Network(cidr4)
    try:
        ip = ipaddress.IPv4Address(address)
    except ipaddress.AddressValueError:
        raise AddressError(f"{address!r} is not an IPv4 address") from None
    if ip not in net:
        raise AddressError(f"{ip} is outside the network {net}")
    if ip in (net.network_address, net.broadcast_address):
        raise AddressError(f"{ip} is the network or broadcast address of {net}")
    if str(ip) in set(taken):
        raise AddressError(f"{ip} is already taken in {net}")
    return str(ip)


def candidates(cidr4: str, taken: Iterable[str], *, limit: int = 64) -> list[str]:
    """The lowest free addresses, in order; callers insert and retry on conflict."""
    used = set(taken)
    out: list[str] = []
    for ip in usable_hosts(cidr4):
        if str(ip) not in used:
            out.append(str(ip))
            if len(out) >= limit:
                break
    return out


def check_extra(address: str) -> str:
    """An extra allowed address (floating IP): an IPv4/IPv6 host or prefix."""
    try:
        return str(ipaddress.ip_network(address, strict=True))
    except ValueError as exc:
        raise AddressError(f"{address!r} is not an IP address or prefix: {exc}") from None


def port_mac(port_id: str, attempt: int = 0) -> str:
    """A stable, locally administered unicast MAC derived from the port id."""
    digest = hashlib.sha256(f"{port_id}/{attempt}".encode()).digest()
    octets = [0x02, *digest[:5]]  # 0x02: locally administered, unicast
    return ":".join(f"{b:02x}" for b in octets)

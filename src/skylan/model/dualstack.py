"""A port's IPv6 address, from its IPv4 one: the network's IPv6 prefix with
the IPv4 address's host part (172.16.1.5 in 172.16.1.0/24 with fd00:1::/64
is fd00:1::5). Unique because the IPv4 addresses are, stable for as long as
the port keeps its address, and nothing to allocate or store: a network with
an IPv6 prefix gives every member an IPv6 address without a manual step."""

from __future__ import annotations

import ipaddress


def fits(cidr4: str, cidr6: str) -> bool:
    """Whether every host of ``cidr4`` has its place in ``cidr6``."""
    return ipaddress.IPv6Network(cidr6).num_addresses >= ipaddress.IPv4Network(cidr4).num_addresses


def address_of(cidr4: str, cidr6: str | None, ipv4: str, static: str | None) -> str | None:
    """A port's IPv6 address: its static one while the prefix holds it, else
    the derived one; None when the network has no IPv6 prefix."""
    if cidr6 is None:
        return None
    if static is not None and ipaddress.IPv6Address(static) in ipaddress.IPv6Network(cidr6):
        return static
    return port_ipv6(cidr4, ipv4, cidr6)


def port_ipv6(cidr4: str, ipv4: str, cidr6: str) -> str:
    net4, net6 = ipaddress.IPv4Network(cidr4), ipaddress.IPv6Network(cidr6)
    host = int(ipaddress.IPv4Address(ipv4)) - int(net4.network_address)
    if not 0 <= host < net6.num_addresses:
        raise ValueError(f"{ipv4} has no place in {cidr6}")
    return str(net6.network_address + host)

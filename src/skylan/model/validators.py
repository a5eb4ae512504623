"""Field validators shared by the request models of the controller's APIs
(:mod:`skylan.model.requests`, :mod:`skylan.model.agentapi`)."""

from __future__ import annotations

import ipaddress

from skylan.model import dnsnames
from skylan.model.names import Kind, identifier


def name(value: str) -> str:
    """Networks, nodes, hostnames and API tokens."""
    return identifier(value, Kind.NAME)


def optional_name(value: str | None) -> str | None:
    return None if value is None else name(value)


def cidr4(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ipaddress.AddressValueError:
        raise ValueError(f"{value!r} is not an IPv4 network like 172.16.1.0/24") from None
    except ValueError as exc:
        raise ValueError(f"{value!r}: {exc}") from None
    if net.prefixlen > 30:
        raise ValueError("an IPv4 network needs a prefix of /30 or shorter (room for hosts)")
    return str(net)


def cidr6(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        net = ipaddress.IPv6Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv6 network: {exc}") from None
    if net.prefixlen > 120:
        raise ValueError("an IPv6 network needs a prefix of /120 or shorter")
    return str(net)


def optional_ipv6(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.IPv6Address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv6 address") from None


def any_prefix(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IP prefix: {exc}") from None


def endpoint(value: str) -> str:
    """``host:port`` for IPv4, ``[addr]:port`` for IPv6."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not an endpoint like 198.51.100.7:51820")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError(f"{value!r}: {host!r} is not an IP address") from None
    return value


def optional_dns_domain(value: str | None) -> str | None:
    return None if value is None else dnsnames.dns_name(value, "dns_domain")


def tag(value: str) -> str:
    return identifier(value, Kind.TAG)


def extra_ips(values: list[str] | None) -> list[str] | None:
    """Floating addresses a port may also use: IPv4/IPv6 hosts or prefixes,
    normalised and without duplicates."""
    if values is None:
        return None
    out = []
    for value in values:
        try:
            out.append(str(ipaddress.ip_network(value, strict=True)))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP address or prefix: {exc}") from None
    return list(dict.fromkeys(out))


def endpoints(values: list[str] | None) -> list[str] | None:
    return None if values is None else [endpoint(e) for e in values]


def all_parse(values: list[str], parse: object, what: str) -> list[str]:
    """``values`` if ``parse`` accepts each, else a ValueError naming the first bad one."""
    assert callable(parse)
    for v in values:
        try:
            parse(v)
        except ValueError:
            raise ValueError(f"{v!r} is not {what}") from None
    return values

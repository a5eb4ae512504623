"""An IP address in 16 bytes on the wire (IPv4 as IPv4-mapped IPv6), as the
reflexive-address and relay answers carry the address they saw."""

from __future__ import annotations

import ipaddress


def pack_ip(host: str) -> bytes:
    """ValueError for anything that is not an IP address."""
    ip = ipaddress.ip_address(host)
    return ip.packed if ip.version == 6 else ipaddress.IPv6Address(f"::ffff:{ip}").packed


def unpack_ip(packed: bytes) -> str:
    ip = ipaddress.IPv6Address(packed)
    return str(ip.ipv4_mapped) if ip.ipv4_mapped is not None else str(ip)

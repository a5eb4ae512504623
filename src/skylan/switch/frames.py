"""Just enough Ethernet and ARP parsing for switching decisions.

Parsers never raise on short or odd frames: a frame too short to switch is
reported as such and dropped by the caller with a counter.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

ETH_HEADER = 14
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = 0x8100
BROADCAST = b"\xff" * 6
_ARP = struct.Struct("!HHBBH6s4s6s4s")  # htype ptype hlen plen op sha spa tha tpa
ARP_REQUEST = 1
ARP_REPLY = 2


def is_multicast(mac: bytes) -> bool:
    """Broadcast is a multicast address too (the group bit is set)."""
    return bool(mac[0] & 1)


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def mac_bytes(text: str) -> bytes:
    raw = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"{text!r} is not a MAC address")
    return raw


@dataclass(frozen=True)
class Arp:
    op: int
    sender_mac: bytes
    sender_ip: bytes
    target_mac: bytes
    target_ip: bytes

    @property
    def gratuitous(self) -> bool:
        """An announcement (who-has my own address, or an unsolicited reply)."""
        return self.sender_ip == self.target_ip or self.op == ARP_REPLY


def parse_arp(frame: bytes | memoryview) -> Arp | None:
    """The ARP payload of an IPv4-over-Ethernet ARP frame, else None."""
    if len(frame) < ETH_HEADER + _ARP.size:
        return None
    if int.from_bytes(frame[12:14], "big") != ETHERTYPE_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(frame, ETH_HEADER)
    if (htype, ptype, hlen, plen) != (1, ETHERTYPE_IPV4, 6, 4):
        return None
    if op not in (ARP_REQUEST, ARP_REPLY):
        return None
    return Arp(op, sha, spa, tha, tpa)


def arp_reply(request: Arp, answer_mac: bytes) -> bytes:
    """The reply the owner of ``request.target_ip`` would send."""
    eth = request.sender_mac + answer_mac + ETHERTYPE_ARP.to_bytes(2, "big")
    return eth + _ARP.pack(
        1,
        ETHERTYPE_IPV4,
        6,
        4,
        ARP_REPLY,
        answer_mac,
        request.target_ip,
        request.sender_mac,
        request.sender_ip,
    )

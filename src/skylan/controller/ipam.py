"""IPv4 address management for ports.

The database's unique (network, address) constraint is what makes two
concurrent requests unable to get the same address; this module only picks
candidates and validates user choices. :class:`AddressPool` keeps a network's
taken addresses so that the next free one is found without scanning the
network: enrolment costs the same at the 10,000th node as at the first.
:class:`Claims` keeps concurrent transactions of one process (PostgreSQL's
write slots) from trying the same candidates: without it, each waits on the
other's uncommitted row for the same address and then moves on to the next,
which the other took too.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
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
    pool = AddressPool(cidr4)
    for ip in taken:
        pool.take(ip)
    return pool.candidates(limit)


CHUNK_BITS = 12  # a bitmap chunk covers 4,096 addresses in 512 bytes


class AddressPool:
    """One network's addresses: which are taken, and the lowest that may be free.

    A low-water mark below which every address is taken moves up as addresses
    are taken in order (and back down when one below it is released), so
    handing out addresses in order costs O(1) each, not O(taken). Taken
    addresses are bits in chunks made as the first address in them is taken:
    a set of ints cost about 100 bytes an address, on every replica, and a
    bitmap of the whole network would cost 2 MiB for a /8 with two nodes.
    ``candidates`` only reads: the service layer asks from worker threads,
    while only the event loop takes and releases.
    """

    def __init__(self, cidr4: str) -> None:
        net = ipaddress.IPv4Network(cidr4)
        self._first = int(net.network_address) + (1 if net.prefixlen < 31 else 0)
        self._last = int(net.broadcast_address) - (1 if net.prefixlen < 31 else 0)
        self._chunks: dict[int, bytearray] = {}
        self._count = 0
        self._low = self._first  # every address below it is taken

    @staticmethod
    def _bit(ip: int) -> tuple[int, int, int]:
        """Where an address's bit is: its chunk, the byte in it, the mask."""
        offset = ip & ((1 << CHUNK_BITS) - 1)
        return ip >> CHUNK_BITS, offset >> 3, 1 << (offset & 7)

    def _has(self, ip: int) -> bool:
        key, byte, mask = self._bit(ip)
        chunk = self._chunks.get(key)
        return chunk is not None and bool(chunk[byte] & mask)

    def take(self, address: str) -> None:
        ip = int(ipaddress.IPv4Address(address))
        if self._has(ip):
            return
        key, byte, mask = self._bit(ip)
        chunk = self._chunks.get(key)
        if chunk is None:
            chunk = self._chunks[key] = bytearray(1 << (CHUNK_BITS - 3))
        chunk[byte] |= mask
        self._count += 1
        while self._has(self._low):
            self._low += 1

    def release(self, address: str) -> None:
        ip = int(ipaddress.IPv4Address(address))
        if not self._has(ip):
            return
        key, byte, mask = self._bit(ip)
        chunk = self._chunks[key]
        chunk[byte] &= ~mask & 0xFF
        self._count -= 1
        if not any(chunk):
            del self._chunks[key]
        if ip < self._low:
            self._low = max(ip, self._first)

    def __contains__(self, address: str) -> bool:
        return self._has(int(ipaddress.IPv4Address(address)))

    def __len__(self) -> int:
        return self._count

    def candidates(self, limit: int = 64) -> list[str]:
        """The lowest free addresses, in order (at most ``limit``)."""
        ip = self._low
        out: list[str] = []
        while ip <= self._last and len(out) < limit:
            if not self._has(ip):
                out.append(str(ipaddress.IPv4Address(ip)))
            ip += 1
        return out


HANDED_OUT = "skylan_handed_out"  # Session.info: network id -> addresses a transaction claimed


class Claims:
    """Addresses handed out by transactions not yet visible in the pools,
    per network. Thread-safe: the transactions run in worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claimed: dict[str, set[str]] = {}

    def claim(self, net_id: str, address: str) -> bool:
        """Ours to try, unless another transaction is trying it."""
        with self._lock:
            claimed = self._claimed.setdefault(net_id, set())
            if address in claimed:
                return False
            claimed.add(address)
            return True

    def release(self, handed: dict[str, set[str]]) -> None:
        """The transaction that claimed these is over (and the pools show what
        it committed)."""
        with self._lock:
            for net_id, addresses in handed.items():
                claimed = self._claimed.get(net_id)
                if claimed is not None:
                    claimed -= addresses
                    if not claimed:
                        del self._claimed[net_id]

    def __len__(self) -> int:
        with self._lock:
            return sum(len(c) for c in self._claimed.values())


def port_mac(port_id: str, attempt: int = 0) -> str:
    """A stable, locally administered unicast MAC derived from the port id."""
    digest = hashlib.sha256(f"{port_id}/{attempt}".encode()).digest()
    octets = [0x02, *digest[:5]]  # 0x02: locally administered, unicast
    return ":".join(f"{b:02x}" for b in octets)

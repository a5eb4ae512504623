"""What a node's agent last said of itself: when it was seen, its uptime,
interfaces, and the addresses it announced.

This is the part of the state that changes on every heartbeat, so it is kept
apart from the records: heartbeats update it in memory, and it is written to
the database in batches (:mod:`skylan.controller.service.agents`). The lists
are kept as the JSON they arrived as, which is also how the database stores
them, parsed only when a page shows them, and deflated (:func:`pack`).

A node's tunnel list is not kept here: it grows with the network (20 tunnels:
3 KiB of JSON, 0.9 KiB deflated), only a node's page shows it, and every
replica would hold every node's. Its home is the database; here is only its
digest, to know whether a heartbeat changed it.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any, TypeVar, cast


def pack(raw: bytes) -> bytes:
    """JSON as kept in memory: raw deflate, fast level (the same JSON always
    packs the same, so packed forms compare as the JSON does)."""
    packer = zlib.compressobj(1, zlib.DEFLATED, -15)
    return packer.compress(raw) + packer.flush()


def unpack(packed: bytes) -> bytes:
    return zlib.decompress(packed, -15)


def digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=8).digest()


_T = TypeVar("_T", str, bytes)
SHARED_MAX = 1024  # distinct values kept in the table of shared ones
_shared: dict[str | bytes, str | bytes] = {}


def shared(value: _T) -> _T:
    """One copy of a value that many nodes report alike (their OS, agent
    version, the floating IPs they see: usually none), instead of one per
    node on every replica. The table is bounded: once it holds
    ``SHARED_MAX`` values, new ones are kept as they are, so an agent
    reporting a new value on every heartbeat costs nothing lasting."""
    kept = _shared.get(value)
    if kept is not None:
        return cast(_T, kept)
    if len(_shared) < SHARED_MAX:
        _shared[value] = value
    return value


def pack_shared(raw: bytes) -> bytes:
    """:func:`pack`, for a report many nodes send alike (the floating IPs
    they see: usually none)."""
    return shared(pack(raw))


EMPTY_LIST = pack(b"[]")
EMPTY_MAP = pack(b"{}")
NO_TUNNELS = digest(b"[]")
ONLINE_WINDOW_S = 45.0  # three missed 15-second heartbeats


@dataclass(slots=True)
class Liveness:
    last_seen: float | None = None  # unix time of the last heartbeat
    started_at: float | None = None  # unix time the agent started
    os: str = ""
    agent_version: str = ""
    interfaces: bytes = EMPTY_LIST  # packed JSON list of InterfaceReport
    tunnels: bytes = NO_TUNNELS  # digest of the JSON list of PeerStatusReport
    seen_ips: bytes = EMPTY_MAP  # packed JSON {network id: [IPv4, ...]}

    def newer_than(self, other: Liveness) -> bool:
        return (self.last_seen or 0.0) > (other.last_seen or 0.0)

    def interface_list(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(unpack(self.interfaces))
        return found

    def seen_map(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = json.loads(unpack(self.seen_ips))
        return found

    def online(self, now: float) -> bool:
        return self.last_seen is not None and now - self.last_seen < ONLINE_WINDOW_S

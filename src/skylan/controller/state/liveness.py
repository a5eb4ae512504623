"""What a node's agent last said of itself: when it was seen, its uptime,
interfaces, tunnels and the addresses it announced.

This is the part of the state that changes on every heartbeat, so it is kept
apart from the records: heartbeats update it in memory, and it is written to
the database in batches (:mod:`skylan.controller.service.agents`). The lists
are kept as the JSON they arrived as, which is also how the database stores
them: compact, and parsed only when a page shows them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

EMPTY_LIST = b"[]"
EMPTY_MAP = b"{}"
ONLINE_WINDOW_S = 45.0  # three missed 15-second heartbeats


@dataclass(slots=True)
class Liveness:
    last_seen: float | None = None  # unix time of the last heartbeat
    started_at: float | None = None  # unix time the agent started
    os: str = ""
    agent_version: str = ""
    interfaces: bytes = EMPTY_LIST  # JSON list of InterfaceReport
    peers: bytes = EMPTY_LIST  # JSON list of PeerStatusReport
    seen_ips: bytes = EMPTY_MAP  # JSON {network id: [IPv4, ...]}

    def newer_than(self, other: Liveness) -> bool:
        return (self.last_seen or 0.0) > (other.last_seen or 0.0)

    def interface_list(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self.interfaces)
        return found

    def peer_list(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self.peers)
        return found

    def seen_map(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = json.loads(self.seen_ips)
        return found

    def online(self, now: float) -> bool:
        return self.last_seen is not None and now - self.last_seen < ONLINE_WINDOW_S

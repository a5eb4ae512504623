"""The forwarding database: which peer a MAC address lives behind.

Two kinds of entries:

* **static**, from the netmap: each port's MAC belongs to its node. A frame
  from another peer claiming that MAC as its source is dropped and counted
  (``mac_spoof``): a node cannot impersonate another node's port.
* **learned**, from authenticated frames: any other source MAC (a VRRP
  virtual MAC, a VM or container bridged behind a node) is bound to the peer
  it last came from, so a gratuitous ARP moves traffic at once; entries age
  out after ``ttl`` seconds of silence.
"""

from __future__ import annotations

from dataclasses import dataclass

LOCAL = ""  # the peer id of this node itself


@dataclass
class _Learned:
    peer: str
    seen: float


class Fdb:
    def __init__(self, ttl: float = 300.0, max_learned: int = 65536) -> None:
        self.ttl = ttl
        self.max_learned = max_learned
        self.static: dict[bytes, str] = {}
        self.learned: dict[bytes, _Learned] = {}

    def set_static(self, entries: dict[bytes, str]) -> None:
        self.static = dict(entries)
        for mac in entries:
            self.learned.pop(mac, None)

    def lookup(self, mac: bytes, now: float) -> str | None:
        peer = self.static.get(mac)
        if peer is not None:
            return peer
        entry = self.learned.get(mac)
        if entry is None:
            return None
        if now - entry.seen > self.ttl:
            del self.learned[mac]
            return None
        return entry.peer

    def learn(self, mac: bytes, peer: str, now: float) -> bool:
        """Record that ``mac`` is behind ``peer``; False if that is a spoof."""
        owner = self.static.get(mac)
        if owner is not None:
            return owner == peer
        if mac not in self.learned and len(self.learned) >= self.max_learned:
            self.expire(now)
            if len(self.learned) >= self.max_learned:
                oldest = min(self.learned, key=lambda m: self.learned[m].seen)
                del self.learned[oldest]
        self.learned[mac] = _Learned(peer, now)
        return True

    def forget_peer(self, peer: str) -> None:
        for mac in [m for m, e in self.learned.items() if e.peer == peer]:
            del self.learned[mac]

    def expire(self, now: float) -> None:
        for mac in [m for m, e in self.learned.items() if now - e.seen > self.ttl]:
            del self.learned[mac]

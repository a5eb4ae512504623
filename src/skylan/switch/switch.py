"""One virtual network's switch on one node (sans-I/O).

The node's TAP device is the local port; every other member is a remote port
reached through the tunnel. Decisions only — the data plane does the I/O:

* :meth:`Switch.from_local` — a frame read from the TAP: to which peers?
  Known unicast goes to its one peer; broadcast, multicast and unknown
  unicast are replicated to every peer (head-end replication), within the
  port's storm limit. ARP requests for addresses the controller knows may be
  answered locally (ARP suppression); gratuitous ARP is always flooded.
* :meth:`Switch.from_peer` — an authenticated frame from a peer: deliver it
  to the TAP? Only if the peer is a member of this network, its source MAC
  is not another node's, and the frame is for us (our MAC, a MAC we
  answer for, or multicast).

The switch also remembers which IPv4 addresses its own machine announced by
ARP (:meth:`Switch.announced`): a keepalived VIP or any other floating
address shows up there, so the console can say who holds it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from skylan.model.counters import DropCounters
from skylan.switch.fdb import LOCAL, Fdb
from skylan.switch.frames import ETH_HEADER, ETHERTYPE_ARP, arp_reply, is_multicast, parse_arp
from skylan.switch.stormbucket import StormBucket


@dataclass(frozen=True)
class Member:
    """A port of this network: its node (peer id), MAC and primary IPv4."""

    peer: str
    mac: bytes
    ipv4: bytes | None = None  # 4 bytes, for ARP suppression


@dataclass
class LocalDecision:
    peers: list[str] = field(default_factory=list)  # where to send the frame
    reply: bytes | None = None  # a frame to write back to the TAP instead
    flooded: bool = False


class Switch:
    def __init__(
        self,
        *,
        local_mac: bytes,
        storm_pps: int,
        now: float,
        arp_suppression: bool = False,
        fdb_ttl: float = 300.0,
    ) -> None:
        self.local_mac = local_mac
        self.storm_pps = storm_pps
        self.arp_suppression = arp_suppression
        self.fdb = Fdb(fdb_ttl)
        self.drops = DropCounters()
        self.members: dict[str, Member] = {}
        self._arp_table: dict[bytes, bytes] = {}
        self._local_storm = StormBucket(storm_pps, now)
        self._peer_storm: dict[str, StormBucket] = {}
        self._announced: dict[bytes, float] = {}  # sender IPv4 -> last seen

    def set_members(self, members: list[Member], now: float) -> None:
        """Apply the netmap: the remote ports and their static MACs."""
        self.members = {m.peer: m for m in members if m.peer != LOCAL}
        static = {m.mac: m.peer for m in self.members.values()}
        static[self.local_mac] = LOCAL
        self.fdb.set_static(static)
        self._arp_table = {m.ipv4: m.mac for m in self.members.values() if m.ipv4}
        for gone in set(self._peer_storm) - set(self.members):
            del self._peer_storm[gone]
            self.fdb.forget_peer(gone)
        for peer in self.members:
            self._peer_storm.setdefault(peer, StormBucket(self.storm_pps, now))

    def set_storm_limit(self, pps: int, now: float) -> None:
        self.storm_pps = pps
        self._local_storm = StormBucket(pps, now)
        self._peer_storm = {p: StormBucket(pps, now) for p in self.members}

    # -- frames from our TAP ----------------------------------------------------

    MAX_ANNOUNCED = 64

    def _note_announcement(self, frame: bytes | memoryview, now: float) -> None:
        arp = parse_arp(frame)
        if arp is None or arp.sender_ip == b"\0\0\0\0":  # probes carry no address
            return
        if arp.sender_ip not in self._announced and len(self._announced) >= self.MAX_ANNOUNCED:
            del self._announced[min(self._announced, key=self._announced.__getitem__)]
        self._announced[arp.sender_ip] = now

    def announced(self, now: float, max_age: float = 300.0) -> list[str]:
        """IPv4 addresses this machine answered or announced by ARP recently."""
        fresh = sorted(ip for ip, t in self._announced.items() if now - t <= max_age)
        return [str(ipaddress.IPv4Address(ip)) for ip in fresh]

    def from_local(self, frame: bytes | memoryview, now: float) -> LocalDecision:
        if len(frame) < ETH_HEADER:
            self.drops.add("runt")
            return LocalDecision()
        dst = bytes(frame[0:6])
        src = bytes(frame[6:12])
        if frame[12] == ETHERTYPE_ARP >> 8 and frame[13] == ETHERTYPE_ARP & 0xFF:
            self._note_announcement(frame, now)
        if src != self.local_mac and not is_multicast(src):
            self.fdb.learn(src, LOCAL, now)  # e.g. a VRRP virtual MAC we now hold
        if not is_multicast(dst):
            peer = self.fdb.lookup(dst, now)
            if peer == LOCAL:
                return LocalDecision()  # for ourselves: nothing leaves the node
            if peer is not None:
                return LocalDecision([peer])
        elif self.arp_suppression and dst == b"\xff" * 6:
            reply = self._suppress_arp(frame)
            if reply is not None:
                return LocalDecision(reply=reply)
        if not self._local_storm.allow(now):
            self.drops.add("storm_local")
            return LocalDecision()
        return LocalDecision(list(self.members), flooded=True)

    def _suppress_arp(self, frame: bytes | memoryview) -> bytes | None:
        arp = parse_arp(frame)
        if arp is None or arp.op != 1 or arp.gratuitous:
            return None  # gratuitous ARP must reach everyone, always
        mac = self._arp_table.get(arp.target_ip)
        return arp_reply(arp, mac) if mac is not None else None

    # -- frames from peers --------------------------------------------------------

    def from_peer(self, peer: str, frame: bytes | memoryview, now: float) -> bool:
        """Whether to deliver this authenticated frame to the TAP."""
        return self.from_peer_alike(peer, frame, 1, now) == 1

    def from_peer_alike(self, peer: str, frame: bytes | memoryview, count: int, now: float) -> int:
        """How many of ``count`` authenticated frames that all carry ``frame``'s
        Ethernet addresses to deliver to the TAP: the first that many.

        One decision stands for the lot, because each frame would get the same
        one: learning the same source from the same peer at the same instant
        changes nothing, and only the storm limit on multicast counts frames.
        Drops are counted per frame, as for :meth:`from_peer`.
        """
        if peer not in self.members:
            self.drops.add("not_member", count)
            return 0
        if len(frame) < ETH_HEADER:
            self.drops.add("runt", count)
            return 0
        dst = bytes(frame[0:6])
        src = bytes(frame[6:12])
        if is_multicast(src):
            self.drops.add("bad_source_mac", count)
            return 0
        if not self.fdb.learn(src, peer, now):
            self.drops.add("mac_spoof", count)
            return 0
        if is_multicast(dst):
            allowed = self._peer_storm[peer].take(count, now)
            if allowed < count:
                self.drops.add("storm_peer", count - allowed)
            return allowed
        owner = self.fdb.lookup(dst, now)
        if owner == LOCAL or owner is None:  # None: unknown unicast, the kernel filters it
            return count
        self.drops.add("not_for_us", count)
        return 0

"""A simulated network between sans-I/O tunnel engines: no sockets, a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from skylan.tunnel.config import TunnelConfig
from skylan.tunnel.engine import TunnelEngine
from skylan.tunnel.events import Address, Event
from skylan.tunnel.keys import StaticKeypair

Filter = Callable[[bytes, Address, Address], list[bytes]]


@dataclass
class Node:
    name: str
    addr: Address
    keys: StaticKeypair
    engine: TunnelEngine
    events: list[Event] = field(default_factory=list)

    def drain_events(self) -> list[Event]:
        while (ev := self.engine.next_event()) is not None:
            self.events.append(ev)
        out, self.events = self.events, []
        return out


class Net:
    """Delivers every datagram at once unless ``filter`` changes that."""

    def __init__(self, config: TunnelConfig | None = None) -> None:
        self.now = 1000.0
        self.nodes: dict[Address, Node] = {}
        self.config = config or TunnelConfig()
        self.filter: Filter | None = None
        self.wire_log: list[tuple[Address, Address, bytes]] = []

    def node(self, name: str, ip: str, port: int = 51820) -> Node:
        keys = StaticKeypair.generate()
        node = Node(name, (ip, port), keys, TunnelEngine(keys, config=self.config))
        self.nodes[node.addr] = node
        return node

    def pair(self) -> tuple[Node, Node]:
        a, b = self.node("a", "198.18.1.1"), self.node("b", "198.18.1.2")
        a.engine.add_peer(b.keys.public, b.addr)
        b.engine.add_peer(a.keys.public, a.addr)
        return a, b

    def pump(self, rounds: int = 20) -> int:
        """Deliver datagrams until the network is quiet; returns how many."""
        delivered = 0
        for _ in range(rounds):
            moved = False
            for src in list(self.nodes.values()):
                for tx in src.engine.datagrams_to_send():
                    for dgram in tx.datagrams():
                        self.wire_log.append((src.addr, tx.addr, dgram))
                        out = (
                            [dgram]
                            if self.filter is None
                            else self.filter(dgram, src.addr, tx.addr)
                        )
                        for d in out:
                            dst = self.nodes.get(tx.addr)
                            if dst is not None:
                                dst.engine.receive_datagram(d, src.addr, self.now)
                                delivered += 1
                                moved = True
            if not moved:
                break
        for n in self.nodes.values():
            while (ev := n.engine.next_event()) is not None:
                n.events.append(ev)
        return delivered

    def advance(self, seconds: float, step: float = 0.5) -> None:
        """Move the clock, firing timers as a driver would."""
        end = self.now + seconds
        while self.now < end:
            timers = [t for n in self.nodes.values() if (t := n.engine.get_timer()) is not None]
            nxt = min([end, self.now + step, *[t for t in timers if t > self.now]])
            self.now = max(nxt, self.now)
            for n in self.nodes.values():
                t = n.engine.get_timer()
                if t is not None and t <= self.now:
                    n.engine.handle_timer(self.now)
            self.pump()
            if nxt >= end:
                break


ETH = bytes.fromhex("ffffffffffff02000000000108004500")  # dst, src, IPv4 ethertype...


def frame(payload: bytes = b"hello") -> bytes:
    return ETH + payload

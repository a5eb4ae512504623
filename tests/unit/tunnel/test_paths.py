"""Candidate paths, hole punching, path probes and moving between paths, on
engines joined by a simulated underlay with NATs and a relay (no sockets)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from skylan.tunnel import wire
from skylan.tunnel.engine import TunnelEngine
from skylan.tunnel.events import Address, EndpointChanged, FramesReceived
from skylan.tunnel.keys import StaticKeypair
from skylan.tunnel.pathstate import PathKind
from skylan.tunnel.wire import WireError

ETH = bytes.fromhex("ffffffffffff02000000000108004500")
RELAY_IP = "198.18.200.1"


@dataclass
class Host:
    name: str
    inside: Address  # its own socket's address
    outside: Address  # where it appears beyond its NAT (== inside: no NAT)
    engine: TunnelEngine
    keys: StaticKeypair
    relay_port: int
    opened: set[Address] = field(default_factory=set)  # a NAT lets these in
    got: list[bytes] = field(default_factory=list)
    moves: list[EndpointChanged] = field(default_factory=list)

    @property
    def natted(self) -> bool:
        return self.inside != self.outside

    @property
    def relayed(self) -> Address:
        return (RELAY_IP, self.relay_port)


class Underlay:
    """Endpoint-independent NATs that only let in replies (what the lab's
    masquerade does), a relay that forwards A's datagrams to its port for B
    as coming from its port for A, and paths that can be cut."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.hosts: list[Host] = []
        self.cut: set[tuple[str, str]] = set()  # (from host, to host) direct
        self.relay_up = True
        self.sent: list[tuple[str, Address, bytes]] = []

    def host(self, name: str, inside: Address, outside: Address | None = None) -> Host:
        keys = StaticKeypair.generate()
        h = Host(name, inside, outside or inside, TunnelEngine(keys), keys, 40000 + len(self.hosts))
        self.hosts.append(h)
        return h

    def _at(self, address: Address) -> tuple[Host | None, bool]:
        for h in self.hosts:
            if address in (h.outside, h.inside):
                return h, address == h.inside and h.natted
        return None, False

    def _deliver(self, src: Host, to: Address, data: bytes) -> None:
        self.sent.append((src.name, to, data))
        if to[0] == RELAY_IP:
            if not self.relay_up:
                return
            dst = next((h for h in self.hosts if h.relay_port == to[1]), None)
            if dst is not None and dst is not src:
                dst.engine.receive_datagram(data, src.relayed, self.now)
            return
        src.opened.add(to)
        dst, private = self._at(to)
        if dst is None or dst is src or (src.name, dst.name) in self.cut:
            return
        if private and not (src.natted is False and dst.natted is False):
            return  # a private address behind another NAT: not routable from here
        seen_from = src.outside
        if dst.natted and not private and seen_from not in dst.opened:
            return  # the NAT has no mapping towards that sender: dropped
        dst.engine.receive_datagram(data, seen_from, self.now)

    def pump(self) -> None:
        for _ in range(20):
            moved = False
            for h in self.hosts:
                for tx in h.engine.datagrams_to_send():
                    for d in tx.datagrams():
                        self._deliver(h, tx.addr, d)
                        moved = True
            for h in self.hosts:
                while (ev := h.engine.next_event()) is not None:
                    if isinstance(ev, FramesReceived):
                        h.got += [bytes(f) for f in ev.frames]
                    elif isinstance(ev, EndpointChanged):
                        h.moves.append(ev)
            if not moved:
                return

    def advance(self, seconds: float, step: float = 0.1) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = min(end, self.now + step)
            for h in self.hosts:
                t = h.engine.get_timer()
                if t is not None and t <= self.now:
                    h.engine.handle_timer(self.now)
            self.pump()

    def introduce(self, a: Host, b: Host, *, relay: bool = True) -> None:
        """What the netmap tells each of the other: its candidates."""
        for x, y in ((a, b), (b, a)):
            cands = [(y.inside, PathKind.LOCAL)]
            if y.natted:
                cands.append((y.outside, PathKind.REFLEXIVE))
            if relay:
                cands.append((y.relayed, PathKind.RELAY))
            x.engine.add_peer(y.keys.public)
            x.engine.set_candidates(y.keys.public, cands, self.now)
        self.pump()

    def ping(self, a: Host, b: Host, payload: bytes) -> bool:
        a.engine.send_frames(b.keys.public, 7, [ETH + payload], self.now)
        self.pump()
        return ETH + payload in b.got


def endpoint(a: Host, b: Host) -> Address | None:
    return a.engine.status(b.keys.public, 0).endpoint


def natted_pair(net: Underlay) -> tuple[Host, Host]:
    a = net.host("a", ("10.1.0.2", 51820), ("198.18.1.1", 51820))
    b = net.host("b", ("10.2.0.2", 51820), ("198.18.2.1", 51820))
    return a, b


def test_two_nodes_behind_nat_punch_through_to_each_others_reflexive_address() -> None:
    net = Underlay()
    a, b = natted_pair(net)
    net.introduce(a, b, relay=False)
    net.advance(3)
    assert net.ping(a, b, b"x") and net.ping(b, a, b"y")
    assert endpoint(a, b) == b.outside and endpoint(b, a) == a.outside
    assert a.engine.status(b.keys.public, net.now).path_kind is PathKind.REFLEXIVE


def test_a_relay_carries_what_no_direct_path_can_then_a_direct_path_takes_over() -> None:
    net = Underlay()
    a, b = natted_pair(net)
    net.cut |= {("a", "b"), ("b", "a")}
    net.introduce(a, b)
    net.advance(2)
    assert net.ping(a, b, b"1")
    assert endpoint(a, b) == b.relayed
    assert a.engine.status(b.keys.public, net.now).path_kind is PathKind.RELAY
    net.cut.clear()  # e.g. a firewall rule was opened
    moved_at = None
    for _ in range(300):
        net.advance(0.1)
        net.ping(a, b, b"t%f" % net.now)
        if endpoint(a, b) == b.outside and endpoint(b, a) == a.outside:
            moved_at = net.now
            break
    assert moved_at is not None, "no move to the direct path"
    assert net.ping(b, a, b"back")


def test_a_dead_path_moves_to_one_that_answers_probes_within_seconds() -> None:
    net = Underlay()
    a, b = natted_pair(net)
    net.introduce(a, b)
    net.advance(2)
    assert net.ping(a, b, b"0") and endpoint(a, b) == b.outside
    net.cut |= {("a", "b"), ("b", "a")}  # the direct path dies; the relay lives
    started = net.now
    while endpoint(a, b) != b.relayed and net.now - started < 10:
        net.ping(a, b, b"p%f" % net.now)
        net.advance(0.2)
    assert endpoint(a, b) == b.relayed
    assert net.now - started < 5
    assert net.ping(a, b, b"after") and net.ping(b, a, b"and back")


def test_a_path_that_works_one_way_only_never_takes_the_traffic() -> None:
    net = Underlay()
    a = net.host("a", ("198.18.1.1", 51820))
    b = net.host("b", ("198.18.2.1", 51820))
    net.introduce(a, b)
    net.cut.add(("a", "b"))  # a's datagrams reach b by the relay only
    net.advance(2)
    net.ping(a, b, b"1")
    for _ in range(100):
        net.advance(0.2)
    assert endpoint(a, b) == b.relayed  # b's probes answered? a's answers never arrive
    assert b.engine.drops["stray_probe_ack"] == 0


def test_candidates_arriving_later_restart_a_peer_given_up_on() -> None:
    net = Underlay()
    a, b = natted_pair(net)
    a.engine.add_peer(b.keys.public)
    a.engine.set_candidates(b.keys.public, [(b.inside, PathKind.LOCAL)], net.now)
    net.advance(40, step=0.5)
    assert a.engine.status(b.keys.public, net.now).dead
    net.introduce(a, b, relay=False)  # now with reflexive candidates, both sides
    net.advance(3)
    assert net.ping(a, b, b"late")
    assert not a.engine.status(b.keys.public, net.now).dead


def test_forged_and_stray_probes_are_dropped_and_counted() -> None:
    net = Underlay()
    a, b = natted_pair(net)
    net.introduce(a, b)
    net.advance(2)
    index = a.engine.sessions_of(b.keys.public, net.now)[0]
    assert index is not None
    forged = wire.Probe(wire.MsgType.PROBE, index.local_index, b"n" * 8, b"m" * 16).encode()
    a.engine.receive_datagram(forged, ("203.0.113.9", 9), net.now)
    assert a.engine.drops["bad_probe_mac"] == 1
    assert a.engine.datagrams_to_send() == []
    unknown = wire.Probe(wire.MsgType.PROBE_ACK, 12345, b"n" * 8, b"m" * 16).encode()
    a.engine.receive_datagram(unknown, ("203.0.113.9", 9), net.now)
    assert a.engine.drops["unknown_index"] == 1
    # an answer to a probe never sent, even correctly made, moves nothing
    before = endpoint(a, b)
    a.engine.receive_datagram(b"\x06\x00\x00\x00" + bytes(28), b.relayed, net.now)
    assert endpoint(a, b) == before


def test_probes_cost_nothing_while_the_best_path_is_in_use_and_idle() -> None:
    net = Underlay()
    a = net.host("a", ("198.18.1.1", 51820))
    b = net.host("b", ("198.18.2.1", 51820))
    net.introduce(a, b)
    net.advance(2)
    assert net.ping(a, b, b"x")

    def probes() -> list[bytes]:
        kinds = (wire.MsgType.PROBE, wire.MsgType.PROBE_ACK)
        return [d for _, _, d in net.sent if d[0] in kinds]

    net.sent.clear()
    net.advance(15, step=1)  # until b's passive keepalive answers a's data:
    assert len(probes()) <= 2 * 5  # a checks its endpoint alone, every 2 s
    net.sent.clear()
    net.advance(60, step=1)
    assert probes() == []


@given(st.binary(max_size=64))
def test_decode_probe_raises_only_wire_errors(data: bytes) -> None:
    try:
        probe = wire.decode_probe(data)
    except WireError:
        return
    assert probe.encode() == data


def test_endpoint_changed_is_reported_when_a_probe_moves_the_path() -> None:
    net = Underlay()
    a, b = natted_pair(net)
    net.cut |= {("a", "b"), ("b", "a")}
    net.introduce(a, b)
    net.advance(2)
    net.ping(a, b, b"1")
    net.cut.clear()
    a.moves.clear()
    for _ in range(300):
        net.advance(0.1)
        net.ping(a, b, b"t%f" % net.now)
        if endpoint(a, b) == b.outside:
            break
    assert [(m.old, m.new) for m in a.moves] == [(b.relayed, b.outside)]

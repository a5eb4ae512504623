"""The relay's decisions: hellos (keys, MACs, replays), ports, forwarding
between registered nodes only, rate limits, expiry; hostile input is
dropped and counted, never raised."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from skylan.relay.forwarder import REGISTRATION_TTL, Forward, Forwarder
from skylan.tunnel.keys import StaticKeypair
from skylan.tunnel.relaywire import (
    HELLO_LEN,
    RelayWireError,
    decode_answer,
    encode_hello,
    shared_key,
)

HOME = 3478
PORTS = range(40000, 40010)
NOW_MS = 1_800_000_000_000


class Node:
    def __init__(self, relay: StaticKeypair, address: tuple[str, int]) -> None:
        self.keys = StaticKeypair.generate()
        self.key = shared_key(self.keys, relay.public)
        self.address = address
        self.millis = NOW_MS

    def hello(self) -> bytes:
        self.millis += 1
        return encode_hello(self.keys.public, self.millis, os.urandom(8), self.key)


def setup() -> tuple[Forwarder, Node, Node]:
    relay = StaticKeypair.generate()
    fwd = Forwarder(relay, PORTS, clock_ms=lambda: NOW_MS)
    a = Node(relay, ("198.18.1.1", 51820))
    b = Node(relay, ("198.18.2.1", 61000))
    fwd.set_allowed([a.keys.public, b.keys.public])
    return fwd, a, b


def register(fwd: Forwarder, node: Node, port: int, now: float = 0.0) -> int:
    answer = fwd.hello(port, node.address, node.hello(), now)
    assert answer is not None
    decoded = decode_answer(answer, node.key)
    assert decoded.seen == node.address
    return decoded.port


def test_two_nodes_reach_each_other_through_their_ports() -> None:
    fwd, a, b = setup()
    pa, pb = register(fwd, a, HOME), register(fwd, b, HOME)
    assert pa != pb and {pa, pb} <= set(PORTS)
    # each says hello on the other's port (its NAT may map that apart)
    register(fwd, a, pb)
    register(fwd, b, pa)
    # a -> b's port: leaves from a's port to b's address there
    assert fwd.route(pb, a.address, 1420, 1, 1.0) == Forward(pa, b.address)
    assert fwd.route(pa, b.address, 1420, 1, 1.0) == Forward(pb, a.address)
    assert fwd.forwarded_packets == 2 and fwd.forwarded_bytes == 2840


def test_a_symmetric_nat_is_known_by_each_port_apart() -> None:
    fwd, a, b = setup()
    pa, pb = register(fwd, a, HOME), register(fwd, b, HOME)
    a.address = ("198.18.1.1", 7001)  # its NAT maps the way to b's port anew
    register(fwd, a, pb)
    b.address = ("198.18.2.1", 9002)
    register(fwd, b, pa)
    assert fwd.route(pb, ("198.18.1.1", 7001), 100, 1, 1.0) == Forward(pa, ("198.18.2.1", 9002))
    assert fwd.route(pb, ("198.18.1.1", 51820), 100, 1, 1.0) is None  # not where it said hello
    assert fwd.drops["unregistered"] == 1


def test_nothing_goes_to_a_node_that_has_not_said_hello_on_the_senders_port() -> None:
    fwd, a, b = setup()
    register(fwd, a, HOME)
    pb = register(fwd, b, HOME)
    register(fwd, a, pb)
    assert fwd.route(pb, a.address, 100, 3, 1.0) is None
    assert fwd.drops["peer_not_here"] == 3


def test_unknown_keys_forgeries_and_replays_are_refused() -> None:
    fwd, a, b = setup()
    stranger = Node(fwd.keypair, ("203.0.113.5", 1))
    assert fwd.hello(HOME, stranger.address, stranger.hello(), 0) is None
    assert fwd.drops["unknown_key"] == 1
    forged = bytearray(a.hello())
    forged[-1] ^= 1
    assert fwd.hello(HOME, a.address, bytes(forged), 0) is None
    assert fwd.drops["bad_mac"] == 1
    hello = a.hello()
    assert fwd.hello(HOME, a.address, hello, 0) is not None
    # the same hello again, from an attacker's address: it moves nothing
    assert fwd.hello(HOME, ("203.0.113.9", 4444), hello, 0) is None
    assert fwd.drops["hello_replay"] == 1
    assert fwd.at.get((HOME, ("203.0.113.9", 4444))) is None
    old = encode_hello(b.keys.public, NOW_MS - 3_600_000, b"n" * 8, b.key)
    assert fwd.hello(HOME, b.address, old, 0) is None
    assert fwd.drops["hello_clock_skew"] == 1


def test_a_node_the_controller_no_longer_lists_loses_its_port() -> None:
    fwd, a, b = setup()
    pa, pb = register(fwd, a, HOME), register(fwd, b, HOME)
    register(fwd, a, pb)
    register(fwd, b, pa)
    fwd.set_allowed([b.keys.public])
    assert pa not in fwd.owner and fwd.route(pb, a.address, 10, 1, 1.0) is None


def test_silent_nodes_expire_and_their_ports_come_back() -> None:
    fwd, a, b = setup()
    pa = register(fwd, a, HOME, now=0.0)
    register(fwd, b, HOME, now=REGISTRATION_TTL - 1)
    fwd.expire(REGISTRATION_TTL)
    assert a.keys.public not in fwd.nodes and b.keys.public in fwd.nodes
    assert pa not in fwd.owner


def test_ports_run_out_cleanly() -> None:
    relay = StaticKeypair.generate()
    fwd = Forwarder(relay, range(40000, 40002), clock_ms=lambda: NOW_MS)
    nodes = [Node(relay, ("198.18.3.1", 1000 + i)) for i in range(3)]
    fwd.set_allowed([n.keys.public for n in nodes])
    assert fwd.hello(HOME, nodes[0].address, nodes[0].hello(), 0) is not None
    assert fwd.hello(HOME, nodes[1].address, nodes[1].hello(), 0) is not None
    assert fwd.hello(HOME, nodes[2].address, nodes[2].hello(), 0) is None
    assert fwd.drops["no_free_port"] == 1


def test_a_flooding_node_is_limited_and_the_others_are_not() -> None:
    relay = StaticKeypair.generate()
    fwd = Forwarder(relay, PORTS, rate=1000.0, burst=2000.0, clock_ms=lambda: NOW_MS)
    a, b, c = (Node(relay, (f"198.18.{i}.1", 5000)) for i in (1, 2, 3))
    fwd.set_allowed([n.keys.public for n in (a, b, c)])
    ports = {n.address: register(fwd, n, HOME) for n in (a, b, c)}
    for x in (a, b, c):
        for y in (a, b, c):
            if x is not y:
                register(fwd, x, ports[y.address])
    sent = [fwd.route(ports[b.address], a.address, 500, 1, 1.0) for _ in range(10)]
    assert sum(s is not None for s in sent) == 4  # the burst, then dropped
    assert fwd.drops["rate_limited"] == 6
    assert fwd.route(ports[b.address], c.address, 500, 1, 1.0) is not None


@settings(max_examples=300)
@given(st.binary(max_size=200), st.integers(0, 65535))
def test_any_bytes_as_a_hello_are_refused_and_counted(data: bytes, port: int) -> None:
    fwd, _, _ = setup()
    assert fwd.hello(port, ("203.0.113.1", 9), data, 0) is None
    assert sum(fwd.drops.values()) == 1


@given(st.binary(min_size=HELLO_LEN, max_size=HELLO_LEN))
def test_decoding_raises_only_its_own_error(data: bytes) -> None:
    from skylan.tunnel.relaywire import decode_hello

    try:
        decode_hello(data)
    except RelayWireError:
        pass

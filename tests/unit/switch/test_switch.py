"""The sans-I/O switch: forwarding, flooding, learning, spoofing, storms, ARP."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from skylan.switch import Member, Switch
from skylan.switch.fdb import LOCAL, Fdb
from skylan.switch.frames import (
    ETHERTYPE_ARP,
    arp_reply,
    mac_bytes,
    mac_text,
    parse_arp,
)
from skylan.switch.stormbucket import StormBucket

ME = mac_bytes("02:00:00:00:00:01")
B = mac_bytes("02:00:00:00:00:02")
C = mac_bytes("02:00:00:00:00:03")
VMAC = mac_bytes("00:00:5e:00:01:07")  # VRRP virtual MAC
BCAST = b"\xff" * 6
IPV6_ALL_NODES = mac_bytes("33:33:00:00:00:01")


def eth(dst: bytes, src: bytes, ethertype: int = 0x0800, payload: bytes = bytes(46)) -> bytes:
    return dst + src + ethertype.to_bytes(2, "big") + payload


def ip4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def arp(op: int, sha: bytes, spa: str, tha: bytes, tpa: str, dst: bytes = BCAST) -> bytes:
    body = b"\x00\x01\x08\x00\x06\x04" + op.to_bytes(2, "big") + sha + ip4(spa) + tha + ip4(tpa)
    return dst + sha + ETHERTYPE_ARP.to_bytes(2, "big") + body + bytes(18)


def switch(storm_pps: int = 1000, arp_suppression: bool = False) -> Switch:
    sw = Switch(local_mac=ME, storm_pps=storm_pps, now=0.0, arp_suppression=arp_suppression)
    sw.set_members([Member("b", B, ip4("172.16.1.2")), Member("c", C, ip4("172.16.1.3"))], 0.0)
    return sw


def test_known_unicast_goes_to_one_peer() -> None:
    sw = switch()
    assert sw.from_local(eth(B, ME), 1.0).peers == ["b"]
    assert sw.from_local(eth(C, ME), 1.0).peers == ["c"]
    assert sw.from_local(eth(ME, ME), 1.0).peers == []


def test_broadcast_multicast_and_unknown_unicast_are_replicated_to_all() -> None:
    sw = switch()
    for dst in (BCAST, IPV6_ALL_NODES, VMAC):
        decision = sw.from_local(eth(dst, ME), 1.0)
        assert sorted(decision.peers) == ["b", "c"] and decision.flooded


def test_frames_from_non_members_are_dropped() -> None:
    sw = switch()
    assert not sw.from_peer("mallory", eth(ME, mac_bytes("02:66:66:66:66:66")), 1.0)
    assert sw.drops["not_member"] == 1


def test_another_nodes_mac_cannot_be_spoofed() -> None:
    sw = switch()
    assert sw.from_peer("b", eth(ME, B), 1.0)
    assert not sw.from_peer("c", eth(ME, B), 1.0)  # c claims to be b
    assert not sw.from_peer("c", eth(BCAST, ME), 1.0)  # or to be us
    assert sw.drops["mac_spoof"] == 2
    assert not sw.from_peer("b", eth(ME, BCAST), 1.0)
    assert sw.drops["bad_source_mac"] == 1


def test_learned_mac_moves_with_gratuitous_arp() -> None:
    sw = switch()
    garp_from_b = arp(1, VMAC, "172.16.1.100", b"\x00" * 6, "172.16.1.100")
    assert sw.from_peer("b", garp_from_b, 1.0)
    assert sw.from_local(eth(VMAC, ME), 1.1).peers == ["b"]
    # keepalive fails over: c announces the virtual MAC now
    garp_from_c = arp(1, VMAC, "172.16.1.100", b"\x00" * 6, "172.16.1.100")
    assert sw.from_peer("c", garp_from_c, 2.0)
    assert sw.from_local(eth(VMAC, ME), 2.1).peers == ["c"]


def test_learned_entries_age_out() -> None:
    sw = Switch(local_mac=ME, storm_pps=0, now=0.0, fdb_ttl=10)
    sw.set_members([Member("b", B)], 0.0)
    sw.from_peer("b", eth(ME, VMAC), 1.0)
    assert sw.from_local(eth(VMAC, ME), 5.0).peers == ["b"]
    assert sw.from_local(eth(VMAC, ME), 20.0).flooded  # forgotten: flood again


def test_local_virtual_mac_is_kept_local() -> None:
    sw = switch()
    sw.from_local(eth(BCAST, VMAC), 1.0)  # we hold the VRRP MAC now
    assert sw.from_peer("b", eth(VMAC, B), 1.1)
    assert sw.from_local(eth(VMAC, ME), 1.2).peers == []


def test_unicast_for_another_node_is_not_delivered() -> None:
    sw = switch()
    assert not sw.from_peer("b", eth(C, B), 1.0)
    assert sw.drops["not_for_us"] == 1
    assert sw.from_peer("b", eth(ME, B), 1.0)
    assert sw.from_peer("b", eth(BCAST, B), 1.0)


def test_storm_control_limits_floods_per_port() -> None:
    sw = switch(storm_pps=100)
    sent = sum(bool(sw.from_local(eth(BCAST, ME), 1.0 + i * 1e-5).peers) for i in range(500))
    assert 100 <= sent <= 102
    assert sw.drops["storm_local"] == 500 - sent
    # unicast is never limited
    assert all(sw.from_local(eth(B, ME), 1.01).peers == ["b"] for _ in range(500))
    # a second later the bucket has refilled
    assert sw.from_local(eth(BCAST, ME), 2.5).peers
    got = sum(sw.from_peer("b", eth(BCAST, B), 3.0) for _ in range(300))
    assert got == 100 and sw.drops["storm_peer"] == 200


def test_storm_control_off() -> None:
    sw = switch(storm_pps=0)
    assert all(sw.from_local(eth(BCAST, ME), 1.0).peers for _ in range(5000))


def test_arp_suppression_answers_known_bindings_only() -> None:
    sw = switch(arp_suppression=True)
    who_has_b = arp(1, ME, "172.16.1.1", b"\x00" * 6, "172.16.1.2")
    decision = sw.from_local(who_has_b, 1.0)
    assert decision.peers == [] and decision.reply is not None
    reply = parse_arp(decision.reply)
    assert reply is not None and reply.op == 2 and reply.sender_mac == B
    assert reply.sender_ip == ip4("172.16.1.2") and decision.reply[:6] == ME
    # unknown address: flooded as usual
    assert sw.from_local(arp(1, ME, "172.16.1.1", b"\x00" * 6, "172.16.1.99"), 1.0).flooded
    # gratuitous ARP is never suppressed, even for a known address
    garp = arp(1, ME, "172.16.1.2", b"\x00" * 6, "172.16.1.2")
    assert sw.from_local(garp, 1.0).flooded
    assert sw.from_local(arp(2, ME, "172.16.1.1", BCAST, "172.16.1.1"), 1.0).flooded


def test_addresses_announced_by_our_machine_are_remembered() -> None:
    """Gratuitous ARP (a keepalived VIP) and ordinary ARP both name the sender;
    probes (sender 0.0.0.0) do not, and old entries fade out."""
    sw = switch()
    sw.from_local(arp(1, ME, "172.16.1.100", bytes(6), "172.16.1.100"), 1.0)  # gratuitous
    sw.from_local(arp(2, ME, "172.16.1.1", B, "172.16.1.2", dst=B), 2.0)  # a reply
    sw.from_local(arp(1, ME, "0.0.0.0", bytes(6), "172.16.1.7"), 3.0)  # DAD probe
    sw.from_local(eth(BCAST, ME), 3.0)  # not ARP
    assert sw.announced(10.0) == ["172.16.1.1", "172.16.1.100"]
    assert sw.announced(301.5) == ["172.16.1.1"]
    for i in range(200):  # bounded, however many addresses a machine claims
        sw.from_local(arp(1, ME, f"10.0.{i}.1", bytes(6), f"10.0.{i}.1"), 400.0 + i)
    assert len(sw.announced(600.0)) == Switch.MAX_ANNOUNCED
    assert "10.0.199.1" in sw.announced(600.0)


def test_members_leaving_are_forgotten() -> None:
    sw = switch()
    sw.from_peer("c", eth(ME, VMAC), 1.0)
    sw.set_members([Member("b", B)], 2.0)
    assert sw.from_local(eth(C, ME), 2.0).peers == ["b"]  # c's MAC is unknown now: flood
    assert sw.from_local(eth(VMAC, ME), 2.0).flooded
    assert not sw.from_peer("c", eth(ME, C), 2.0)


def test_runts() -> None:
    sw = switch()
    assert sw.from_local(b"\x01\x02", 1.0).peers == []
    assert not sw.from_peer("b", b"\x01", 1.0)
    assert sw.drops["runt"] == 2


@given(st.binary(max_size=80))
def test_parsers_and_switch_never_raise(frame: bytes) -> None:
    sw = switch(arp_suppression=True)
    parse_arp(frame)
    sw.from_local(frame, 1.0)
    sw.from_peer("b", frame, 1.0)
    sw.from_peer("nobody", frame, 1.0)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["b", "c", LOCAL]),
            st.binary(min_size=6, max_size=6),
            st.floats(0, 1000),
        ),
        max_size=60,
    )
)
def test_fdb_matches_a_model(events: list[tuple[str, bytes, float]]) -> None:
    fdb = Fdb(ttl=50)
    fdb.set_static({B: "b"})
    model: dict[bytes, tuple[str, float]] = {}
    now = 0.0
    for peer, mac, dt in events:
        now += dt / 10
        ok = fdb.learn(mac, peer, now)
        if mac == B:
            assert ok == (peer == "b")
        else:
            assert ok
            model[mac] = (peer, now)
        for m, (p, seen) in model.items():
            assert fdb.lookup(m, now) == (p if now - seen <= 50 else None)


def test_helpers() -> None:
    assert mac_text(mac_bytes("02-00-00-00-00-0a")) == "02:00:00:00:00:0a"
    request = parse_arp(arp(1, ME, "10.0.0.1", b"\x00" * 6, "10.0.0.2"))
    assert request is not None and not request.gratuitous
    assert parse_arp(arp_reply(request, B)) is not None


def state(sw: Switch) -> tuple[object, ...]:
    learned = {mac: (e.peer, e.seen) for mac, e in sw.fdb.learned.items()}
    tokens = {p: (b.tokens, b.last) for p, b in sw._peer_storm.items()}
    return dict(sw.drops.by_reason), learned, tokens


MACS = [ME, B, C, VMAC, BCAST, IPV6_ALL_NODES, mac_bytes("02:00:00:00:00:77")]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["b", "c", "stranger"]),
            st.sampled_from(MACS),
            st.sampled_from(MACS),
            st.integers(1, 150),
            st.floats(0, 0.5),
        ),
        max_size=12,
    ),
    st.sampled_from([0, 3, 100]),
)
def test_deciding_for_frames_alike_is_deciding_for_each(
    runs: list[tuple[str, bytes, bytes, int, float]], storm_pps: int
) -> None:
    """A batch of frames with the same addresses, decided once, leaves the
    switch exactly as deciding every frame of it would: the same frames
    delivered (the first ones), the same drops by reason, the same learned
    MACs and storm buckets."""
    one, each = switch(storm_pps), switch(storm_pps)
    now = 1.0
    for peer, dst, src, count, dt in runs:
        now += dt
        frame = eth(dst, src)
        verdicts = [each.from_peer(peer, frame, now) for _ in range(count)]
        delivered = one.from_peer_alike(peer, frame, count, now)
        assert verdicts == [True] * delivered + [False] * (count - delivered)
        assert state(one) == state(each)
    assert each.from_peer_alike("b", eth(ME, B)[:10], 4, now) == 0
    assert each.drops["runt"] == 4


@given(
    st.sampled_from([0, 1, 7, 100]),
    st.lists(st.tuples(st.floats(0, 0.3), st.integers(1, 40)), max_size=20),
)
def test_storm_bucket_grants_whole_tokens_only(pps: int, arrivals: list[tuple[float, int]]) -> None:
    """``take`` against a model of the bucket: a frame passes while a whole
    token is left, the bucket refills at ``pps`` up to ``pps``, 0 means off."""
    bucket, tokens, last, now = StormBucket(pps, 0.0), float(max(pps, 1)), 0.0, 0.0
    for dt, count in arrivals:
        now += dt
        want = 0
        tokens = min(float(pps), tokens + (now - last) * pps)
        last = now
        for _ in range(count):
            if pps <= 0 or tokens >= 1.0:
                tokens -= 1.0 if pps > 0 else 0.0
                want += 1
        assert bucket.take(count, now) == want

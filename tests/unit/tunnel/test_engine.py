"""The tunnel engine between simulated peers: handshakes, data, timers, attacks."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from skylan.tunnel import wire
from skylan.tunnel.config import TunnelConfig
from skylan.tunnel.events import (
    EndpointChanged,
    FrameRowsReceived,
    FramesReceived,
    HandshakeCompleted,
    PeerDead,
    SuperFrameReceived,
)
from skylan.tunnel.keys import StaticKeypair

from .simnet import Net, Node, frame


def received(node: Node) -> list[bytes]:
    out: list[bytes] = []
    for ev in node.drain_events():
        if isinstance(ev, FramesReceived):
            out.extend(ev.frames)
        elif isinstance(ev, FrameRowsReceived):
            out.extend(frame for _, frame in ev.rows.items())
        elif isinstance(ev, SuperFrameReceived):
            out.append(ev.frame)
    return out


def established(net: Net) -> tuple[Node, Node]:
    a, b = net.pair()
    a.engine.send_frames(b.keys.public, 7, [frame(b"first")], net.now)
    net.pump()
    assert received(b) == [frame(b"first")]
    return a, b


def test_handshake_and_data_both_directions() -> None:
    net = Net()
    a, b = net.pair()
    a.engine.send_frames(b.keys.public, 7, [frame(b"a->b")], net.now)
    net.pump()
    evs = b.drain_events()
    assert any(isinstance(e, HandshakeCompleted) and not e.initiator for e in evs)
    assert [f for e in evs if isinstance(e, FramesReceived) for f in e.frames] == [frame(b"a->b")]
    assert next(e for e in evs if isinstance(e, FramesReceived)).network_id == 7
    b.engine.send_frames(a.keys.public, 7, [frame(b"b->a")], net.now)
    net.pump()
    assert received(a) == [frame(b"b->a")]
    # and the other way round: b initiates to a fresh a'
    net2 = Net()
    c, d = net2.pair()
    d.engine.send_frames(c.keys.public, 1, [frame(b"d->c")], net2.now)
    net2.pump()
    assert received(c) == [frame(b"d->c")]
    assert a.engine.status(b.keys.public, net.now).established
    assert a.engine.status(b.keys.public, net.now).rtt is not None
    assert b.engine.status(a.keys.public, net.now).rtt is not None  # the responder too


def test_superframe_is_one_aead_over_many_chunks() -> None:
    net = Net()
    a, b = established(net)
    big = frame(bytes(random.Random(1).randbytes(64_000)))
    vnet = bytes(range(10))
    before = len(net.wire_log)
    a.engine.send_superframe(b.keys.public, 3, vnet, big, net.now)
    net.pump()
    chunks = net.wire_log[before:]
    assert len(chunks) == 46
    assert all(len(d) <= 1420 for _, _, d in chunks)
    evs = [e for e in b.drain_events() if isinstance(e, SuperFrameReceived)]
    assert evs == [SuperFrameReceived(a.keys.public, 3, vnet, big)]


def test_small_frames_travel_as_one_batch_with_their_virtio_headers() -> None:
    net = Net()
    a, b = established(net)
    items = [(bytes([1, 0, 0, 0, 0, 0, 34, 0, 16, 0]), frame(bytes([i]) * 50)) for i in range(15)]
    before = len(net.wire_log)
    a.engine.send_vnet_frames(b.keys.public, 3, items, net.now)
    net.pump()
    assert len(net.wire_log) - before == 1  # 15 frames, one datagram
    (ev,) = b.drain_events()
    # frames of one length arrive as rows of the message, for the driver to
    # take as a whole
    assert isinstance(ev, FrameRowsReceived)
    assert (ev.peer, ev.network_id, ev.rows.items()) == (a.keys.public, 3, items)
    mixed = [(vnet, f + bytes(i % 2)) for i, (vnet, f) in enumerate(items)]
    a.engine.send_vnet_frames(b.keys.public, 3, mixed, net.now)
    net.pump()
    (ev,) = b.drain_events()
    assert isinstance(ev, FramesReceived)
    assert list(zip(ev.vnet_hdrs, ev.frames, strict=True)) == mixed
    a.engine.send_vnet_frames(b.keys.public, 3, items[:1], net.now)  # one: a super-frame
    net.pump()
    assert b.drain_events() == [SuperFrameReceived(a.keys.public, 3, *items[0])]


def test_gso_layout_of_a_transmit() -> None:
    net = Net()
    a, b = established(net)
    a.engine.send_superframe(b.keys.public, 3, bytes(10), frame(bytes(10_000)), net.now)
    (tx,) = a.engine.datagrams_to_send()
    flat = b"".join(bytes(x) for x in tx.buffers)
    segments = [flat[i : i + tx.segment_size] for i in range(0, len(flat), tx.segment_size)]
    assert len(segments) == tx.count == 8
    assert segments == tx.datagrams()


def test_replayed_data_is_dropped() -> None:
    net = Net()
    a, b = established(net)
    a.engine.send_frames(b.keys.public, 7, [frame(b"once")], net.now)
    (tx,) = a.engine.datagrams_to_send()
    (dgram,) = tx.datagrams()
    b.engine.receive_datagram(dgram, a.addr, net.now)
    b.engine.receive_datagram(dgram, a.addr, net.now)
    assert received(b) == [frame(b"once")]
    assert b.engine.drops["replay"] == 1


def test_out_of_order_within_window_is_accepted() -> None:
    net = Net()
    a, b = established(net)
    dgrams = []
    for i in range(50):
        a.engine.send_frames(b.keys.public, 7, [frame(bytes([i]))], net.now)
        dgrams += a.engine.datagrams_to_send()[0].datagrams()
    for d in reversed(dgrams):
        b.engine.receive_datagram(d, a.addr, net.now)
    assert sorted(received(b)) == sorted(frame(bytes([i])) for i in range(50))


def test_tampering_any_byte_is_dropped() -> None:
    net = Net()
    a, b = established(net)
    a.engine.send_frames(b.keys.public, 7, [frame(b"precious")], net.now)
    (dgram,) = a.engine.datagrams_to_send()[0].datagrams()
    for i in range(len(dgram)):
        bad = bytearray(dgram)
        bad[i] ^= 0x40
        b.engine.receive_datagram(bytes(bad), a.addr, net.now)
    assert received(b) == []
    b.engine.receive_datagram(dgram, a.addr, net.now)  # the genuine one still works
    assert received(b) == [frame(b"precious")]


def test_tampered_handshake_messages_are_dropped() -> None:
    net = Net()
    a, b = net.pair()
    a.engine.connect(b.keys.public, net.now)
    (init,) = a.engine.datagrams_to_send()[0].datagrams()
    # every byte up to and including MAC1 is covered (MAC2 matters only under load)
    for i in range(len(init) - wire.MAC_LEN):
        bad = bytearray(init)
        bad[i] ^= 1
        b.engine.receive_datagram(bytes(bad), a.addr, net.now)
    assert b.engine.datagrams_to_send() == []
    assert b.engine.handshakes_processed == 0  # MAC1 refused them before any DH
    assert b.engine.drops.total == len(init) - wire.MAC_LEN


def test_unknown_static_key_is_refused() -> None:
    net = Net()
    _a, b = net.pair()
    mallory = net.node("mallory", "198.18.1.66")
    mallory.engine.add_peer(b.keys.public, b.addr)  # knows b's key, b does not know hers
    mallory.engine.send_frames(b.keys.public, 7, [frame(b"let me in")], net.now)
    net.pump()
    assert received(b) == []
    assert b.engine.drops["unknown_peer"] == 1


def test_initiator_with_wrong_responder_key_fails() -> None:
    net = Net()
    a, b = net.node("a", "198.18.1.1"), net.node("b", "198.18.1.2")
    a.engine.add_peer(StaticKeypair.generate().public, b.addr)  # not b's real key
    b.engine.add_peer(a.keys.public, a.addr)
    a.engine.connect(a.engine.peers()[0], net.now)
    net.pump()
    assert b.engine.drops["bad_mac1"] == 1
    assert b.engine.handshakes_processed == 0


def test_replayed_initiation_is_rejected() -> None:
    net = Net()
    a, b = net.pair()
    a.engine.connect(b.keys.public, net.now)
    (init,) = a.engine.datagrams_to_send()[0].datagrams()
    b.engine.receive_datagram(init, a.addr, net.now)
    assert len(b.engine.datagrams_to_send()) == 1
    net.now += 1
    b.engine.receive_datagram(init, ("198.18.9.9", 1234), net.now)
    assert b.engine.datagrams_to_send() == []
    assert b.engine.drops["initiation_replay"] == 1


def test_garbage_truncated_and_oversized_are_counted_never_raised() -> None:
    net = Net()
    a, b = established(net)
    rng = random.Random(5)
    samples = [b"", b"\x00", b"\x09" * 40, b"\x04" * 16, b"\x01" * 147, b"\x01" * 149]
    samples += [b"\x02" * 91, b"\x03" * 53, b"\x04" + bytes(100_000)]
    samples += [rng.randbytes(rng.randrange(1, 3000)) for _ in range(500)]
    before = b.engine.drops.total
    for s in samples:
        b.engine.receive_datagram(s, a.addr, net.now)
    assert b.engine.drops.total - before == len(samples)
    assert received(b) == []


def test_reassembly_with_loss_duplicates_and_reordering() -> None:
    net = Net()
    a, b = established(net)
    big = frame(random.Random(2).randbytes(30_000))
    a.engine.send_superframe(b.keys.public, 3, bytes(10), big, net.now)
    chunks = a.engine.datagrams_to_send()[0].datagrams()
    rng = random.Random(3)
    shuffled = chunks + chunks[:5]
    rng.shuffle(shuffled)
    for c in shuffled:
        b.engine.receive_datagram(c, a.addr, net.now)
    assert received(b) == [big]
    # each of the five repeated chunks is counted once: as a duplicate while its
    # message is incomplete, as a replay once it is in
    assert b.engine.drops["reassembly_duplicate"] + b.engine.drops["replay"] == 5
    # one lost chunk: the whole super-frame is dropped after the timeout
    a.engine.send_superframe(b.keys.public, 3, bytes(10), big, net.now)
    chunks = a.engine.datagrams_to_send()[0].datagrams()
    for c in chunks[:-1]:
        b.engine.receive_datagram(c, a.addr, net.now)
    net.advance(1.0)
    assert received(b) == []
    assert b.engine.drops["reassembly_timeout"] == 1


def test_flood_of_partial_chunk_sets_is_memory_bounded() -> None:
    net = Net()
    a, b = established(net)
    peer_session = b.engine._peers[a.keys.public].current
    assert peer_session is not None
    index = peer_session.local_index
    for counter in range(10, 5000):
        hdr = wire.DataHeader(0, 100, index, counter).encode()
        b.engine.receive_datagram(hdr + bytes(1404), a.addr, net.now)
    r = peer_session.reassembly
    assert len(r) <= r.max_sets
    assert r.bytes_held <= r.max_bytes
    assert b.engine.drops["reassembly_evicted"] >= 4990 - r.max_sets
    # genuine traffic still flows
    a.engine.send_frames(b.keys.public, 7, [frame(b"still here")], net.now)
    net.pump()
    assert received(b) == [frame(b"still here")]


def test_rekey_rotates_keys_without_losing_traffic() -> None:
    net = Net()
    a, b = established(net)
    first = b.engine._peers[a.keys.public].current
    sent = got = 0
    for _ in range(300):  # 300 s of traffic, a frame each way per second
        a.engine.send_frames(b.keys.public, 7, [frame(b"x")], net.now)
        b.engine.send_frames(a.keys.public, 7, [frame(b"y")], net.now)
        sent += 2
        net.advance(1.0)
        got += len(received(a)) + len(received(b))
    assert got == sent
    cur = b.engine._peers[a.keys.public].current
    assert cur is not first and cur is not None
    # no session ever outlived the two-minute limit
    assert cur.age(net.now) < 120
    assert a.engine.status(b.keys.public, net.now).established


def test_simultaneous_initiation_converges() -> None:
    net = Net()
    a, b = net.pair()
    a.engine.send_frames(b.keys.public, 7, [frame(b"from a")], net.now)
    b.engine.send_frames(a.keys.public, 7, [frame(b"from b")], net.now)
    net.pump()
    assert received(b) == [frame(b"from a")]
    assert received(a) == [frame(b"from b")]
    for _ in range(5):
        a.engine.send_frames(b.keys.public, 7, [frame(b"a")], net.now)
        b.engine.send_frames(a.keys.public, 7, [frame(b"b")], net.now)
        net.pump()
        assert received(b) == [frame(b"a")]
        assert received(a) == [frame(b"b")]


def test_passive_keepalive_and_dead_peer_detection() -> None:
    net = Net(TunnelConfig(rekey_attempt_time=20))
    a, b = established(net)
    before = len(net.wire_log)
    net.advance(11)
    # b received data and had nothing to say: it sends a keepalive within 10 s
    assert any(src == b.addr for src, _, _ in net.wire_log[before:])
    # now b vanishes: a's data goes unanswered, a retries handshakes, then gives up
    net.filter = lambda d, s, dst: [] if b.addr in (s, dst) else [d]
    a.engine.send_frames(b.keys.public, 7, [frame(b"anyone?")], net.now)
    net.advance(60)
    assert any(isinstance(e, PeerDead) for e in a.drain_events())
    assert a.engine.status(b.keys.public, net.now).dead
    timer = a.engine.get_timer()
    assert timer is not None and timer > net.now  # no busy loop, and the sessions still expire
    # b comes back: traffic resumes
    net.filter = None
    a.engine.send_frames(b.keys.public, 7, [frame(b"back")], net.now)
    net.pump()
    assert frame(b"back") in received(b)


def test_persistent_keepalive_keeps_traffic_flowing() -> None:
    net = Net(TunnelConfig(persistent_keepalive=5))
    a, b = net.pair()
    net.advance(1)  # persistent keepalive also brings the session up by itself
    assert a.engine.status(b.keys.public, net.now).established
    before = len(net.wire_log)
    net.advance(30)
    assert sum(1 for s, _, _ in net.wire_log[before:] if s == a.addr) >= 5


def test_roaming_endpoint_is_learned_from_authenticated_packets() -> None:
    net = Net()
    a, b = established(net)
    del net.nodes[a.addr]
    a.addr = ("198.18.7.7", 40000)
    net.nodes[a.addr] = a
    a.engine.send_frames(b.keys.public, 7, [frame(b"moved")], net.now)
    net.pump()
    evs = b.drain_events()
    assert EndpointChanged(a.keys.public, ("198.18.1.1", 51820), a.addr) in evs
    b.engine.send_frames(a.keys.public, 7, [frame(b"reply")], net.now)
    net.pump()
    assert received(a) == [frame(b"reply")]
    # a forged packet from elsewhere does not move the endpoint
    b.engine.receive_datagram(b"\x04" + bytes(40), ("198.18.6.6", 1), net.now)
    assert b.engine.status(a.keys.public, net.now).endpoint == a.addr


def test_handshake_flood_is_bounded_by_cookies() -> None:
    cfg = TunnelConfig(handshake_load_threshold=10)
    net = Net(cfg)
    a, b = net.pair()
    # an attacker who knows b's public key replays fresh-looking initiations
    attacker = StaticKeypair.generate()
    from skylan.tunnel.engine import TunnelEngine

    flood_engine = TunnelEngine(attacker, config=cfg)
    flood_engine.add_peer(b.keys.public, b.addr)
    for _ in range(1000):
        flood_engine.remove_peer(b.keys.public)
        flood_engine.add_peer(b.keys.public, b.addr)
        flood_engine.connect(b.keys.public, net.now)
        for tx in flood_engine.datagrams_to_send():
            for d in tx.datagrams():
                b.engine.receive_datagram(d, ("198.18.6.6", 999), net.now)
    # DH work stopped at the load threshold; the rest got cookie replies
    assert b.engine.handshakes_processed <= cfg.handshake_load_threshold
    assert b.engine.drops["cookie_required"] >= 990
    # a legitimate peer still gets through: cookie reply, then retry with MAC2
    b.engine.datagrams_to_send()
    a.engine.send_frames(b.keys.public, 7, [frame(b"legit")], net.now)
    net.pump()
    net.advance(6)
    assert frame(b"legit") in received(b)


def test_responder_waits_for_confirmation_instead_of_initiating() -> None:
    net = Net(TunnelConfig(persistent_keepalive=25))
    a, b = net.pair()
    a.engine.connect(b.keys.public, net.now)
    (init,) = a.engine.datagrams_to_send()[0].datagrams()
    b.engine.receive_datagram(init, a.addr, net.now)
    assert len(b.engine.datagrams_to_send()) == 1  # the response, held back from a
    # b's timer fires before a's confirming keepalive arrives: no new handshake
    for step in range(1, 5):
        b.engine.handle_timer(net.now + step * 0.5)
    assert b.engine.datagrams_to_send() == []
    assert (b.engine.get_timer() or 0) >= net.now + 4.9


def test_first_handshake_retries_come_quickly_then_back_off() -> None:
    net = Net()
    a, b = net.pair()
    net.filter = lambda d, s, dst: []  # b hears nothing
    a.engine.connect(b.keys.public, net.now)
    start = net.now
    sent: list[float] = []
    for _ in range(400):
        for tx in a.engine.datagrams_to_send():
            sent.append(round(net.now - start, 2))
            assert tx.count == 1
        timer = a.engine.get_timer()
        assert timer is not None
        net.now = timer
        a.engine.handle_timer(net.now)
        if net.now - start > 20:
            break
    gaps = [round(y - x, 2) for x, y in itertools.pairwise(sent)]
    assert gaps[:5] == [0.5, 1.0, 2.0, 4.0, 5.0]
    assert set(gaps[5:]) == {5.0}


def _gro_batches(datagrams: list[bytes], cuts: set[int]) -> list[tuple[bytes, int]]:
    """Group datagrams as UDP GRO would: runs of equal size, the last of a run
    may be shorter; ``cuts`` adds batch boundaries."""
    batches: list[tuple[bytes, int]] = []
    current: list[bytes] = []
    for i, d in enumerate(datagrams):
        if current and (
            i in cuts or len(d) > len(current[0]) or len(current[-1]) < len(current[0])
        ):
            batches.append((b"".join(current), len(current[0])))
            current = []
        current.append(d)
    if current:
        batches.append((b"".join(current), len(current[0])))
    return batches


def _deliver_scenario(
    sizes: list[int],
    plan: list[tuple[int, str]],
    cuts: set[int],
    shuffle: int | None,
    *,
    batched: bool,
    fec: bool,
) -> tuple[list[bytes], int]:
    net = Net()
    a, b = established(net)
    if fec:  # as if b had asked for redundancy
        a.engine._peers[b.keys.public].fec_until = float("inf")
    rng = random.Random(7)
    sent = [frame(rng.randbytes(n)) for n in sizes]
    wire_out: list[bytes] = []
    for big in sent:
        a.engine.send_superframe(b.keys.public, 3, bytes(10), big, net.now)
        for tx in a.engine.datagrams_to_send():
            wire_out.extend(tx.datagrams())
    delivered: list[bytes] = []
    for index, action in plan:  # the same mangling, by position, in both runs
        if not wire_out:
            break
        d = wire_out[index % len(wire_out)]
        if action == "dup":
            delivered.append(d)
        elif action == "flip":
            pos = index % len(d)
            delivered.append(d[:pos] + bytes([d[pos] ^ 0x40]) + d[pos + 1 :])
        elif action == "cut":
            delivered.append(d[: max(1, index % len(d))])
    kept = [d for i, d in enumerate(wire_out) if (i, "drop") not in plan]
    stream = kept + delivered
    if shuffle is not None:  # reordering mixes chunks of different messages in one batch
        random.Random(shuffle).shuffle(stream)
    if batched:
        for data, segment in _gro_batches(stream, cuts):
            b.engine.receive_segments(data, segment, a.addr, net.now)
    else:
        for d in stream:
            b.engine.receive_datagram(d, a.addr, net.now)
    return received(b), sum(b.engine.drops.by_reason.values())


@given(
    st.lists(st.integers(0, 20_000), min_size=1, max_size=5),
    st.lists(
        st.tuples(st.integers(0, 200), st.sampled_from(["drop", "dup", "flip", "cut"])),
        max_size=8,
    ),
    st.sets(st.integers(0, 60), max_size=8),
    st.none() | st.integers(0, 1000),
    st.booleans(),
)
@settings(max_examples=80, deadline=None)
def test_gro_batches_give_what_datagrams_give(
    sizes: list[int],
    plan: list[tuple[int, str]],
    cuts: set[int],
    shuffle: int | None,
    fec: bool,
) -> None:
    """The batch fast path is an optimisation only: the same frames come out
    and the same number of datagrams are refused, whatever the mangling, with
    or without parity."""
    one_by_one = _deliver_scenario(sizes, plan, cuts, shuffle, batched=False, fec=fec)
    batched = _deliver_scenario(sizes, plan, cuts, shuffle, batched=True, fec=fec)
    assert batched == one_by_one


def test_a_whole_superframe_in_one_gro_batch() -> None:
    net = Net()
    a, b = established(net)
    big = frame(random.Random(4).randbytes(60_000))
    a.engine.send_superframe(b.keys.public, 3, bytes(10), big, net.now)
    (tx,) = a.engine.datagrams_to_send()
    flat = b"".join(bytes(x) for x in tx.buffers)
    b.engine.receive_segments(flat, tx.segment_size, a.addr, net.now)
    assert received(b) == [big]
    assert not b.engine.drops.by_reason
    b.engine.receive_segments(flat, tx.segment_size, a.addr, net.now)  # replayed whole
    assert received(b) == [] and b.engine.drops["replay"] == tx.count


def _two_messages_mangled(
    mangle: Callable[[list[bytes], list[bytes]], list[bytes]], *, batched: bool
) -> tuple[list[bytes], dict[str, int]]:
    net = Net()
    a, b = established(net)
    messages = []
    for seed in (5, 6):
        a.engine.send_superframe(
            b.keys.public, 3, bytes(10), frame(random.Random(seed).randbytes(60_000)), net.now
        )
        messages.append([d for tx in a.engine.datagrams_to_send() for d in tx.datagrams()])
    stream = mangle(*messages)
    if batched:
        for data, segment in _gro_batches(stream, set()):
            b.engine.receive_segments(data, segment, a.addr, net.now)
    else:
        for d in stream:
            b.engine.receive_datagram(d, a.addr, net.now)
    return received(b), dict(b.engine.drops.by_reason)


def _flip(byte: int) -> Callable[[list[bytes], list[bytes]], list[bytes]]:
    def mangle(m1: list[bytes], m2: list[bytes]) -> list[bytes]:
        tail = bytearray(m1[-1])
        tail[byte] ^= 0x01
        return [*m1[:-1], bytes(tail), *m2]

    return mangle


def _tail_as_chunk_before(m1: list[bytes], m2: list[bytes]) -> list[bytes]:
    tail = bytearray(m1[-1])
    tail[2] = tail[3] - 2  # the index of the full chunk before it, already in
    return [*m1[:-1], bytes(tail), *m2]


def _swapped_tails(m1: list[bytes], m2: list[bytes]) -> list[bytes]:
    return [*m1[:-1], m2[-1], *m2[:-1], m1[-1]]


def test_a_batch_ends_in_its_last_chunk_only_when_it_is_that() -> None:
    """A message's last chunk is taken with the rows before it (the shorter
    datagram that ends a GRO batch). A datagram there that is not that chunk
    (another message's last chunk, another index, any header byte changed) must come
    out as it does datagram by datagram."""
    mangles = [_swapped_tails, _tail_as_chunk_before, *(_flip(i) for i in range(wire.DATA_HDR_LEN))]
    for mangle in mangles:
        one_by_one = _two_messages_mangled(mangle, batched=False)
        assert _two_messages_mangled(mangle, batched=True) == one_by_one
    assert len(_two_messages_mangled(_swapped_tails, batched=True)[0]) == 2


def _lose_fifth_chunk(dgram: bytes, src: tuple[str, int], dst: tuple[str, int]) -> list[bytes]:
    """The path from a loses one datagram of every big message (its 5th chunk)."""
    if src[0] == "198.18.1.1" and dgram[0] == wire.MsgType.DATA:
        hdr = wire.decode_data_header(dgram)
        if hdr.chunk_count >= 8 and hdr.chunk_index == 4 and not hdr.flags:
            return []
    return [dgram]


def test_a_lossy_path_gets_parity_and_stops_losing_super_frames() -> None:
    net = Net()
    a, b = established(net)
    net.filter = _lose_fifth_chunk
    frames = [frame(random.Random(i).randbytes(60_000)) for i in range(6)]
    a.engine.send_superframe(b.keys.public, 3, bytes(10), frames[0], net.now)
    net.pump()
    assert received(b) == []  # lost: one chunk of ~43 missing
    assert not a.engine.status(b.keys.public, net.now).fec
    net.advance(1.0)  # b's reassembly times out, b asks a for redundancy
    assert b.engine.drops["reassembly_timeout"] == 1
    assert a.engine.status(b.keys.public, net.now).fec
    for big in frames[1:]:
        a.engine.send_superframe(b.keys.public, 3, bytes(10), big, net.now)
        net.pump()
    assert received(b) == frames[1:]  # each rebuilt from parity
    assert b.engine.status(a.keys.public, net.now).repaired == 5
    assert sum(b.engine.drops.by_reason.values()) == 1
    net.filter = None  # the path heals: a stops sending parity after fec_hold
    net.advance(net.config.fec_hold + 2)
    assert not a.engine.status(b.keys.public, net.now).fec
    a.engine.send_superframe(b.keys.public, 3, bytes(10), frames[0], net.now)
    (tx,) = a.engine.datagrams_to_send()
    assert not any(d[1] & wire.FLAG_REDUNDANT for d in tx.datagrams())


def test_the_repair_count_outlives_the_sessions_that_repaired() -> None:
    net = Net()
    a, b = established(net)
    net.filter = _lose_fifth_chunk
    a.engine.send_superframe(b.keys.public, 3, bytes(10), frame(bytes(60_000)), net.now)
    net.pump()
    net.advance(1.0)  # lost; b asks for parity
    for i in range(3):
        a.engine.send_superframe(b.keys.public, 3, bytes(10), frame(bytes([i]) * 60_000), net.now)
        net.pump()
    assert b.engine.status(a.keys.public, net.now).repaired == 3
    net.filter = None
    repaired_in = b.engine._peers[a.keys.public].current
    for _ in range(300):  # rekeys: the repairing session becomes previous, then goes
        a.engine.send_frames(b.keys.public, 7, [frame(b"x")], net.now)
        net.advance(1.0)
    peer = b.engine._peers[a.keys.public]
    assert repaired_in not in (peer.current, peer.previous)
    assert b.engine.status(a.keys.public, net.now).repaired == 3


def test_asking_for_parity_is_harmless_to_a_peer_that_ignores_it() -> None:
    """An older agent drops the unknown FEEDBACK container (counted) and keeps
    talking; asking never breaks a mixed-version network."""
    net = Net()
    a, b = established(net)
    b.engine.send_container(a.keys.public, bytes([9, 1]), net.now)  # a kind a does not know
    net.pump()
    assert a.engine.drops["bad_container_kind"] == 1
    b.engine.send_frames(a.keys.public, 7, [frame(b"still here")], net.now)
    net.pump()
    assert received(a) == [frame(b"still here")]


def _sent_with_parity(seed: int) -> tuple[Net, Node, Node, bytes, list[bytes]]:
    """a (asked for parity) seals a 30 KB super-frame for b: the frame and its
    datagrams (data chunks, parity, and the copy of the last chunk last)."""
    net = Net()
    a, b = established(net)
    a.engine._peers[b.keys.public].fec_until = float("inf")
    big = frame(random.Random(seed).randbytes(30_000))
    a.engine.send_superframe(b.keys.public, 3, bytes(10), big, net.now)
    return net, a, b, big, [d for tx in a.engine.datagrams_to_send() for d in tx.datagrams()]


def test_a_chunk_that_parity_already_rebuilt_is_a_spare_not_a_replay() -> None:
    net, a, b, big, datagrams = _sent_with_parity(9)
    late = next(d for d in datagrams if d[2] == 4 and not d[1])  # data chunk 4
    for d in datagrams:
        if d is not late:
            b.engine.receive_datagram(d, a.addr, net.now)
    assert received(b) == [big]  # rebuilt from parity
    b.engine.receive_datagram(late, a.addr, net.now)  # reordered, not lost
    assert not b.engine.drops.by_reason
    session = b.engine._peers[a.keys.public].current
    assert session is not None and session.reassembly.spares == 2  # the copy, the late chunk
    assert b.engine.status(a.keys.public, net.now).repaired == 1


def test_the_last_chunk_after_its_copy_completed_the_message_is_a_spare() -> None:
    net, a, b, big, datagrams = _sent_with_parity(5)
    count = datagrams[0][3]
    last = next(d for d in datagrams if d[2] == count - 1 and not d[1])
    for d in datagrams:  # the copy (sent last) overtakes the original
        if d is not last:
            b.engine.receive_datagram(d, a.addr, net.now)
    assert received(b) == [big]
    b.engine.receive_datagram(last, a.addr, net.now)
    assert not b.engine.drops.by_reason


class CheckedNet(Net):
    """A net whose every step checks each engine's cached timer against the
    timer computed from every peer afresh."""

    def check(self) -> None:
        for n in self.nodes.values():
            assert n.engine.get_timer() == n.engine.get_timer_slowly(), n.name

    def pump(self, rounds: int = 20) -> int:
        """As Net.pump, but each transmit arrives as GRO batches (the
        receive path's run fast path included)."""
        self.check()
        delivered = 0
        for _ in range(rounds):
            moved = False
            for src in list(self.nodes.values()):
                for tx in src.engine.datagrams_to_send():
                    dst = self.nodes.get(tx.addr)
                    keep = self.filter or (lambda d, _s, _t: [d])
                    sent = [d for dgram in tx.datagrams() for d in keep(dgram, src.addr, tx.addr)]
                    if dst is None or not sent:
                        continue
                    for batch, segment in _gro_batches(sent, set()):
                        dst.engine.receive_segments(batch, segment, src.addr, self.now)
                        self.check()
                    delivered += len(sent)
                    moved = True
            if not moved:
                break
        for n in self.nodes.values():
            n.drain_events()
        self.check()
        return delivered


OPS = st.lists(
    st.tuples(
        st.sampled_from(["send", "big", "advance", "lossy", "clean", "forget", "connect"]),
        st.integers(0, 2),
        st.integers(0, 2),
        st.floats(0.01, 40.0),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(ops=OPS, persistent=st.sampled_from([None, 3.0]), seed=st.integers(0, 1000))
def test_the_cached_timer_is_always_the_earliest_deadline(
    ops: list[tuple[str, int, int, float]], persistent: float | None, seed: int
) -> None:
    config = TunnelConfig(
        rekey_after_time=20,
        reject_after_time=30,
        rekey_attempt_time=12,
        fec_hold=3,
        persistent_keepalive=persistent,
    )
    net = CheckedNet(config)
    nodes = [net.node(name, f"198.18.2.{i + 1}") for i, name in enumerate("abc")]
    for x in nodes:
        for y in nodes:
            if x is not y:
                x.engine.add_peer(y.keys.public, y.addr)
    rng = random.Random(seed)
    for kind, i, j, value in ops:
        src, dst = nodes[i], nodes[j]
        if kind in ("send", "big") and src is not dst:
            size = 200 if kind == "send" else 6000  # the big one goes as chunks
            src.engine.send_frames(dst.keys.public, 7, [frame(bytes(size))], net.now)
            net.pump()
        elif kind == "advance":
            net.advance(value)
        elif kind == "lossy":
            net.filter = lambda d, s, t: [] if rng.random() < 0.3 else [d]
        elif kind == "clean":
            net.filter = None
        elif kind == "forget" and src is not dst:
            src.engine.remove_peer(dst.keys.public)
            net.check()
            src.engine.add_peer(dst.keys.public, dst.addr)
        elif kind == "connect" and src is not dst:
            src.engine.connect(dst.keys.public, net.now)
            net.pump()
        net.check()

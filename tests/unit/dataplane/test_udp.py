"""The tunnel socket on loopback: GSO sends, GRO receives, and the 64 KB limit."""

from __future__ import annotations

import os
import select
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skylan.dataplane.tunnelporterror import TunnelPortError
from skylan.dataplane.udp import MAX_UDP_PAYLOAD, UdpSocket
from skylan.model.counters import DropCounters
from skylan.tunnel.session import Session


@pytest.fixture
def pair() -> Iterator[tuple[UdpSocket, UdpSocket]]:
    a, b = UdpSocket(0, "127.0.0.1"), UdpSocket(0, "127.0.0.1")
    yield a, b
    a.close()
    b.close()


def test_a_port_in_use_is_refused_not_shared(pair: tuple[UdpSocket, UdpSocket]) -> None:
    """A second socket on the port would silently take the first one's traffic
    (what SO_REUSEADDR allows on UDP, even for ports the kernel picks)."""
    a, b = pair
    with pytest.raises(TunnelPortError, match=f"UDP port {b.port} on 127.0.0.1 is already in use"):
        UdpSocket(b.port, "127.0.0.1")
    with pytest.raises(TunnelPortError):
        UdpSocket(b.port)  # the wildcard address covers 127.0.0.1
    a.sock.sendto(b"still mine", ("127.0.0.1", b.port))
    assert received(b, 1) == [b"still mine"]


def test_an_address_not_on_this_host_is_a_clear_error() -> None:
    with pytest.raises(TunnelPortError, match=r"cannot use UDP port 4789 on 198\.18\.255\.254: "):
        UdpSocket(4789, "198.18.255.254")  # the lab's range, on no interface here


def received(sock: UdpSocket, want: int) -> list[bytes]:
    got: list[bytes] = []
    while len(got) < want:
        if not select.select([sock.fileno()], [], [], 2.0)[0]:
            break
        got += [bytes(d) for d, _ in sock.receive()]
    return got


def sealed(size: int) -> tuple[list[bytes | memoryview], int, int, list[bytes]]:
    session = Session(
        local_index=1,
        remote_index=2,
        send_key=os.urandom(32),
        recv_key=os.urandom(32),
        created=0.0,
        initiator=True,
        drops=DropCounters(),
    )
    out = session.seal(os.urandom(size), 1404)
    flat = b"".join(out.buffers)
    step = out.segment_size
    return (
        out.buffers,
        out.segment_size,
        out.count,
        [flat[i : i + step] for i in range(0, len(flat), step)],
    )


@pytest.mark.parametrize("size", [100, 3000, 20_000, 65_000])
def test_every_datagram_arrives_intact(pair: tuple[UdpSocket, UdpSocket], size: int) -> None:
    a, b = pair
    buffers, segment, count, datagrams = sealed(size)
    a.send(buffers, segment, count, ("127.0.0.1", b.port))
    assert received(b, count) == datagrams
    assert a.send_errors == 0


def test_a_super_frame_over_64_kb_with_its_headers_leaves_in_two_sends(
    pair: tuple[UdpSocket, UdpSocket],
) -> None:
    """46 chunks of 1404 bytes plus 16-byte headers exceed an IPv4 packet:
    one GSO send would fail with EMSGSIZE and lose the whole super-frame."""
    a, b = pair
    buffers, segment, count, datagrams = sealed(65_400)
    assert sum(len(d) for d in datagrams) > MAX_UDP_PAYLOAD
    a.send(buffers, segment, count, ("127.0.0.1", b.port))
    assert received(b, count) == datagrams
    assert a.gso and a.send_errors == 0


def test_without_gso_datagrams_go_one_by_one(pair: tuple[UdpSocket, UdpSocket]) -> None:
    a, b = pair
    a.gso = False
    buffers, segment, count, datagrams = sealed(10_000)
    a.send(buffers, segment, count, ("127.0.0.1", b.port))
    assert received(b, count) == datagrams


def test_datagrams_that_come_one_by_one_are_gathered_like_gro(
    pair: tuple[UdpSocket, UdpSocket],
) -> None:
    """Loopback does no GRO: equal-sized datagrams from one sender come back as
    one batch (the shorter one ends it); another sender's starts its own."""
    a, b = pair
    c = UdpSocket(0, "127.0.0.1")
    c_port = c.port
    try:
        to_b = ("127.0.0.1", b.port)
        run = [bytes([i]) * 1420 for i in range(10)] + [b"t" * 500]
        for d in run:
            a.sock.sendto(d, to_b)
        c.sock.sendto(b"c" * 1420, to_b)
        a.sock.sendto(b"x" * 1420, to_b)
        select.select([b.fileno()], [], [], 2.0)
        batches = [(bytes(v), seg, addr[1]) for v, seg, addr in b.receive_batches()]
    finally:
        c.close()
    assert batches == [
        (b"".join(run), 1420, a.port),
        (b"c" * 1420, 1420, c_port),
        (b"x" * 1420, 1420, a.port),
    ]


def batches_of(sock: UdpSocket, want: int) -> list[tuple[list[bytes], int]]:
    """Batches until ``want`` datagrams came, each split at its segment size."""
    out: list[tuple[list[bytes], int]] = []
    got = 0
    while got < want and select.select([sock.fileno()], [], [], 2.0)[0]:
        for view, segment, addr in sock.receive_batches():
            data = bytes(view)
            out.append(([data[i : i + segment] for i in range(0, len(data), segment)], addr[1]))
            got += len(out[-1][0])
    return out


sizes = st.one_of(st.sampled_from([1420, 700, 300]), st.integers(1, 3000))


@settings(max_examples=60, deadline=None)
@given(
    plan=st.lists(
        st.tuples(st.sampled_from([0, 0, 1, 2]), sizes, st.integers(1, 12)), min_size=1, max_size=12
    ),
)
def test_batches_hold_every_datagram_in_order_as_runs(plan: list[tuple[int, int, int]]) -> None:
    """Every datagram comes back once, in order, with its sender, and a batch
    only ever holds datagrams of one sender and one size (the last may be
    shorter)."""
    b = UdpSocket(0, "127.0.0.1")
    senders = [UdpSocket(0, "127.0.0.1") for _ in range(3)]
    try:
        sent: list[tuple[bytes, int]] = []
        for who, size, repeat in plan:
            for _ in range(repeat):
                data = os.urandom(size)
                senders[who].sock.sendto(data, ("127.0.0.1", b.port))
                sent.append((data, senders[who].port))
        batches = batches_of(b, len(sent))
    finally:
        for sock in (b, *senders):
            sock.close()
    assert [(d, port) for datagrams, port in batches for d in datagrams] == sent
    for datagrams, _ in batches:
        assert all(len(d) == len(datagrams[0]) for d in datagrams[:-1])
        assert len(datagrams[-1]) <= len(datagrams[0])


def test_more_datagrams_than_one_call_takes_arrive_in_order(
    pair: tuple[UdpSocket, UdpSocket],
) -> None:
    a, b = pair
    run = [i.to_bytes(2, "big") * 700 for i in range(3 * b._batch.slots + 5)]
    for d in run:
        a.sock.sendto(d, ("127.0.0.1", b.port))
    batches = batches_of(b, len(run))
    assert [d for datagrams, _ in batches for d in datagrams] == run
    assert len(batches) <= 4  # one run per call, not one batch per datagram


def test_gro_batches_and_single_datagrams_mix_in_one_call(
    pair: tuple[UdpSocket, UdpSocket],
) -> None:
    """Loopback hands a GSO send to a GRO socket whole: a coalesced batch in a
    slot of its own, between single datagrams."""
    a, b = pair
    buffers, segment, count, datagrams = sealed(30_000)
    a.sock.sendto(b"before", ("127.0.0.1", b.port))
    a.send(buffers, segment, count, ("127.0.0.1", b.port))
    a.sock.sendto(b"after", ("127.0.0.1", b.port))
    batches = batches_of(b, count + 2)
    assert [d for chunk, _ in batches for d in chunk] == [b"before", *datagrams, b"after"]
    assert [len(chunk) for chunk, _ in batches] == [1, count, 1]


def test_a_shorter_datagram_ends_a_run(pair: tuple[UdpSocket, UdpSocket]) -> None:
    a, b = pair
    run = [b"a" * 1420] * 3 + [b"b" * 700] * 3
    for d in run:
        a.sock.sendto(d, ("127.0.0.1", b.port))
    assert [chunk for chunk, _ in batches_of(b, len(run))] == [run[:4], run[4:]]

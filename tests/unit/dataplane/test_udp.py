"""The tunnel socket on loopback: GSO sends, GRO receives, and the 64 KB limit."""

from __future__ import annotations

import os
import select
from collections.abc import Iterator

import pytest

from skylan.dataplane.udp import MAX_UDP_PAYLOAD, UdpSocket
from skylan.model.counters import DropCounters
from skylan.tunnel.session import Session


@pytest.fixture
def pair() -> Iterator[tuple[UdpSocket, UdpSocket]]:
    a, b = UdpSocket(0, "127.0.0.1"), UdpSocket(0, "127.0.0.1")
    yield a, b
    a.close()
    b.close()


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

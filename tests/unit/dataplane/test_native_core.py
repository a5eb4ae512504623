"""The compiled core against the Python tunnel, byte for byte, on real sockets.

The Python session is the executable specification: what it seals, the core
must open and deliver unchanged, and what the core seals from frames read off
its "TAP", the Python session must open into the same frames. The TAP is a
SOCK_SEQPACKET socket pair (one read, one frame, like a TAP queue) and the
underlay real UDP sockets on loopback, so this runs without root.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skylan.dataplane import native
from skylan.model.counters import DropCounters
from skylan.tunnel import wire
from skylan.tunnel.replay import WINDOW
from skylan.tunnel.session import Session

pytestmark = pytest.mark.skipif(not native.available(), reason="the compiled core is not built")

VNI = 7
LOCAL_MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("020000000002")
OTHER_MAC = bytes.fromhex("020000000003")  # a third member's
CORE_INDEX, PY_INDEX = 0x0A0B0C0D, 0x01020304
CHUNK = 1404


@dataclass
class Rig:
    core: native.CoreLink
    udp: socket.socket  # the core's underlay socket
    peer: socket.socket  # the Python side's
    tap: socket.socket  # our end of the core's "TAP"
    py: Session  # the Python side's session with the core
    drops: DropCounters

    @property
    def core_addr(self) -> tuple[str, int]:
        addr: tuple[str, int] = self.udp.getsockname()
        return addr

    def send_sealed(self, plaintext: bytes) -> list[bytes]:
        """Seal like the Python data plane and send each datagram to the core."""
        sealed = self.py.seal(plaintext, CHUNK)
        flat = b"".join(bytes(b) for b in sealed.buffers)
        datagrams = [
            flat[i : i + sealed.segment_size] for i in range(0, len(flat), sealed.segment_size)
        ]
        for d in datagrams:
            self.peer.sendto(d, self.core_addr)
        return datagrams

    def tap_frames(self, wait: float = 1.0) -> list[bytes]:
        """What the core wrote to its TAP (vnet header + frame each)."""
        out = []
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([self.tap], [], [], min(left, 0.05))[0]:
                if out:
                    break
                continue
            out.append(self.tap.recv(70000))
        return out

    def tap_frames_until(self, last: bytes, wait: float = 5.0) -> list[bytes]:
        """What the core wrote to its TAP before ``last``."""
        out = []
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            if select.select([self.tap], [], [], left)[0]:
                got = self.tap.recv(70000)
                if got == last:
                    return out
                out.append(got)
        raise AssertionError(f"{last!r} never reached the TAP; before it: {out!r}")

    def python_receives(self, wait: float = 1.0) -> list[bytes]:
        """Datagrams the core sent us, opened by the Python session: plaintexts."""
        out = []
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([self.peer], [], [], min(left, 0.05))[0]:
                if out:
                    break
                continue
            datagram = self.peer.recv(70000)
            header = wire.decode_data_header(datagram)
            plaintext = self.py.open(header, memoryview(datagram)[wire.DATA_HDR_LEN :], 0.0)
            if plaintext is not None:
                out.append(bytes(plaintext))
        return out


@pytest.fixture
def rig() -> Iterator[Rig]:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    tap, core_tap = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for s in (tap, core_tap):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    core_tap.setblocking(False)
    k1, k2 = os.urandom(32), os.urandom(32)
    drops = DropCounters()
    py = Session(
        local_index=PY_INDEX,
        remote_index=CORE_INDEX,
        send_key=k1,
        recv_key=k2,
        created=0.0,
        initiator=True,
        drops=drops,
    )
    link = native.CoreLink(udp.fileno(), chunk_size=CHUNK, reassembly_timeout=0.5)
    link.add_port(VNI, core_tap.fileno())
    link.set_peers({b"P" * 32: ("peer-node", peer.getsockname())}, {"peer-node": b"P" * 32})
    link.set_network(VNI, LOCAL_MAC, [(PEER_MAC, "peer-node"), (OTHER_MAC, "other-node")])
    link.core.add_session(
        0, CORE_INDEX, PY_INDEX, k2, k1, 0, -1, bytes(WINDOW // 8), time.monotonic() + 120
    )
    link.core.send_on(0, CORE_INDEX)
    link.start()
    yield Rig(link, udp, peer, tap, py, drops)
    link.stop()
    for s in (udp, peer, tap, core_tap):
        s.close()


def frame(dst: bytes, src: bytes, payload: bytes, ethertype: bytes = b"\x08\x00") -> bytes:
    return dst + src + ethertype + payload


VNET0 = bytes(10)
SENTINEL = frame(LOCAL_MAC, PEER_MAC, b"sentinel: what came before is all there is")
payloads = st.binary(min_size=0, max_size=1500)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(payloads, min_size=1, max_size=30), st.booleans())
def test_python_sealed_frames_come_out_of_the_cores_tap_unchanged(
    rig: Rig, bodies: list[bytes], with_vnet: bool
) -> None:
    frames = [frame(LOCAL_MAC, PEER_MAC, b) for b in bodies]
    if with_vnet:
        items = [(bytes([1, 0, 0, 0, 0, 0, 34, 0, 16, 0]), f) for f in frames]
        container = wire.encode_vnet_frames(VNI, items)
        want = [v + f for v, f in items]
    else:
        container = wire.encode_frames(VNI, frames)
        want = [VNET0 + f for f in frames]
    rig.send_sealed(container)
    assert rig.tap_frames() == want


def test_a_64k_super_frame_in_47_chunks_is_reassembled_in_any_order(rig: Rig) -> None:
    big = frame(LOCAL_MAC, PEER_MAC, os.urandom(65535 - 14))
    vnet = bytes([1, 4, 0x42, 0, 0x88, 5, 34, 0, 16, 0])  # TSO: the receiver's kernel segments
    sealed = rig.py.seal(wire.encode_superframe(VNI, vnet, big), CHUNK)
    flat = b"".join(bytes(b) for b in sealed.buffers)
    datagrams = [
        flat[i : i + sealed.segment_size] for i in range(0, len(flat), sealed.segment_size)
    ]
    assert len(datagrams) == 47
    for d in reversed(datagrams):
        rig.peer.sendto(d, rig.core_addr)
    assert rig.tap_frames() == [vnet + big]


def test_frames_read_from_the_tap_reach_the_python_session_unchanged(rig: Rig) -> None:
    small = [frame(PEER_MAC, LOCAL_MAC, os.urandom(n)) for n in (46, 100, 1400, 0)]
    for f in small:
        rig.tap.send(VNET0 + f)
    tso = bytes([1, 4, 0x42, 0, 0x88, 5, 34, 0, 16, 0])
    big = frame(PEER_MAC, LOCAL_MAC, os.urandom(60000))
    rig.tap.send(tso + big)
    got: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + 3
    while len(got) < 5 and time.monotonic() < deadline:
        for plaintext in rig.python_receives():
            container = wire.decode_container(plaintext)
            if container.kind is wire.Kind.SUPERFRAME:
                got.append((container.vnet_hdr, bytes(container.frames[0])))
            else:
                got += [(bytes(v), bytes(f)) for v, f in container.vnet_items()]
    assert got == [(VNET0, f) for f in small] + [(tso, big)]


def test_replayed_and_forged_datagrams_are_dropped_and_counted(rig: Rig) -> None:
    f = frame(LOCAL_MAC, PEER_MAC, b"once")
    (datagram,) = rig.send_sealed(wire.encode_frames(VNI, [f]))
    assert rig.tap_frames() == [VNET0 + f]
    rig.peer.sendto(datagram, rig.core_addr)
    forged = bytearray(rig.send_sealed(wire.encode_frames(VNI, [f]))[0])
    assert rig.tap_frames() == [VNET0 + f]
    forged[-1] ^= 1
    forged[8:16] = (10**6).to_bytes(8, "big")  # a fresh counter, a tag that cannot match
    rig.peer.sendto(bytes(forged), rig.core_addr)
    assert rig.tap_frames(wait=0.3) == []
    drops = rig.core.drops()
    assert drops["replay"] == 1 and drops["auth_failed"] == 1


def test_the_switch_rules_hold_in_the_core(rig: Rig) -> None:
    """A peer may not send as another member's MAC (or ours), nor to another
    member; a source the table does not know, and any multicast, go up to
    Python's switch instead of being decided here."""
    spoofed = frame(LOCAL_MAC, OTHER_MAC, b"as c")
    as_us = frame(LOCAL_MAC, LOCAL_MAC, b"as us")
    not_ours = frame(OTHER_MAC, PEER_MAC, b"for c")
    learned = frame(LOCAL_MAC, bytes.fromhex("020000000099"), b"behind a gateway")
    flood = frame(b"\xff" * 6, PEER_MAC, b"hello all")
    rig.send_sealed(wire.encode_frames(VNI, [spoofed, as_us, not_ours, learned, flood]))
    assert rig.tap_frames(wait=0.3) == []
    drops = rig.core.drops()
    assert drops["mac_spoof"] == 2 and drops["not_for_us"] == 1
    time.sleep(0.1)
    up = rig.core.take()
    assert [(e.kind, e.slot, e.vni, e.data) for e in up] == [
        (native.SLOW_PEER_FRAME, 0, VNI, VNET0 + learned),
        (native.SLOW_PEER_FRAME, 0, VNI, VNET0 + flood),
    ]


def test_what_the_core_cannot_decide_goes_up_to_python(rig: Rig) -> None:
    broadcast = frame(b"\xff" * 6, LOCAL_MAC, b"arp", b"\x08\x06")
    unknown = frame(bytes.fromhex("02000000aaaa"), LOCAL_MAC, b"who?")
    for f in (broadcast, unknown):
        rig.tap.send(VNET0 + f)
    handshake = bytes([wire.MsgType.INITIATION]) + bytes(wire.INITIATION_LEN - 1)
    stranger = wire.DataHeader(0, 1, 0xDEAD, 5).encode() + bytes(40)
    rig.peer.sendto(handshake, rig.core_addr)
    rig.peer.sendto(stranger, rig.core_addr)
    deadline = time.monotonic() + 2
    up: list[native.SlowEntry] = []
    while len(up) < 4 and time.monotonic() < deadline:
        up += rig.core.take()
        time.sleep(0.02)
    frames = [(e.kind, e.vni, e.data) for e in up if e.kind == native.SLOW_TAP_FRAME]
    assert frames == [
        (native.SLOW_TAP_FRAME, VNI, VNET0 + broadcast),
        (native.SLOW_TAP_FRAME, VNI, VNET0 + unknown),
    ]
    datagrams = [(e.addr, e.data) for e in up if e.kind == native.SLOW_DATAGRAM]
    assert datagrams == [(rig.peer.getsockname(), handshake), (rig.peer.getsockname(), stranger)]
    assert os.read(rig.core.eventfd, 8)  # it woke us


def test_python_and_the_core_never_seal_with_the_same_counter(rig: Rig) -> None:
    """While the core holds a session, Python's seals take counters from it."""
    for _ in range(3):
        rig.tap.send(VNET0 + frame(PEER_MAC, LOCAL_MAC, b"x" * 50))
        time.sleep(0.05)
    taken = [rig.core.core.take_counter(CORE_INDEX) for _ in range(3)]
    assert taken == [3, 4, 5]
    assert rig.core.core.remove_session(CORE_INDEX) == 6  # where Python goes on


def test_activity_reaches_the_engine_timers(rig: Rig) -> None:
    rig.send_sealed(wire.encode_frames(VNI, [frame(LOCAL_MAC, PEER_MAC, b"hi")]))
    rig.tap_frames()
    ((slot, received, sent, data_received, *_),) = rig.core.core.activity()
    assert slot == 0 and received > 0 and data_received == received and sent < 0


def test_parity_from_python_rebuilds_a_lost_chunk_in_the_core(rig: Rig) -> None:
    big = frame(LOCAL_MAC, PEER_MAC, os.urandom(30000))
    container = wire.encode_superframe(VNI, VNET0, big)
    sealed = rig.py.seal(container, CHUNK, fec=True)
    flat = b"".join(bytes(b) for b in sealed.buffers)
    size = sealed.segment_size
    datagrams = [flat[i : i + size] for i in range(0, len(flat), size)]
    assert sealed.copy is not None and len(datagrams) == 22 + 3  # 22 chunks, 3 parity
    del datagrams[5]  # a full chunk lost on the way
    for d in [*datagrams, sealed.copy]:
        rig.peer.sendto(d, rig.core_addr)
    assert rig.tap_frames() == [VNET0 + big]
    ((*_, fec, repaired),) = rig.core.core.activity()
    assert repaired == 1 and fec is False
    assert rig.core.stats()["spares"] == 1  # the copy of the last chunk was not needed


def test_a_peer_that_asks_gets_parity_from_the_core(rig: Rig) -> None:
    rig.send_sealed(wire.FEEDBACK_WANT_FEC)
    time.sleep(0.1)
    big = frame(PEER_MAC, LOCAL_MAC, os.urandom(30000))
    rig.tap.send(VNET0 + big)
    raw = []
    deadline = time.monotonic() + 2
    while len(raw) < 26 and time.monotonic() < deadline:
        if select.select([rig.peer], [], [], 0.1)[0]:
            raw.append(rig.peer.recv(70000))
    headers = [wire.decode_data_header(d) for d in raw]
    assert sum(1 for h in headers if h.flags) == 4  # 3 parity chunks and a copy of the last
    lost = next(i for i, h in enumerate(headers) if h.chunk_index == 7 and not h.flags)
    plaintext = None
    for i, (h, d) in enumerate(zip(headers, raw, strict=True)):
        if i == lost:
            continue
        chunk = memoryview(d)[wire.DATA_HDR_LEN :]
        opened = (rig.py.open_redundant if h.flags else rig.py.open)(h, chunk, 0.0)
        plaintext = plaintext or opened
    assert plaintext is not None
    container = wire.decode_container(bytes(plaintext))
    assert bytes(container.frames[0]) == big
    assert rig.py.reassembly.repaired == 1


@st.composite
def containers(draw: st.DrawFn) -> bytes:
    """Container plaintexts near the valid ones: a real kind or not, frames with
    right or wrong length fields, cut short or with bytes left over."""
    kind = draw(st.sampled_from([0, 1, 2, 3, 4, 9]))
    out = bytearray([kind]) + VNI.to_bytes(4, "big")
    for _ in range(draw(st.integers(0, 6))):
        body = frame(LOCAL_MAC, PEER_MAC, draw(st.binary(max_size=80)))
        length = len(body) + draw(st.sampled_from([0, 0, 0, -1, 1, -len(body)]))
        out += max(0, length).to_bytes(2, "big")
        if kind == 3:
            out += bytes(10)
        out += body
    cut = draw(st.integers(0, 3))
    if kind in (0, 4) and draw(st.booleans()):
        out = out[: 1 + (kind == 4)] if kind == 0 else bytearray([4, 1])
    return bytes(out[: len(out) - cut] if cut < len(out) else out)


def route(frame_: bytes) -> str:
    """Where the switch's rules send a frame from the peer: "tap", "up" (to
    Python's switch) or "drop"."""
    owners = {LOCAL_MAC: "local", PEER_MAC: "peer", OTHER_MAC: "other"}
    dst, src = frame_[:6], frame_[6:12]
    if src[0] & 1:
        return "drop"
    if src not in owners or dst[0] & 1:
        return "up"
    if owners[src] != "peer":
        return "drop"
    return "tap" if owners.get(dst, "local") == "local" else "drop"


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(containers())
def test_the_core_parses_containers_as_the_python_decoder_does(rig: Rig, plaintext: bytes) -> None:
    """Same input, same output: the frames the Python decoder finds in a
    container are what the core writes to its TAP or hands up to Python's
    switch (by the switch's rules), and a container the Python decoder refuses
    delivers nothing."""
    try:
        container = wire.decode_container(plaintext)
    except wire.WireError:
        found: list[bytes] = []
    else:
        if container.kind is wire.Kind.SUPERFRAME:
            found = [container.vnet_hdr + bytes(container.frames[0])]
        elif container.kind is wire.Kind.VNET_FRAMES:
            found = [bytes(v) + bytes(f) for v, f in container.vnet_items()]
        else:
            found = [VNET0 + bytes(f) for f in container.frames]
    to_tap = [f for f in found if route(f[10:]) == "tap"]
    up = [f for f in found if route(f[10:]) == "up"]
    rig.send_sealed(plaintext)
    # then a frame for the TAP: the core takes datagrams in order, so once it
    # is out, everything the container made is out too (no waiting for absence)
    rig.send_sealed(wire.encode_frames(VNI, [SENTINEL]))
    assert rig.tap_frames_until(VNET0 + SENTINEL) == to_tap
    assert [e.data for e in rig.core.take()] == up

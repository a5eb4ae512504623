"""Merging small UDP datagrams into GSO frames: what the kernel cuts back out
of each written frame must be exactly the frames that went in.

``segment`` below models the kernel's UDP GSO (``__udp_gso_segment``): equal
payloads of ``gso_size`` (the last may be shorter), IP total length, IP ID
counted up from the first, IP checksum, UDP length, and the pseudo-header sum
in the UDP check field adjusted for each segment's length. A real kernel does
the same in tests/e2e (the agent writes such frames to its TAP).
"""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from skylan.dataplane.udpcoalesce import (
    CSUM_OFFSET,
    CSUM_START,
    HEADERS,
    MAX_SEGMENTS,
    VNET_F_NEEDS_CSUM,
    VNET_GSO_UDP_L4,
    Frame,
    coalesce,
    coalesce_rows,
)
from skylan.tunnel import wire
from skylan.tunnel.framerows import UNIFORM_FROM, FrameRows

VNET = struct.Struct("=BBHHHH")
PLAIN_VNET = VNET.pack(VNET_F_NEEDS_CSUM, 0, 0, 0, CSUM_START, CSUM_OFFSET)


def fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return fold(sum(struct.unpack(f"!{len(data) // 2}H", data)))


def datagram(
    payload: bytes,
    *,
    ident: int = 1,
    src: bytes = b"\x0a\x00\x00\x02",
    dst: bytes = b"\x0a\x00\x00\x01",
    sport: int = 4000,
    dport: int = 5000,
    ttl: int = 64,
    tos: int = 0,
    df: bool = True,
) -> bytes:
    """An Ethernet/IPv4/UDP frame as a TAP hands it over with NEEDS_CSUM."""
    udp_len = 8 + len(payload)
    ip = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            tos,
            20 + udp_len,
            ident & 0xFFFF,
            0x4000 if df else 0,
            ttl,
            17,
            0,
            src,
            dst,
        )
    )
    ip[10:12] = struct.pack("!H", 0xFFFF - sum16(bytes(ip)))
    pseudo = sum16(src + dst + struct.pack("!HH", 17, udp_len))
    udp = struct.pack("!HHHH", sport, dport, udp_len, pseudo)
    eth = bytes.fromhex("0200000000010200000000020800")
    return eth + bytes(ip) + udp + payload


def segment(vnet: bytes, frame: bytes) -> list[bytes]:
    """The kernel's view: the datagrams a written frame stands for."""
    flags, gso_type, hdr_len, gso_size, csum_start, csum_offset = VNET.unpack(vnet)
    if gso_type == 0:
        return [frame]
    assert (flags, gso_type, hdr_len) == (VNET_F_NEEDS_CSUM, VNET_GSO_UDP_L4, HEADERS)
    assert (csum_start, csum_offset) == (CSUM_START, CSUM_OFFSET)
    head, body = frame[:HEADERS], frame[HEADERS:]
    (total,) = struct.unpack("!H", head[16:18])
    assert total == len(frame) - 14 and sum16(head[14:34]) == 0xFFFF  # a valid IP header
    (ident,) = struct.unpack("!H", head[18:20])
    assert struct.unpack("!H", head[38:40])[0] == 8 + len(body)
    out = []
    for k, at in enumerate(range(0, len(body), gso_size)):
        piece = body[at : at + gso_size]
        ip = bytearray(head[14:34])
        ip[2:4] = struct.pack("!H", 28 + len(piece))
        ip[4:6] = struct.pack("!H", (ident + k) & 0xFFFF)
        ip[10:12] = b"\0\0"
        ip[10:12] = struct.pack("!H", 0xFFFF - sum16(bytes(ip)))
        udp = bytearray(head[34:42])
        udp[4:6] = struct.pack("!H", 8 + len(piece))
        # the kernel adjusts the merged frame's pseudo-header sum for the
        # segment's length: check - len + newlen, in one's-complement arithmetic
        check, merged_len = struct.unpack("!H", head[40:42])[0], len(body) + 8
        udp[6:8] = struct.pack("!H", fold(check + (~merged_len & 0xFFFF) + 8 + len(piece)))
        out.append(head[:14] + bytes(ip) + bytes(udp) + piece)
    return out


def flows() -> st.SearchStrategy[list[Frame]]:
    """Bursts of a few flows and sizes, with unmergeable frames mixed in."""
    one = st.one_of(
        st.builds(
            lambda size, flow, ttl, ident: (
                PLAIN_VNET,
                datagram(bytes([flow]) * size, sport=4000 + flow, ttl=ttl, ident=ident),
            ),
            st.sampled_from([1, 64, 100, 1400]),
            st.integers(0, 2),
            st.sampled_from([64, 63]),
            st.integers(0, 0xFFFF),
        ),
        st.builds(lambda raw: (bytes(10), raw), st.binary(max_size=80)),  # not IPv4/UDP
        st.builds(lambda size: (bytes(10), datagram(b"x" * size)), st.integers(1, 60)),  # csum done
    )
    return st.lists(one, max_size=150)


@given(flows())
def test_segmenting_what_was_written_gives_back_every_datagram_in_order(
    frames: list[Frame],
) -> None:
    writes = coalesce(frames)
    delivered = [seg for vnet, frame, _ in writes for seg in segment(vnet, bytes(frame))]
    assert len(delivered) == len(frames)
    assert sum(n for *_, n in writes) == len(frames)
    for got, (_, sent) in zip(delivered, frames, strict=True):
        want = bytes(sent)
        # IP IDs within a run are the kernel's (from the first one), all else is exact
        assert got[:18] + got[20:24] + got[26:] == want[:18] + want[20:24] + want[26:]
    for _, frame, n in writes:
        if n > 1:
            assert n <= MAX_SEGMENTS and len(frame) - 14 <= 0xFFFF


def test_a_burst_of_one_flow_becomes_one_write_and_a_shorter_datagram_ends_it() -> None:
    burst = [(PLAIN_VNET, datagram(bytes([i]) * 64, ident=i)) for i in range(10)]
    burst.append((PLAIN_VNET, datagram(b"end", ident=10)))
    burst.append((PLAIN_VNET, datagram(b"z" * 64, ident=11)))
    writes = coalesce(burst)
    assert [n for *_, n in writes] == [11, 1]
    vnet, frame, _ = writes[0]
    assert VNET.unpack(vnet)[1:4] == (VNET_GSO_UDP_L4, HEADERS, 64)
    assert [s[HEADERS:] for s in segment(vnet, bytes(frame))] == [
        *(bytes([i]) * 64 for i in range(10)),
        b"end",
    ]


def test_what_is_not_merged() -> None:
    def alone(*frames: bytes, vnet: bytes = PLAIN_VNET) -> bool:
        return [n for *_, n in coalesce([(vnet, f) for f in frames])] == [1] * len(frames)

    p = b"p" * 64
    assert alone(datagram(p, sport=1), datagram(p, sport=2))  # other flow
    assert alone(datagram(p, ttl=64), datagram(p, ttl=63))  # TTL would be lost
    assert alone(datagram(p, tos=0), datagram(p, tos=4))
    assert alone(datagram(p, df=True), datagram(p, df=False))
    assert alone(datagram(b"s" * 10), datagram(p))  # a longer one after a shorter
    assert alone(datagram(p), datagram(p), vnet=bytes(10))  # checksums already final
    fragment = bytearray(datagram(p))
    fragment[20] |= 0x20  # more fragments
    assert alone(bytes(fragment), bytes(fragment))
    padded = datagram(p) + b"\0\0"
    assert alone(padded, padded)
    options = bytearray(datagram(p))
    options[14] = 0x46
    assert alone(bytes(options), bytes(options))


def as_rows(frames: list[Frame]) -> FrameRows:
    rows = wire.decode_container(
        wire.encode_vnet_frames(1, [(v, bytes(f)) for v, f in frames])
    ).rows
    assert rows is not None
    return rows


# a byte of a datagram to change, and what merging must make of it: the IP ID
# and both checksums may differ within a flow, anything else splits the run
TWEAKS = {
    18: "merge",
    19: "merge",
    24: "merge",
    41: "merge",
    0: "split",
    11: "split",
    13: "split",
    14: "split",
    15: "split",
    17: "split",
    20: "split",
    21: "split",
    22: "split",
    23: "split",
    29: "split",
    33: "split",
    35: "split",
    39: "split",
}


@given(
    st.integers(UNIFORM_FROM, 140),
    st.sampled_from([1, 20, 64, 700, 1400, 1472]),
    st.sampled_from([PLAIN_VNET, bytes(10)]),
    st.lists(st.tuples(st.integers(0, 139), st.sampled_from(sorted(TWEAKS))), max_size=3),
)
def test_a_batch_of_one_length_merges_as_frame_by_frame(
    count: int, size: int, vnet: bytes, tweaks: list[tuple[int, int]]
) -> None:
    """Taking the batch as a whole gives exactly what coalescing it frame by
    frame gives, and does so for a clean single-flow burst; a batch it cannot
    take whole (a second flow, checksums already final) it leaves to the
    frame-by-frame path."""
    frames = [bytearray(datagram(bytes([i % 256]) * size, ident=i)) for i in range(count)]
    for index, offset in tweaks:
        frames[index % count][offset] ^= 0x10
    items: list[Frame] = [(vnet, bytes(f)) for f in frames]
    whole = coalesce_rows(as_rows(items))
    if whole is not None:
        assert [(v, bytes(f), n) for v, f, n in whole] == [
            (v, bytes(f), n) for v, f, n in coalesce(items)
        ]
    if vnet == PLAIN_VNET and all(TWEAKS[offset] == "merge" for _, offset in tweaks):
        assert whole is not None
        assert sum(n for *_, n in whole) == count and all(n > 1 for *_, n in whole[:-1])


def test_a_merged_batch_segments_back_into_its_datagrams() -> None:
    items: list[Frame] = [(PLAIN_VNET, datagram(bytes([i]) * 64, ident=i)) for i in range(100)]
    whole = coalesce_rows(as_rows(items))
    assert whole is not None and [n for *_, n in whole] == [MAX_SEGMENTS, 100 - MAX_SEGMENTS]
    delivered = [seg for vnet, frame, _ in whole for seg in segment(vnet, bytes(frame))]
    assert [d[HEADERS:] for d in delivered] == [f[HEADERS:] for _, f in items]


@given(
    st.integers(14, 120).flatmap(
        lambda size: st.lists(
            st.tuples(
                st.sampled_from([PLAIN_VNET, bytes(10)]) | st.binary(min_size=10, max_size=10),
                st.binary(min_size=size, max_size=size),
            ),
            min_size=UNIFORM_FROM,
            max_size=70,
        )
    ),
    st.booleans(),
)
def test_any_batch_of_one_length_is_merged_as_frame_by_frame_or_left_alone(
    items: list[Frame], seed_with_a_datagram: bool
) -> None:
    """Arbitrary bytes in the rows (a peer may send anything it can seal):
    never an exception, and whatever is merged is what frame by frame gives."""
    if seed_with_a_datagram:  # a valid first row, so the whole-batch check runs
        first = datagram(b"q" * (len(items[0][1]) - HEADERS)) if len(items[0][1]) > HEADERS else b""
        if first:
            items = [(PLAIN_VNET, first), *items[1:]]
    whole = coalesce_rows(as_rows(items))
    if whole is not None:
        assert [(v, bytes(f), n) for v, f, n in whole] == [
            (v, bytes(f), n) for v, f, n in coalesce(items)
        ]

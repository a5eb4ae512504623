"""ACK thinning: only pure ACKs that a later ACK of the same connection in the
same batch supersedes may go; everything else passes untouched, in order.

The property tests build batches from a model (connection, kind, ack number,
window) and check the result against that model, not against the parser.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from skylan.dataplane.ackthinning import ends_in_tcp, thin_acks

VNET = b"\x01" + bytes(9)
MACS = bytes.fromhex("020000000001020000000002")
SACK_PERMITTED = b"\x04\x02"


def timestamps(tsval: int = 1000, tsecr: int = 2000) -> bytes:
    return b"\x01\x01\x08\x0a" + struct.pack("!II", tsval, tsecr)


def sack(left: int, right: int) -> bytes:
    return b"\x01\x01\x05\x0a" + struct.pack("!II", left, right)


def tcp_header(
    ack: int, window: int, flags: int, options: bytes, sport: int, dport: int, seq: int = 7
) -> bytes:
    offset = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, window, 0, 0) + (
        options
    )


def segment4(
    ack: int,
    *,
    window: int = 500,
    flags: int = 0x10,
    options: bytes = b"",
    payload: bytes = b"",
    sport: int = 5201,
    dport: int = 40000,
    ecn: int = 0,
    frag: int = 0x4000,  # DF, no offset
    src: bytes = b"\x0a\x00\x00\x02",
) -> bytes:
    tcp = tcp_header(ack, window, flags, options, sport, dport) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, ecn, 20 + len(tcp), 1, frag, 64, 6, 0, src, b"\x0a\x00\x00\x01"
    )
    return MACS + b"\x08\x00" + ip + tcp


def segment6(
    ack: int, *, window: int = 500, flags: int = 0x10, payload: bytes = b"", ecn: int = 0
) -> bytes:
    tcp = tcp_header(ack, window, flags, b"", 5201, 40000) + payload
    first = (6 << 28) | (ecn << 20)
    src, dst = b"\xfd" + bytes(15), b"\xfe" + bytes(15)
    ip = struct.pack("!IHBB16s16s", first, len(tcp), 6, 64, src, dst)
    return MACS + b"\x86\xdd" + ip + tcp


def items(*frames: bytes) -> list[tuple[bytes, bytes]]:
    return [(VNET, f) for f in frames]


def kept(batch: list[tuple[bytes, bytes]]) -> list[bytes]:
    return [f for _, f in thin_acks(batch)]


def test_cumulative_acks_of_one_connection_leave_only_the_newest() -> None:
    acks = [segment4(1000 * i) for i in range(1, 9)]
    assert kept(items(*acks)) == [acks[-1]]


def test_ipv6_acks_are_thinned_too() -> None:
    acks = [segment6(1000 * i) for i in range(1, 5)]
    assert kept(items(*acks)) == [acks[-1]]


def test_duplicate_acks_all_stay() -> None:
    """Equal ACK numbers are how a receiver asks for a fast retransmit."""
    acks = [segment4(5000) for _ in range(4)]
    assert kept(items(*acks)) == acks


def test_acks_with_sack_blocks_stay() -> None:
    first = segment4(1000, options=sack(3000, 4000))
    second = segment4(2000, options=sack(3000, 5000))
    newest = segment4(6000)
    assert kept(items(first, second, newest)) == [first, second, newest]


def test_timestamps_do_not_keep_an_ack() -> None:
    older, newer = segment4(1000, options=timestamps(1)), segment4(2000, options=timestamps(2))
    assert kept(items(older, newer)) == [newer]


def test_unknown_options_keep_an_ack() -> None:
    odd = segment4(1000, options=SACK_PERMITTED + b"\x01\x01")
    assert kept(items(odd, segment4(2000))) == [odd, segment4(2000)]


def test_a_shrinking_window_keeps_the_older_ack() -> None:
    wide, narrow = segment4(1000, window=900), segment4(2000, window=400)
    assert kept(items(wide, narrow)) == [wide, narrow]


def test_a_growing_window_does_not() -> None:
    narrow, wide = segment4(1000, window=400), segment4(2000, window=900)
    assert kept(items(narrow, wide)) == [wide]


def test_anything_but_a_bare_ack_stays_and_is_not_skipped_over() -> None:
    data = segment4(1500, payload=b"x" * 100)
    acks = [segment4(1000), data, segment4(2000), segment4(3000)]
    assert kept(items(*acks)) == [acks[0], data, acks[3]]


def test_flags_ce_marks_and_fragments_keep_an_ack() -> None:
    for older in (
        segment4(1000, flags=0x18),  # PSH
        segment4(1000, flags=0x11),  # FIN
        segment4(1000, flags=0x50),  # ECE
        segment4(1000, ecn=3),  # CE
        segment4(1000, frag=0x2000),  # more fragments
        segment6(1000, ecn=3),
    ):
        newer = segment6(2000) if older[12:14] == b"\x86\xdd" else segment4(2000)
        assert kept(items(older, newer)) == [older, newer]


def test_connections_are_thinned_separately() -> None:
    a1, b1, a2, b2 = segment4(10), segment4(10, sport=1), segment4(20), segment4(20, sport=1)
    other_host = segment4(5, src=b"\x0a\x00\x00\x03")
    assert kept(items(a1, b1, other_host, a2, b2)) == [other_host, a2, b2]


def test_sequence_numbers_wrap() -> None:
    before, after = segment4(0xFFFFFF00), segment4(0x100)
    assert kept(items(before, after)) == [after]
    assert kept(items(after, before)) == [after, before]  # "before" is older: both stay


def test_non_tcp_frames_pass_untouched() -> None:
    udp = MACS + b"\x08\x00" + bytes([0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17]) + bytes(18)
    arp = MACS + b"\x08\x06" + bytes(28)
    assert kept(items(udp, arp, udp)) == [udp, arp, udp]


@dataclass(frozen=True)
class Segment:
    conn: int  # 0..2
    kind: str  # "ack", "data", "sack", "psh"
    ack: int
    window: int

    def frame(self) -> bytes:
        sport = 6000 + self.conn
        if self.kind == "data":
            return segment4(self.ack, window=self.window, sport=sport, payload=b"d" * 10)
        if self.kind == "sack":
            options = sack(self.ack + 10, self.ack + 20)
            return segment4(self.ack, window=self.window, sport=sport, options=options)
        if self.kind == "psh":
            return segment4(self.ack, window=self.window, sport=sport, flags=0x18)
        return segment4(self.ack, window=self.window, sport=sport, options=timestamps())


segments_ = st.builds(
    Segment,
    conn=st.integers(0, 2),
    kind=st.sampled_from(["ack", "ack", "ack", "data", "sack", "psh"]),
    ack=st.integers(0, 50),
    window=st.integers(0, 3),
)


@given(st.lists(segments_, max_size=40))
def test_only_superseded_pure_acks_go(model: list[Segment]) -> None:
    batch = [(VNET, s.frame()) for s in model]
    result = thin_acks(batch)
    # a subsequence of the batch, by identity
    left = iter(range(len(batch)))
    positions = [next(i for i in left if batch[i] is item) for item in result]
    dropped = set(range(len(batch))) - set(positions)
    for i in dropped:
        older = model[i]
        assert older.kind == "ack"
        # a kept, newer pure ACK of the connection acknowledges more with no
        # smaller window, and only pure ACKs of the connection lie between
        same = [j for j in range(i + 1, len(model)) if model[j].conn == older.conn]
        run = [j for k, j in enumerate(same) if all(model[x].kind == "ack" for x in same[: k + 1])]
        assert any(
            j in positions and model[j].ack > older.ack and model[j].window >= older.window
            for j in run
        )
    # the last segment of every connection always stays
    for conn in {s.conn for s in model}:
        last = max(i for i, s in enumerate(model) if s.conn == conn)
        assert last in positions


@given(st.lists(st.binary(max_size=120), max_size=12))
def test_arbitrary_bytes_never_break_it(frames: list[bytes]) -> None:
    batch = items(*frames)
    result = thin_acks(batch)
    left = iter(batch)
    assert all(any(item is x for x in left) for item in result)  # a subsequence


@given(st.integers(0, 66), st.integers(0, 66))
def test_truncated_acks_are_left_alone(cut_a: int, cut_b: int) -> None:
    older = segment4(1000, options=timestamps())[: 14 + 20 + 32 - cut_a]
    newer = segment4(2000, options=timestamps())[: 14 + 20 + 32 - cut_b]
    result = kept(items(older, newer))
    assert result[-1] == newer
    if cut_a or cut_b:
        assert result == [older, newer]


def test_a_batch_is_worth_thinning_when_it_ends_in_tcp() -> None:
    udp = MACS + b"\x08\x00" + bytes([0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17]) + bytes(30)
    assert ends_in_tcp(items(udp, segment4(1000)))
    assert ends_in_tcp(items(segment6(1000)))
    assert not ends_in_tcp(items(segment4(1000), udp))
    assert not ends_in_tcp(items(segment4(1000)[:40]))

from __future__ import annotations

import random

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from skylan.model.counters import DropCounters
from skylan.tunnel import segments
from skylan.tunnel.reassembly import Reassembler
from skylan.tunnel.wire import DATA_HDR, DATA_HDR_LEN, MAX_CHUNKS, MsgType, fec_groups


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@given(
    st.binary(min_size=1, max_size=5000),
    st.integers(min_value=50, max_value=1400),
    st.randoms(use_true_random=False),
)
def test_any_order_with_duplicates_reassembles(data: bytes, size: int, rnd: random.Random) -> None:
    parts = chunks_of(data, size)
    if len(parts) > 128:
        return
    order = list(range(len(parts)))
    rnd.shuffle(order)
    # duplicates of chunks already delivered, before the set completes (after it,
    # the session's replay window refuses the counter before reassembly)
    for _ in range(3):
        pos = rnd.randrange(len(order))
        if pos > 0:
            order.insert(pos, order[rnd.randrange(pos)])
    drops = DropCounters()
    r = Reassembler(drops)
    results = [r.add(1, i, len(parts), parts[i], 0.0) for i in order]
    assert [x for x in results if x is not None] == [data]
    assert r.bytes_held == 0 and len(r) == 0
    assert drops["reassembly_duplicate"] == len(order) - len(parts)


def test_inconsistent_chunk_sizes_are_refused() -> None:
    drops = DropCounters()
    r = Reassembler(drops)
    assert r.add(1, 0, 3, b"a" * 10, 0) is None
    assert r.add(1, 1, 3, b"b" * 9, 0) is None
    assert r.add(1, 2, 3, b"c", 0) is None
    assert drops["reassembly_bad_sizes"] == 1
    assert r.add(2, 0, 2, b"a", 0) is None
    assert r.add(2, 1, 3, b"b", 0) is None
    assert drops["reassembly_mismatch"] == 1


def test_bounds_hold_under_flood() -> None:
    drops = DropCounters()
    r = Reassembler(drops, max_sets=4, max_bytes=20_000, timeout=0.5)
    for key in range(1000):
        for i in range(3):
            r.add(key, i, 50, bytes(1400), key * 0.001)
        assert len(r) <= 4
        assert r.bytes_held <= 20_000
    r.expire(100.0)
    assert len(r) == 0 and r.bytes_held == 0
    assert drops["reassembly_evicted"] > 0 and drops["reassembly_timeout"] > 0


@given(
    st.lists(
        st.tuples(
            st.integers(0, 1),  # message key
            st.sampled_from([3, 3, 3, 2, 4]),  # chunk count claimed (mostly consistent)
            st.integers(0, 2),  # first chunk index of the block
            st.integers(1, 3),  # rows
            st.sampled_from([100, 100, 100, 60]),  # chunk size (mostly consistent)
            st.sampled_from([None, None, 100, 40, 1, 120]),  # the last chunk too, this long
        ),
        max_size=25,
    ),
    st.integers(150, 4000),  # small enough that one message can be over it
)
def test_blocks_store_exactly_what_chunk_lists_store(
    ops: list[tuple[int, int, int, int, int, int | None]], budget: int
) -> None:
    """add_block is a fast path of add_many: same messages, same counts used,
    same drops and bytes held, whatever the overlaps, sizes, budget and last
    chunk (right behind the rows or not, shorter, as long or longer)."""
    fast_drops, slow_drops = DropCounters(), DropCounters()
    fast = Reassembler(fast_drops, max_sets=3, max_bytes=budget)
    slow = Reassembler(slow_drops, max_sets=3, max_bytes=budget)
    for key, count, first, asked, size, tail_len in ops:
        if first >= count:
            continue
        rows = min(asked, count - first)
        block = np.array(
            [[(key * 31 + first + i) % 251] * size for i in range(rows)], dtype=np.uint8
        )
        chunks = [(first + i, block[i].tobytes()) for i in range(rows)]
        tail = None if tail_len is None else bytes([key + 7]) * tail_len
        if tail is not None:
            chunks.append((count - 1, tail))
        got = fast.add_block(key, count, first, block, 0.0, tail=tail)
        if got is None:
            got = fast.add_many(key, count, chunks, 0.0)
        want = slow.add_many(key, count, chunks, 0.0)
        assert (None if got[0] is None else bytes(got[0]), got[1]) == (
            None if want[0] is None else bytes(want[0]),
            want[1],
        )
        assert fast.bytes_held == slow.bytes_held and len(fast) == len(slow)
        assert fast_drops.by_reason == slow_drops.by_reason


def test_a_block_with_its_last_chunk_is_one_message() -> None:
    drops = DropCounters()
    r = Reassembler(drops)
    block = np.frombuffer(b"a" * 50 + b"b" * 50, np.uint8).reshape(2, 50)
    whole, used = r.add_block(5, 3, 0, block, 0.0, tail=b"c" * 7) or (None, 0)
    assert whole is not None and used == 3
    assert bytes(whole) == b"a" * 50 + b"b" * 50 + b"c" * 7
    assert r.bytes_held == 0 and len(r) == 0 and not drops.by_reason


def test_a_block_completes_a_message_started_by_single_chunks() -> None:
    drops = DropCounters()
    r = Reassembler(drops)
    assert r.add(5, 3, 4, b"d" * 30, 0.0) is None  # the (short) last chunk first
    assert r.add(5, 0, 4, b"a" * 50, 0.0) is None
    block = np.frombuffer(b"b" * 50 + b"c" * 50, np.uint8).reshape(2, 50)
    whole, used = r.add_block(5, 4, 1, block, 0.0) or (None, 0)
    assert whole is not None and used == 2
    assert bytes(whole) == b"a" * 50 + b"b" * 50 + b"c" * 50 + b"d" * 30
    assert r.bytes_held == 0 and not drops.by_reason


@given(
    st.integers(3 * 60, 40_000),
    st.integers(60, 1404),
    st.data(),
)
def test_parity_rebuilds_one_lost_chunk_per_group(
    size: int, chunk: int, data: st.DataObject
) -> None:
    """Whatever arrives in whatever order, the message comes out whole when each
    parity group misses at most one full chunk and the last chunk or its copy
    is in; and the extra datagrams are counted as spares, never as drops."""
    count = -(-size // chunk)
    if count > MAX_CHUNKS or count < 3:
        return
    groups = fec_groups(count)
    message = bytes(data.draw(st.randoms(use_true_random=False)).randbytes(size))
    out, copy = segments.lay_out_fec(
        DATA_HDR.pack(MsgType.DATA, 0, 0, count, 9, 77),
        np.frombuffer(message, np.uint8),
        chunk,
        groups,
    )
    segment = DATA_HDR_LEN + chunk
    flat = out.tobytes()
    datagrams = [flat[i : i + segment] for i in range(0, len(flat), segment)] + [copy]
    lost_rows = {
        g: data.draw(st.none() | st.sampled_from(range(g, count - 1, groups)))
        for g in range(groups)
    }
    lose_last = data.draw(st.sampled_from(["none", "last", "copy"]))
    kept = []
    for d in datagrams:
        _, flags, index, *_ = DATA_HDR.unpack_from(d)
        if not flags and index < count - 1 and lost_rows[index % groups] == index:
            continue
        if index == count - 1 and lose_last == ("copy" if flags else "last"):
            continue
        kept.append((flags, index, d[DATA_HDR_LEN:]))
    order = data.draw(st.permutations(kept))
    drops = DropCounters()
    r = Reassembler(drops)
    wholes = []
    repaired = 0
    for flags, index, payload in order:
        if wholes:
            break  # the session's replay window stops what comes after
        if flags:
            got = r.add_redundant(77, count, index, payload, 0.0)
        else:
            got = r.add(77, index, count, payload, 0.0)
        if got is not None:
            wholes.append(bytes(got))
            repaired = r.repaired
    assert wholes == [message]
    assert not drops.by_reason
    assert repaired <= groups  # one rebuilt chunk per group at most
    assert r.bytes_held == 0 and len(r) == 0

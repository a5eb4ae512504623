from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from skylan.model.counters import DropCounters
from skylan.tunnel.reassembly import Reassembler


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

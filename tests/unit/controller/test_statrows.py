"""Statistics rows pending in memory (service/statrows.py) against the
obvious model: a dict of lists, as the book kept them before."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from skylan.controller.service.statrows import PendingRows

keys = st.tuples(
    st.sampled_from(["n1", "n2"]), st.sampled_from(["total", "p1", "p2"]), st.integers(0, 3)
)
counts = st.tuples(*[st.integers(0, 2**40)] * 5)
rtts = st.none() | st.floats(0, 1000, allow_nan=False)
adds = st.lists(st.tuples(keys, counts, rtts), max_size=40)


def model(entries: list[Any], into: dict[Any, list[Any]] | None = None) -> dict[Any, list[Any]]:
    out = into if into is not None else {}
    for key, c, rtt in entries:
        bucket = out.setdefault(key, [0, 0, 0, 0, 0, None])
        for i in range(5):
            bucket[i] += c[i]
        if rtt is not None:
            bucket[5] = rtt
    return out


def as_dict(rows: PendingRows) -> dict[Any, list[Any]]:
    return {(n, p, m): list(rest) for n, p, m, *rest in rows.rows()}


@given(adds)
def test_rows_sum_like_the_model(entries: list[Any]) -> None:
    rows = PendingRows()
    for key, c, rtt in entries:
        rows.add(key, c, rtt)
    assert as_dict(rows) == model(entries)
    assert len(rows) == len(model(entries))


@given(adds, adds)
def test_taking_back_a_failed_batch_keeps_the_newer_rtt(
    failed: list[Any], newer: list[Any]
) -> None:
    old, now = PendingRows(), PendingRows()
    for key, c, rtt in failed:
        old.add(key, c, rtt)
    for key, c, rtt in newer:
        now.add(key, c, rtt)
    now.take_back(old)
    expected = model(newer)
    for key, bucket in model(failed).items():
        mine = expected.setdefault(key, [0, 0, 0, 0, 0, None])
        for i in range(5):
            mine[i] += bucket[i]
        mine[5] = mine[5] if mine[5] is not None else bucket[5]
    assert as_dict(now) == expected


def test_a_row_without_a_round_trip_time_has_none() -> None:
    rows = PendingRows()
    rows.add(("n", "total", 1), (1, 2, 3, 4, 5), None)
    assert list(rows.rows()) == [("n", "total", 1, 1, 2, 3, 4, 5, None)]

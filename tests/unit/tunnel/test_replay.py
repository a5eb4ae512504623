from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from skylan.tunnel.replay import WINDOW, ReplayWindow


def test_window_basics() -> None:
    w = ReplayWindow()
    assert w.accept(0)
    assert not w.accept(0)
    assert w.accept(5)
    assert w.accept(3)
    assert not w.accept(3)
    assert w.accept(5 + WINDOW - 1)
    assert w.check(6)  # still inside the window and unseen
    assert w.accept(10 * WINDOW)
    assert not w.check(5 + WINDOW - 1)  # now too old
    assert WINDOW >= 2048


@given(st.lists(st.integers(min_value=0, max_value=3 * WINDOW), max_size=300))
def test_window_matches_a_reference_model(counters: list[int]) -> None:
    w = ReplayWindow()
    seen: set[int] = set()
    top = -1
    for c in counters:
        expected = c not in seen and (c > top or top - c < WINDOW)
        assert w.check(c) == expected
        assert w.accept(c) == expected
        if expected:
            seen.add(c)
            top = max(top, c)

"""The failed-authentication backoff, on a fake clock."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from skylan.controller.lockout import Lockout, LockoutPolicy


def test_a_burst_is_free_then_lockouts_double_up_to_the_cap() -> None:
    lock = Lockout(LockoutPolicy(burst=3, forgive_s=1000, base_s=1, max_s=8))
    now = 0.0
    for _ in range(3):
        assert lock.retry_after("a", now) is None
        lock.failed("a", now)
    assert lock.retry_after("a", now) is None  # three failures: still free
    waits = []
    for _ in range(6):
        lock.failed("a", now)
        wait = lock.retry_after("a", now)
        assert wait is not None
        waits.append(wait)
        now += wait  # it waits exactly as told, then fails again
        assert lock.retry_after("a", now) is None
    assert waits == [1, 2, 4, 8, 8, 8]
    assert lock.retry_after("b", now) is None  # other sources are not affected


def test_failures_are_forgiven_with_time() -> None:
    lock = Lockout(LockoutPolicy(burst=2, forgive_s=10))
    for _ in range(3):
        lock.failed("a", 0.0)
    assert lock.retry_after("a", 0.0) == 1
    lock.failed("a", 100.0)  # ten forgiven since: level 1, no lockout
    assert lock.retry_after("a", 100.0) is None


def test_the_table_is_bounded() -> None:
    lock = Lockout(LockoutPolicy(max_sources=100))
    for i in range(1000):
        lock.failed(f"10.0.{i // 256}.{i % 256}", float(i))
    assert len(lock) == 100


@given(st.lists(st.floats(0, 10), max_size=200))
@settings(max_examples=300)
def test_a_guesser_never_gets_more_tries_than_the_policy_allows(gaps: list[float]) -> None:
    """However the attempts are spaced, within T seconds a source gets at most
    burst + T / forgive_s tries, plus the few that fit in lockouts shorter than
    the forgiving interval before the doubling waits outgrow it
    (log2(forgive_s / base_s) + 2 of them)."""
    policy = LockoutPolicy(burst=5, forgive_s=6)
    lock = Lockout(policy)
    now, tried = 0.0, 0
    for gap in gaps:
        now += gap
        if lock.retry_after("x", now) is None:
            lock.failed("x", now)
            tried += 1
    slack = math.log2(policy.forgive_s / policy.base_s) + 2
    assert tried <= policy.burst + now / policy.forgive_s + slack

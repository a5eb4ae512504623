"""The lane pairing rule: total, symmetric, and minimal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skylan.dataplane.lanepairs import paired_lanes, send_lane

lane_counts = st.integers(min_value=1, max_value=64)


@given(lane_counts, lane_counts)
def test_both_ends_of_every_tunnel_know_it(ours: int, theirs: int) -> None:
    for lane in range(ours):
        for peer_lane in paired_lanes(lane, ours, theirs):
            assert lane in paired_lanes(peer_lane, theirs, ours)


@given(lane_counts, lane_counts)
def test_every_send_has_a_tunnel_and_every_tunnel_carries_sends(ours: int, theirs: int) -> None:
    tunnels = {(lane, p) for lane in range(ours) for p in paired_lanes(lane, ours, theirs)}
    ours_send = {(lane, send_lane(lane, theirs)) for lane in range(ours)}
    theirs_send = {(send_lane(p, ours), p) for p in range(theirs)}
    assert tunnels == ours_send | theirs_send


def test_equal_lane_counts_pair_lane_with_lane() -> None:
    assert [paired_lanes(lane, 4, 4) for lane in range(4)] == [[0], [1], [2], [3]]
    assert paired_lanes(0, 1, 3) == [0, 1, 2]  # one lane talks to all three
    assert [paired_lanes(lane, 3, 1) for lane in range(3)] == [[0], [0], [0]]


def test_out_of_range_lanes_are_refused() -> None:
    with pytest.raises(ValueError):
        paired_lanes(2, 2, 1)
    with pytest.raises(ValueError):
        paired_lanes(0, 1, 0)

"""The agent's statistics bookkeeping: deltas, numbering, and which reports
go again after a controller process changes (restart, failover)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from skylan.agent.reports import StatsReporter
from skylan.model.agentapi import MAX_PENDING_REPORTS, MAX_REPORTED, StatsReport
from skylan.model.agentstatus import LaneStatus


def status(tx: int, rx: int = 0, *, drops: int = 0) -> LaneStatus:
    counters = {"tx_bytes": tx, "rx_bytes": rx, "tx_packets": tx // 100, "rx_packets": 0}
    return LaneStatus.model_validate(
        {
            "lane": 0,
            "peers": {"peer-1": {**counters, "rtt_ms": 2.0}},
            "interfaces": {"tap0": {**counters, "network_id": "net-1"}},
            "drops": {"bad mac": drops},
        }
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def test_reports_are_deltas_with_increasing_numbers() -> None:
    r = StatsReporter(clock=Clock())
    first = r.take(status(1000, 10, drops=1))
    second = r.take(status(1500, 10, drops=4))
    assert (first.total.tx_bytes, first.total.rx_bytes, first.total.drops) == (1000, 10, 1)
    assert (second.total.tx_bytes, second.total.rx_bytes, second.total.drops) == (500, 0, 3)
    assert second.drops_by_reason == {"bad mac": 3}
    assert first.seq is not None and second.seq is not None and second.seq > first.seq
    assert second.ports[0].tx_bytes == 500


def test_a_counter_that_went_back_counts_nothing_not_negative() -> None:
    r = StatsReporter(clock=Clock())
    r.take(status(5000))
    assert r.take(status(100)).total.tx_bytes == 0  # the data plane restarted


def test_numbers_keep_increasing_across_a_restart_with_a_slow_clock() -> None:
    clock = Clock()
    saved: list[int] = []
    r = StatsReporter(clock=clock, save_seq=saved.append)
    r.take(status(1))
    clock.now -= 3600  # the wall clock stepped back an hour
    again = StatsReporter(last_seq=saved[-1], clock=clock)
    report = again.take(status(2))
    assert report.seq is not None and report.seq > saved[0]


def test_stored_reports_are_dropped_and_held_ones_not_sent_again() -> None:
    r = StatsReporter(clock=Clock())
    a, b = r.take(status(1)), r.take(status(2))
    assert r.held_by() is None
    sent = r.unsent()
    assert sent == [a, b]
    assert a.seq is not None
    r.answered(sent, stored=a.seq, epoch="p1", held_by=None)
    assert r.pending == [b]
    assert r.unsent() == [] and r.held_by() == "p1"
    c = r.take(status(3))
    assert r.unsent() == [c]


def test_another_process_takes_nothing_and_everything_goes_again_in_order() -> None:
    """The failover: p1 held b and c in memory and died. The next sync (to p2)
    says held_by=p1, so p2 took none of it; then b, c and d go, oldest first."""
    r = StatsReporter(clock=Clock())
    b, c = r.take(status(1)), r.take(status(2))
    r.answered(r.unsent(), stored=0, epoch="p1", held_by=None)
    d = r.take(status(3))
    body = r.unsent()
    assert body == [d]
    r.answered(body, stored=0, epoch="p2", held_by=r.held_by())
    assert r.held_by() is None
    assert r.unsent() == [b, c, d]


def test_a_restart_of_the_same_process_name_is_a_different_epoch() -> None:
    r = StatsReporter(clock=Clock())
    r.take(status(1))
    r.answered(r.unsent(), stored=0, epoch="p1", held_by=None)
    r.answered([], stored=0, epoch="p1-restarted", held_by="p1")
    assert len(r.unsent()) == 1


def test_out_of_reach_reports_merge_and_keep_their_sum() -> None:
    r = StatsReporter(clock=Clock())
    total = 0
    for i in range(1, MAX_PENDING_REPORTS + 20):
        r.take(status(i * 1000))
        total = i * 1000
    assert len(r.pending) <= MAX_PENDING_REPORTS
    assert sum(p.total.tx_bytes for p in r.pending) == total


@given(st.lists(st.integers(min_value=0, max_value=2 * MAX_REPORTED), min_size=1, max_size=30))
def test_any_counter_sequence_gives_bounded_non_negative_deltas(values: list[int]) -> None:
    r = StatsReporter(clock=Clock())
    reports: list[StatsReport] = [r.take(status(v)) for v in values]
    for report in reports:
        assert 0 <= report.total.tx_bytes <= MAX_REPORTED
    assert [x.seq for x in reports] == sorted({x.seq for x in reports})


def test_a_floating_address_or_a_candidate_is_told_before_the_next_heartbeat() -> None:
    from skylan.agent.daemon import candidates_of, heartbeat_news, seen_ips_of

    quiet = status(1)
    sent = candidates_of(quiet), seen_ips_of(quiet)
    assert heartbeat_news(quiet, *sent) is None
    took_vip = quiet.model_copy(deep=True)
    took_vip.interfaces["tap0"].announced = ["172.16.1.100"]
    assert heartbeat_news(took_vip, *sent) == "floating addresses"
    assert heartbeat_news(took_vip, candidates_of(took_vip), seen_ips_of(took_vip)) is None
    learnt = quiet.model_copy(update={"reflexive": "203.0.113.7:51820"})
    assert heartbeat_news(learnt, *sent) == "candidates"
    assert heartbeat_news(quiet, None, None) == "candidates"  # nothing sent yet

"""Which handshake initiations get DH work: load, per-source buckets, bounds."""

from __future__ import annotations

from skylan.tunnel import admission
from skylan.tunnel.admission import HandshakeAdmission
from skylan.tunnel.config import TunnelConfig


def test_load_is_the_last_seconds_initiations() -> None:
    a = HandshakeAdmission(TunnelConfig(handshake_load_threshold=3))
    for t in (10.0, 10.2, 10.4):
        assert not a.under_load(t)
        a.processing(t)
    assert a.under_load(10.5) and a.processed == 3
    assert a.under_load(10.95)  # all three within the last second
    assert not a.under_load(11.05)  # 10.0 is not any more
    a.processing(11.1)
    assert a.under_load(11.1)  # 10.2, 10.4 and 11.1
    assert not a.under_load(12.0)


def test_each_source_has_a_bucket_that_refills() -> None:
    a = HandshakeAdmission(
        TunnelConfig(handshake_per_source_burst=2.0, handshake_per_source_rate=4.0)
    )
    assert [a.source_allows("198.18.0.1", 0.0) for _ in range(3)] == [True, True, False]
    assert a.source_allows("198.18.0.2", 0.0)  # another address is not held back
    assert not a.source_allows("198.18.0.1", 0.1)  # 0.4 of a token since
    assert a.source_allows("198.18.0.1", 0.3)  # a whole one now
    assert [a.source_allows("198.18.0.1", 10.0) for _ in range(3)] == [True, True, False]


def test_buckets_are_bounded_and_the_least_recent_goes() -> None:
    a = HandshakeAdmission(TunnelConfig(handshake_per_source_burst=1.0))
    assert a.source_allows("first", 0.0)
    for i in range(admission.MAX_SOURCES):
        a.source_allows(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 1.0)
    assert len(a._sources) == admission.MAX_SOURCES
    assert a.source_allows("first", 1.0)  # forgotten: a fresh, full bucket

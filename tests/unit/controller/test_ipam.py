"""The address pool against the simplest model of it: a set of taken
addresses and a scan from the network's first host."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from skylan.controller.ipam import AddressPool, candidates

NET = "10.0.0.0/19"  # 8,190 hosts: spans two bitmap chunks
HOSTS = [str(ip) for ip in ipaddress.IPv4Network(NET).hosts()]
# addresses where the chunks meet, the ends of the network, and some others
EDGES = (0, 4094, 4095, 4096, 4097, 8189)
NEAR = [i for c in EDGES for i in range(max(c - 2, 0), min(c + 3, 8190))]
address = st.one_of(st.sampled_from([HOSTS[i] for i in NEAR]), st.sampled_from(HOSTS))


def model_candidates(taken: set[str], limit: int) -> list[str]:
    return [ip for ip in HOSTS if ip not in taken][:limit]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), address), max_size=60), st.integers(1, 8))
def test_pool_agrees_with_a_set(steps: list[tuple[bool, str]], limit: int) -> None:
    pool = AddressPool(NET)
    taken: set[str] = set()
    for take, ip in steps:
        if take:
            pool.take(ip)
            taken.add(ip)
        else:
            pool.release(ip)
            taken.discard(ip)
        assert len(pool) == len(taken)
        assert (ip in pool) == (ip in taken)
        assert pool.candidates(limit) == model_candidates(taken, limit)


def test_taking_in_order_hands_out_the_next_address() -> None:
    pool = AddressPool(NET)
    for ip in HOSTS[:5000]:
        assert pool.candidates(1) == [ip]
        pool.take(ip)
    assert len(pool) == 5000
    pool.release(HOSTS[17])
    assert pool.candidates(2) == [HOSTS[17], HOSTS[5000]]


def test_a_full_small_network_has_no_candidates() -> None:
    assert candidates("10.2.0.0/30", ["10.2.0.1", "10.2.0.2"]) == []
    assert candidates("10.2.0.0/31", []) == ["10.2.0.0", "10.2.0.1"]
    assert candidates("10.2.0.7/32", []) == ["10.2.0.7"]

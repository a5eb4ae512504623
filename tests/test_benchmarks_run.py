"""The benchmark scripts keep working (tiny sizes; the numbers are not judged)."""

from __future__ import annotations

import pytest

from tests.benchscripts import run


def test_tunnel_crypto_benchmark() -> None:
    out = run("tunnel_crypto.py", "--seconds", "0.2")
    assert "64 KB super-frame" in out and "1400 B packet" in out


def test_idle_cost_benchmark() -> None:
    out = run("idle_cost.py", "--samples", "5", "--pauses", "0", "0.01")
    assert "seal us" in out and len(out.strip().splitlines()) == 4


def test_wakeup_floor_benchmark() -> None:
    out = run("wakeup_floor.py", "--samples", "5", "--pauses", "0", "0.01")
    lines = out.strip().splitlines()
    assert "Python relays" in lines[1] and len(lines) == 4
    direct, relayed = (float(cell) for cell in lines[3].split()[2:4])
    assert direct > 0 and relayed > 0


@pytest.mark.slow
def test_netmap_fanout_benchmark() -> None:
    out = run("netmap_fanout.py", "--nodes", "30")
    assert "change -> all long-polls answered (ms)" in out
    assert "controller memory per node (KiB)" in out

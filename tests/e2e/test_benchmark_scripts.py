"""The benchmark scripts that build labs keep working (tiny sizes; the numbers
are not judged). The others are in tests/test_benchmarks_run.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchscripts import run


@pytest.mark.slow
def test_throughput_benchmark(tmp_path: Path) -> None:
    png = tmp_path / "throughput.png"
    out = run(
        "throughput.py",
        *("--seconds", "1", "--runs", "1", "--streams", "1", "--loss", "0.5"),
        *("--png", str(png), "--json"),
    )
    report = json.loads(out)
    cases = {
        "native veth",
        "kernel VXLAN",
        "skylan encrypted (native)",
        "skylan unencrypted",
        "skylan 2 workers",
    }
    assert set(report["results"]) == cases
    assert set(report["lossy_tcp1"]) == cases
    for r in report["results"].values():
        assert r["tcp1"] > 0 and r["rtt_ms"] > 0 and r["udp64_kpps"] > 0 and r["cpu"] > 0
        assert r["rtt_b2b_ms"] > 0 and r["cpu1"] == r["cpu"]
    assert all(v > 0 for v in report["lossy_tcp1"].values())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_app_benchmark(tmp_path: Path) -> None:
    png = tmp_path / "app.png"
    out = run(
        "app.py",
        *("--runs", "1", "--seconds", "1", "--scale", "1", "--python"),
        *("--png", str(png), "--json"),
    )
    report = json.loads(out)
    assert set(report["medians"]) == {
        "native underlay",
        "native + app TLS",
        "skylan encrypted (native)",
        "skylan unencrypted (VXLAN)",
        "skylan encrypted (python)",
    }
    for figures in report["medians"].values():
        assert set(figures) == {
            "pg_S1",
            "pg_S16",
            "pg_N8",
            "copy_MBps",
            "get",
            "set",
            "get_p16",
            "set_p16",
        }
        assert all(v > 0 for v in figures.values())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_relay_throughput_benchmark() -> None:
    report = json.loads(run("relay_throughput.py", "--seconds", "1", "--runs", "1", "--json"))
    assert report["tcp1_gbps"]["direct"][0] > 0 and report["tcp1_gbps"]["relayed"][0] > 0
    assert report["rtt_b2b_ms"]["relayed"][0] > 0 and len(report["relayed_over_direct"]) == 1


def test_guard_scale_benchmark() -> None:
    out = run("guard_scale.py", "--members", "10", "50", "--runs", "1")
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["10"], ["50"])]
    assert [(r[0], r[1], r[-1]) for r in rows] == [
        ("10", "allow", "0"),
        ("10", "deny", "10"),  # 5 web members, an IPv4 and an IPv6 address each
        ("50", "allow", "0"),
        ("50", "deny", "50"),
    ]

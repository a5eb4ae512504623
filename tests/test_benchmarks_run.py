"""The benchmark scripts keep working (tiny sizes; the numbers are not judged)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


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


@pytest.mark.slow
@pytest.mark.e2e
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
@pytest.mark.e2e
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
@pytest.mark.e2e
def test_relay_throughput_benchmark() -> None:
    report = json.loads(run("relay_throughput.py", "--seconds", "1", "--runs", "1", "--json"))
    assert report["tcp1_gbps"]["direct"][0] > 0 and report["tcp1_gbps"]["relayed"][0] > 0
    assert report["rtt_b2b_ms"]["relayed"][0] > 0 and len(report["relayed_over_direct"]) == 1

"""A relayed path against a direct one, measured in the same run.

    .venv/bin/python benchmarks/relay_throughput.py [--seconds 5] [--runs 5] [--json]

Two pairs of nodes in one lab, with one controller and one relay:
``direct``, two nodes each behind an endpoint-independent NAT (they punch
through to each other), and ``relayed``, two nodes each behind a symmetric
NAT (they can only meet through the relay). For each, interleaved over
``--runs`` (so the machine's drift hits both alike): iperf3 TCP with one
stream over the overlay, and ping RTT back to back (``ping -f``). Prints the
median with its range, and relayed/direct. Needs root.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from iperf3client import iperf3
from skylan.lab import Host, Lab
from skylan.lab.nat import NatType
from skylan.lab.product import Deployment
from skylan.lab.waiting import wait_for


def iperf(client: Host, server_ip: str, seconds: int) -> float:
    received = iperf3(client, server_ip, seconds)["end"].get("sum_received")
    if received is None:
        raise RuntimeError(f"iperf3 to {server_ip}: no received total")
    return float(received["bits_per_second"]) / 1e9


def rtt_ms(client: Host, server_ip: str) -> float:
    res = client.run(["ping", "-n", "-q", "-f", "-c", "2000", server_ip], timeout=60)
    found = re.search(r"= [\d.]+/([\d.]+)/", res.stdout)
    if found is None:
        raise RuntimeError(f"ping {server_ip} failed: {res.stdout[-300:]}")
    return float(found.group(1))


def spread(values: list[float], digits: int = 2) -> str:
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}..{max(values):.{digits}f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, Lab() as lab:
        ctl, relay = lab.add_host("ctl"), lab.add_host("relay")
        pairs = {
            "direct": (lab.add_host("d1", nat=NatType.EIM), lab.add_host("d2", nat=NatType.EIM)),
            "relayed": (
                lab.add_host("r1", nat=NatType.SYMMETRIC),
                lab.add_host("r2", nat=NatType.SYMMETRIC),
            ),
        }
        sky = Deployment(Path(work))
        sky.start_controller(ctl)
        sky.start_relay(relay, "relay")
        sky.admin("net", "create", "bench", "--cidr", "172.16.9.0/24", "--encrypted")
        token = sky.admin("token", "create", "--network", "bench", "--uses", "4", "--json")
        for a, b in pairs.values():
            sky.join(a, token["token"])
            sky.join(b, token["token"])

        def addresses() -> dict[str, str] | None:
            nodes = sky.admin("node", "list", "--json")
            found = {n["name"]: n["networks"][0]["ipv4"] for n in nodes if n["networks"]}
            return found if len(found) == 4 else None

        ips = wait_for("the nodes' addresses", addresses, timeout=60)
        assert isinstance(ips, dict)
        for name, (a, b) in pairs.items():
            wait_for(f"{name} pair up", lambda a=a, b=b: a.ping(ips[b.name], timeout=1), 30)
            b.spawn(["iperf3", "-s", "-p", "5201"])
            b.wait_listening(5201)

        def path(a: Host, b: Host) -> str:
            status = sky.status(a)
            peers = [p for n in status["networks"] for p in n["peers"] if p["name"] == b.name]
            return str(peers[0]["tunnel"]["path"]) if peers and peers[0]["tunnel"] else "?"

        for name, want in (("direct", "reflexive"), ("relayed", "relay")):
            a, b = pairs[name]
            wait_for(f"{name} on its path", lambda a=a, b=b, w=want: path(a, b) == w, 20)
        tcp: dict[str, list[float]] = {name: [] for name in pairs}
        rtt: dict[str, list[float]] = {name: [] for name in pairs}
        for _ in range(args.runs):
            for name, (a, b) in pairs.items():
                tcp[name].append(iperf(a, ips[b.name], args.seconds))
                rtt[name].append(rtt_ms(a, ips[b.name]))
    ratios = [r / d for r, d in zip(tcp["relayed"], tcp["direct"], strict=True)]
    if args.json:
        print(json.dumps({"tcp1_gbps": tcp, "rtt_b2b_ms": rtt, "relayed_over_direct": ratios}))
        return
    print(f"{'path':<10} {'TCP 1 stream Gbit/s':>26} {'RTT back to back ms':>26}")
    for name in pairs:
        print(f"{name:<10} {spread(tcp[name]):>26} {spread(rtt[name], 3):>26}")
    print(f"relayed/direct TCP: {spread(ratios)} (each run's pair of measurements)")


if __name__ == "__main__":
    main()

"""TCP throughput through skylan against native veth and kernel VXLAN, all
measured in the same run on the same two lab hosts.

    .venv/bin/python benchmarks/throughput.py [--seconds 5] [--runs 3] [--streams 1]

Prints the median Gbit/s of each case over ``--runs`` iperf3 runs and the ratio
to native veth. Needs root (it builds a namespace lab).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skylan.lab import Host, Lab
from skylan.lab.product import Deployment, wait_for

VXLAN_NET = "10.250.0"


def iperf(client: Host, server_ip: str, seconds: int, streams: int) -> float:
    res = client.run(
        ["iperf3", "-c", server_ip, "-p", "5201", "-t", str(seconds), "-P", str(streams), "-J"],
        timeout=seconds + 60,
    )
    if not res.ok:
        raise RuntimeError(f"iperf3 to {server_ip} failed: {res.stdout[-500:]} {res.stderr}")
    return float(json.loads(res.stdout)["end"]["sum_received"]["bits_per_second"]) / 1e9


def kernel_vxlan(a: Host, b: Host) -> str:
    for host, peer, n in ((a, b, 1), (b, a, 2)):
        host.run(
            [
                "ip",
                "link",
                "add",
                "vx0",
                "type",
                "vxlan",
                "id",
                "42",
                "remote",
                peer.underlay_ip,
                "dstport",
                "4789",
                "dev",
                "eth0",
            ],
            check=True,
        )
        host.run(["ip", "addr", "add", f"{VXLAN_NET}.{n}/24", "dev", "vx0"], check=True)
        host.run(["ip", "link", "set", "vx0", "up"], check=True)
    return f"{VXLAN_NET}.2"


def skylan_overlay(lab: Lab, a: Host, b: Host, workdir: Path) -> tuple[str, str]:
    """One encrypted and one unencrypted (kernel VXLAN) network between a and b;
    returns b's address in each."""
    sky = Deployment(workdir)
    sky.start_controller(lab.add_host("ctl"))
    sky.admin("net", "create", "bench", "--cidr", "172.16.1.0/24")
    sky.admin("net", "create", "plain", "--cidr", "172.16.2.0/24", "--unencrypted")
    token = sky.admin(
        "token", "create", "--network", "bench", "--network", "plain", "--uses", "2", "--json"
    )["token"]
    sky.join(a, token)
    sky.join(b, token)

    def attached() -> dict[str, dict[str, str]] | None:
        nodes = sky.admin("node", "list", "--json")
        if len(nodes) != 2 or not all(len(n["networks"]) == 2 for n in nodes):
            return None
        return {n["name"]: {m["network"]: m["ipv4"] for m in n["networks"]} for n in nodes}

    b_ips = wait_for("both nodes attached", attached, timeout=60)["b"]
    for ip in b_ips.values():
        wait_for(f"{ip} to answer", lambda i=ip: a.ping(i, count=1, timeout=1), timeout=30)
    return b_ips["bench"], b_ips["plain"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="skylan-tput-") as tmp:
        a, b = lab.add_host("a"), lab.add_host("b")
        b.spawn(["iperf3", "-s", "-p", "5201"])
        time.sleep(0.5)
        encrypted, plain = skylan_overlay(lab, a, b, Path(tmp))
        targets = {
            "native veth": b.underlay_ip,
            "kernel VXLAN": kernel_vxlan(a, b),
            "skylan (AES-256-GCM)": encrypted,
            "skylan unencrypted": plain,
        }
        results: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.runs):  # interleaved, so drift hits every case alike
            for name, ip in targets.items():
                results[name].append(iperf(a, ip, args.seconds, args.streams))
    medians = {name: statistics.median(v) for name, v in results.items()}
    native = medians["native veth"]
    if args.json:
        print(json.dumps({"medians_gbps": medians, "runs": results}, indent=2))
        return
    print(f"TCP, {args.streams} stream(s), {args.seconds} s x {args.runs} runs (median)")
    print(f"{'case':<24}{'Gbit/s':>10}{'x native':>10}")
    for name, gbps in medians.items():
        print(f"{name:<24}{gbps:>10.2f}{gbps / native:>10.2f}")


if __name__ == "__main__":
    main()

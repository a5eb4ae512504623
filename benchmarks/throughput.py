"""TCP throughput through skylan against native veth and kernel VXLAN, all
measured in the same run on the same two lab hosts.

    .venv/bin/python benchmarks/throughput.py [--seconds 5] [--runs 3] [--streams 1 4]

Prints the median Gbit/s of each case over ``--runs`` iperf3 runs for each
stream count, the ratio to native veth, and the CPU the skylan agents used
(and per Gbit/s). Needs root (it builds a namespace lab).
"""

from __future__ import annotations

import argparse
import json
import os
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


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time so far of the given processes."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def skylan_overlay(lab: Lab, a: Host, b: Host, workdir: Path) -> tuple[str, str, list[int]]:
    """One encrypted and one unencrypted (kernel VXLAN) network between a and b;
    returns b's address in each and the agents' PIDs."""
    sky = Deployment(workdir)
    sky.start_controller(lab.add_host("ctl"))
    sky.admin("net", "create", "bench", "--cidr", "172.16.1.0/24")
    sky.admin("net", "create", "plain", "--cidr", "172.16.2.0/24", "--unencrypted")
    token = sky.admin(
        "token", "create", "--network", "bench", "--network", "plain", "--uses", "2", "--json"
    )["token"]
    agents = [sky.join(a, token).pid, sky.join(b, token).pid]

    def attached() -> dict[str, dict[str, str]] | None:
        nodes = sky.admin("node", "list", "--json")
        if len(nodes) != 2 or not all(len(n["networks"]) == 2 for n in nodes):
            return None
        return {n["name"]: {m["network"]: m["ipv4"] for m in n["networks"]} for n in nodes}

    b_ips = wait_for("both nodes attached", attached, timeout=60)["b"]
    for ip in b_ips.values():
        wait_for(f"{ip} to answer", lambda i=ip: a.ping(i, count=1, timeout=1), timeout=30)
    return b_ips["bench"], b_ips["plain"], agents


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="skylan-tput-") as tmp:
        a, b = lab.add_host("a"), lab.add_host("b")
        b.spawn(["iperf3", "-s", "-p", "5201"])
        time.sleep(0.5)
        encrypted, plain, agents = skylan_overlay(lab, a, b, Path(tmp))
        targets = {
            "native veth": b.underlay_ip,
            "kernel VXLAN": kernel_vxlan(a, b),
            "skylan (AES-256-GCM)": encrypted,
            "skylan unencrypted": plain,
        }
        gbps: dict[str, dict[int, list[float]]] = {
            n: {s: [] for s in args.streams} for n in targets
        }
        cpu: dict[str, list[float]] = {n: [] for n in targets}
        for _ in range(args.runs):  # interleaved, so drift hits every case alike
            for name, ip in targets.items():
                for streams in args.streams:
                    before = cpu_seconds(agents)
                    gbps[name][streams].append(iperf(a, ip, args.seconds, streams))
                    if streams == args.streams[0]:  # agents' CPU, 100 = one core
                        cpu[name].append((cpu_seconds(agents) - before) / args.seconds * 100)
    medians = {n: {s: statistics.median(v) for s, v in per.items()} for n, per in gbps.items()}
    cpu_pct = {n: statistics.median(v) for n, v in cpu.items()}
    if args.json:
        print(
            json.dumps(
                {
                    "medians_gbps": {n: m[args.streams[0]] for n, m in medians.items()},
                    "by_streams": medians,
                    "agents_cpu_pct": cpu_pct,
                    "runs": gbps,
                },
                indent=2,
            )
        )
        return
    first = args.streams[0]
    native = medians["native veth"]
    print(
        f"TCP, {args.seconds} s x {args.runs} runs (median); CPU = skylan agents, "
        f"{first} stream(s), 100 = one core"
    )
    head = "".join(f"{f'{s} str Gb/s':>13}{'x native':>10}" for s in args.streams)
    print(f"{'case':<24}{head}{'agent CPU %':>13}{'CPU %/Gbit':>12}")
    for name, per in medians.items():
        cols = "".join(f"{per[s]:>13.2f}{per[s] / native[s]:>10.2f}" for s in args.streams)
        busy = cpu_pct[name] if name.startswith("skylan") else float("nan")
        per_gbit = busy / per[first] if name.startswith("skylan") else float("nan")
        print(f"{name:<24}{cols}{busy:>13.0f}{per_gbit:>12.1f}")


if __name__ == "__main__":
    main()

"""skylan's data planes against native veth and kernel VXLAN, all measured in
the same run on the same two lab hosts.

    .venv/bin/python benchmarks/throughput.py [--seconds 5] [--runs 3] [--streams 1 4]
        [--workers 2] [--loss 0.5] [--png docs/images/throughput.png] [--json]

For each case, the median over ``--runs`` (interleaved, so drift hits every
case alike) of: iperf3 TCP Gbit/s for each stream count and its ratio to
native veth; ping RTT at idle and back to back (``ping -f``), and what each
adds over native; iperf3 UDP with
64-byte datagrams (thousand packets per second received); the machine's busy
CPU during the first TCP case and per Gbit/s, and the skylan agents' own CPU
(with their worker lanes). ``--workers N`` adds a case on a second pair of
hosts whose agents run N worker lanes (one TAP queue and process each).
With ``--loss`` it measures TCP again with that much loss on the underlay
(each wire-sized datagram, each way), and ``--png`` draws the table. Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from iperf3client import iperf3
from skylan.lab import Host, Lab
from skylan.lab.product import Deployment
from skylan.lab.waiting import wait_for

VXLAN_NET = "10.250.0"


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs so far, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def rtt_ms(client: Host, server_ip: str, *, back_to_back: bool = False) -> float:
    """Average ping RTT: at idle (every 10 ms: each hop wakes a sleeping CPU),
    or back to back (``ping -f``: the next request leaves as the reply comes,
    so the path's CPUs stay awake and only the processing is measured)."""
    pace = ["-f", "-c", "2000"] if back_to_back else ["-c", "100", "-i", "0.01"]
    res = client.run(["ping", "-n", "-q", *pace, server_ip], timeout=60)
    found = re.search(r"= [\d.]+/([\d.]+)/", res.stdout)
    if found is None:
        raise RuntimeError(f"ping {server_ip} failed: {res.stdout[-300:]}")
    return float(found.group(1))


def udp64_kpps(client: Host, server_ip: str, seconds: int) -> float:
    end = iperf3(client, server_ip, seconds, "-u", "-l", "64", "-b", "0")["end"]["sum"]
    return (end["packets"] - end["lost_packets"]) / end["seconds"] / 1000


def iperf(client: Host, server_ip: str, seconds: int, streams: int) -> float:
    received = iperf3(client, server_ip, seconds, "-P", str(streams))["end"].get("sum_received")
    if received is None:
        raise RuntimeError(f"iperf3 to {server_ip}: no received total")
    return float(received["bits_per_second"]) / 1e9


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


@dataclass
class Target:
    """One case: where iperf3 runs from, the address it measures, and the
    skylan processes whose CPU counts for it."""

    client: Host
    ip: str
    pids: list[int] = field(default_factory=list)


def skylan_overlay(
    lab: Lab, hosts: list[Host], workdir: Path, workers: int, python: bool = False
) -> dict[str, Target]:
    """An encrypted and an unencrypted (kernel VXLAN) network between hosts
    0 and 1; with ``workers`` > 1 also an encrypted one between hosts 2 and 3,
    whose agents run that many worker lanes; with ``python`` an encrypted one
    between the next two hosts on the Python data plane. Returns the skylan
    cases."""
    a, b = hosts[0], hosts[1]
    sky = Deployment(workdir)
    sky.start_controller(lab.add_host("ctl"))
    sky.admin("net", "create", "bench", "--cidr", "172.16.1.0/24")
    sky.admin("net", "create", "plain", "--cidr", "172.16.2.0/24", "--unencrypted")
    token = sky.admin(
        "token", "create", "--network", "bench", "--network", "plain", "--uses", "2", "--json"
    )["token"]
    # the default data plane, whatever $SKYLAN_AGENT_DATAPLANE says
    agents = [sky.join(h, token, dataplane="auto").pid for h in (a, b)]
    members = {a.name: 2, b.name: 2}
    if workers > 1:
        c, d = hosts[2], hosts[3]
        sky.admin("net", "create", "lanes", "--cidr", "172.16.3.0/24")
        token = sky.admin("token", "create", "--network", "lanes", "--uses", "2", "--json")["token"]
        lane_agents = [sky.join(h, token, workers=workers, dataplane="auto").pid for h in (c, d)]
        members |= {c.name: 1, d.name: 1}
    if python:
        e, f = hosts[-2], hosts[-1]
        sky.admin("net", "create", "py", "--cidr", "172.16.4.0/24")
        token = sky.admin("token", "create", "--network", "py", "--uses", "2", "--json")["token"]
        py_agents = [sky.join(h, token, dataplane="python").pid for h in (e, f)]
        members |= {e.name: 1, f.name: 1}

    def attached() -> dict[str, dict[str, str]] | None:
        nodes = sky.admin("node", "list", "--json")
        if {n["name"]: len(n["networks"]) for n in nodes} != members:
            return None
        return {n["name"]: {m["network"]: m["ipv4"] for m in n["networks"]} for n in nodes}

    ips = wait_for("the nodes attached", attached, timeout=60)
    kind = sky.status(a)["dataplane"].get("dataplane", "python")
    cases = {
        f"skylan encrypted ({kind})": Target(a, ips[b.name]["bench"], agents),
        "skylan unencrypted": Target(a, ips[b.name]["plain"], agents),
    }
    if python:
        cases["skylan encrypted (python)"] = Target(hosts[-2], ips[hosts[-1].name]["py"], py_agents)
    if workers > 1:
        cases[f"skylan {workers} workers"] = Target(c, ips[d.name]["lanes"], lane_agents)

        def lanes_up() -> list[int] | None:
            pids = []
            for host in (c, d):
                lanes = sky.status(host)["dataplane"].get("lanes", [])
                if len(lanes) != workers or not all(x["established"] for x in lanes):
                    return None
                pids += [x["pid"] for x in lanes[1:]]
            return pids

        cases[f"skylan {workers} workers"].pids += wait_for("the lanes up", lanes_up, timeout=60)
    for target in cases.values():
        wait_for(
            f"{target.ip} to answer",
            lambda t=target: t.client.ping(t.ip, count=1, timeout=1),
            timeout=30,
        )
    return cases


Results = dict[str, dict[str, float]]


def measure(args: argparse.Namespace, targets: dict[str, Target]) -> Results:
    first = args.streams[0]
    samples: dict[str, dict[str, list[float]]] = {n: {} for n in targets}

    def add(name: str, key: str, value: float) -> None:
        samples[name].setdefault(key, []).append(value)

    for _ in range(args.runs):  # interleaved, so drift hits every case alike
        for name, t in targets.items():
            for streams in args.streams:
                agent_before, (busy_before, total_before) = cpu_seconds(t.pids), machine_busy()
                gbps = iperf(t.client, t.ip, args.seconds, streams)
                add(name, f"tcp{streams}", gbps)
                busy, total = machine_busy()
                cpu = (busy - busy_before) / (total - total_before) * (os.cpu_count() or 1) * 100
                add(name, f"cpu{streams}", cpu)
                if streams == first:
                    add(name, "cpu", cpu)
                    add(
                        name,
                        "agents_cpu",
                        (cpu_seconds(t.pids) - agent_before) / args.seconds * 100,
                    )
            add(name, "rtt_ms", rtt_ms(t.client, t.ip))
            add(name, "rtt_b2b_ms", rtt_ms(t.client, t.ip, back_to_back=True))
            add(name, "udp64_kpps", udp64_kpps(t.client, t.ip, max(args.seconds // 2, 2)))
    return {n: {k: statistics.median(v) for k, v in per.items()} for n, per in samples.items()}


def measure_loss(
    args: argparse.Namespace, lab: Lab, targets: dict[str, Target]
) -> dict[str, float]:
    """TCP, 1 stream, with ``--loss`` % of the underlay's datagrams dropped
    each way (``Lab.drop``: wire-sized datagrams, as a lossy internet path
    loses them; segmentation offloads are off on the underlay meanwhile)."""
    clients = {t.client.name for t in targets.values()}
    for name in clients:
        lab.drop(name, args.loss)
    try:
        runs: dict[str, list[float]] = {n: [] for n in targets}
        for _ in range(args.runs):
            for name, t in targets.items():
                runs[name].append(iperf(t.client, t.ip, args.seconds, 1))
    finally:
        for name in clients:
            lab.drop(name, 0)
    return {n: statistics.median(v) for n, v in runs.items()}


def _label(case: str) -> str:
    """A case's name on two lines, so that neighbours' names do not overlap."""
    first, _, rest = case.partition(" ")
    return f"{first}\n{rest}" if rest else first


def draw(
    path: Path, results: Results, streams: list[int], lossy: dict[str, float], loss: float
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    native = results["native veth"]
    if lossy:  # four panels, two by two
        fig, grid = plt.subplots(2, 2, figsize=(11, 8.4))
        axes = list(grid.flatten())
    else:
        fig, row = plt.subplots(1, 3, figsize=(15.6, 4.2))
        axes = list(row)
    width = 0.8 / len(streams)
    for i, st in enumerate(streams):
        values = [results[n][f"tcp{st}"] for n in names]
        bars = axes[0].bar(
            [x + i * width for x in range(len(names))], values, width, label=f"{st} stream(s)"
        )
        for bar, v in zip(bars, values, strict=True):
            axes[0].annotate(
                f"{v / native[f'tcp{st}']:.2f}x",
                (bar.get_x() + bar.get_width() / 2, v),
                ha="center",
                va="bottom",
                fontsize=7,
            )
    axes[0].set_title("TCP throughput (Gbit/s; x native)")
    axes[0].legend(fontsize=8)
    for i, (key, label, colour) in enumerate(
        (("rtt_ms", "at idle", "#d9822b"), ("rtt_b2b_ms", "back to back", "#8c564b"))
    ):
        axes[1].bar(
            [x + i * 0.4 - 0.2 for x in range(len(names))],
            [results[n][key] for n in names],
            0.4,
            label=label,
            color=colour,
        )
    axes[1].set_title("ping RTT (ms)")
    axes[1].legend(fontsize=8)
    axes[2].bar(range(len(names)), [results[n]["udp64_kpps"] for n in names], color="#17becf")
    axes[2].set_title("UDP 64 B received (kpps)")
    if lossy:
        axes[3].bar(range(len(names)), [lossy.get(n, 0.0) for n in names], color="#6b8e23")
        axes[3].set_title(f"TCP 1 stream with {loss}% loss (Gbit/s)")
    for ax in axes:
        ax.set_xticks(
            [
                x + (width * (len(streams) - 1) / 2 if ax is axes[0] else 0)
                for x in range(len(names))
            ]
        )
        ax.set_xticklabels([_label(n) for n in names], fontsize=8)
    fig.suptitle(f"skylan data planes, medians, {os.cpu_count()} CPUs")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--loss", type=float, default=0.0, help="also measure TCP with this %% loss"
    )
    parser.add_argument("--png", type=Path, help="draw the results into this PNG")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="also measure skylan encrypted with this many worker lanes per node (1: skip)",
    )
    parser.add_argument(
        "--python", action="store_true", help="also measure the Python data plane (encrypted)"
    )
    args = parser.parse_args()
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="skylan-tput-") as tmp:
        count = 2 + (2 if args.workers > 1 else 0) + (2 if args.python else 0)
        hosts = [lab.add_host(n) for n in ("a", "b", "c", "d", "e", "f")[:count]]
        for server in hosts[1::2]:
            server.spawn(["iperf3", "-s", "-p", "5201"])
            server.wait_listening(5201)
        a, b = hosts[0], hosts[1]
        targets = {
            "native veth": Target(a, b.underlay_ip),
            "kernel VXLAN": Target(a, kernel_vxlan(a, b)),
            **skylan_overlay(lab, hosts, Path(tmp), args.workers, args.python),
        }
        results = measure(args, targets)
        lossy = measure_loss(args, lab, targets) if args.loss else {}
    if args.png:
        draw(args.png, results, args.streams, lossy, args.loss)
    if args.json:
        print(
            json.dumps({"results": results, "loss_pct": args.loss, "lossy_tcp1": lossy}, indent=2)
        )
        return
    report(args, results, lossy)


def report(args: argparse.Namespace, results: Results, lossy: dict[str, float]) -> None:
    first = args.streams[0]
    native = results["native veth"]
    print(
        f"medians of {args.runs} runs, TCP {args.seconds} s; CPU % = whole machine during TCP "
        f"{first} stream(s), 100 = one core; %/Gb = whole machine's CPU per Gbit/s during each "
        "TCP run; agents = the skylan agents' own CPU"
    )
    head = "".join(f"{f'TCP{s} Gb/s':>11}{'x nat':>7}{'%/Gb':>6}" for s in args.streams)
    tail = (
        f"{'RTT ms':>8}{'+ms':>7}{'b2b ms':>8}{'+ms':>7}"
        f"{'UDP64 kpps':>11}{'CPU %':>7}{'agents %':>9}"
    )
    print(f"{'case':<26}{head}{tail}")
    for name, r in results.items():
        cols = "".join(
            f"{r[f'tcp{s}']:>11.2f}{r[f'tcp{s}'] / native[f'tcp{s}']:>7.2f}"
            f"{r[f'cpu{s}'] / r[f'tcp{s}']:>6.1f}"
            for s in args.streams
        )
        agents = f"{r['agents_cpu']:>9.0f}" if name.startswith("skylan") else f"{'':>9}"
        print(
            f"{name:<26}{cols}{r['rtt_ms']:>8.3f}{r['rtt_ms'] - native['rtt_ms']:>7.3f}"
            f"{r['rtt_b2b_ms']:>8.3f}{r['rtt_b2b_ms'] - native['rtt_b2b_ms']:>7.3f}"
            f"{r['udp64_kpps']:>11.1f}{r['cpu']:>7.0f}{agents}"
        )
    if lossy:
        print(f"TCP 1 stream with {args.loss}% loss on the underlay (Gbit/s, x native under loss):")
        for name, gbps in lossy.items():
            print(f"  {name:<24}{gbps:>8.2f}{gbps / lossy['native veth']:>7.2f}")


if __name__ == "__main__":
    main()

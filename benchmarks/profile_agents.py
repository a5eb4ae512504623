"""Where the encrypted data plane spends its time: py-spy on both agents while
one iperf3 TCP stream (or, with ``--udp64``, a flood of 64-byte UDP datagrams)
runs between two lab hosts.

    sudo .venv/bin/python benchmarks/profile_agents.py [--seconds 8] [--rate 300] [--top 12]
        [--udp64] [--machine] [--loss PCT]

py-spy samples each agent (idle samples included, so waiting in ``epoll`` shows
as such) and the samples are grouped by the innermost frame that names what
the agent was doing: a system call, the cipher, or our own code. The table
gives each group's share of that agent's samples, so the shares are ratios
measured in the same run, comparable across machines. Needs root and py-spy
(``pip install py-spy``).

With ``--machine``, ``perf record -a`` samples the whole machine instead (both
cores, every process, kernel included; ``cpu-clock``, since a VM may have no
hardware counters), and the table splits the time between the agents' Python
interpreter, their kernel work, the cipher, numpy and libc, the traffic
generator, and idle: what the agents cost next to everything else on the
path. Needs ``perf`` (Debian: ``linux-perf``).

With ``--loss PCT`` the hosts' underlay is made what
``benchmarks/peers_under_loss.sh`` measures on: segmentation and receive
offloads off (datagrams cross one by one) and PCT % of the datagrams arriving
at each host dropped (nftables ``numgen random`` on ingress).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.throughput import iperf, skylan_overlay, udp64_kpps

from skylan.lab import Host, Lab

# innermost Python frames that stand for a kind of work (the C call they make
# is in the label); any other frame is shown by its own name
GROUPS = {
    "EpollSelector.select": "idle in epoll",
    "UdpSocket.send": "UDP sendmsg with GSO (kernel)",
    "UdpSocket._send_one": "UDP sendmsg with GSO (kernel)",
    "UdpSocket.receive_batches": "UDP recvmmsg with GRO (kernel)",
    "MessageBatch.receive": "UDP recvmmsg with GRO (kernel)",
    "UdpSocket._gather": "gathering single datagrams into runs",
    "TapDevice.write": "TAP writev (kernel)",
    "TapDevice.read_into": "TAP readv (kernel)",
    "TapDevice.read": "TAP readv (kernel)",
    "Session.seal": "sealing: AES-GCM + layout",
    "lay_out": "sealing: AES-GCM + layout",
    "Session.decrypt": "AES-GCM decrypt",
    "run_length": "chunk header checks",
    "as_rows": "chunk header checks",
    "TunnelEngine._data_run": "chunk header checks",
    "Reassembler.add_block": "reassembly copy",
    "Reassembler.add_many": "reassembly copy",
    "coalesce": "merging UDP datagrams into GSO frames",
    "_flow": "merging UDP datagrams into GSO frames",
    "_merge": "merging UDP datagrams into GSO frames",
    "_sum16": "merging UDP datagrams into GSO frames",
}


def group_of(stack: str) -> str | None:
    """The group of a collapsed py-spy stack's innermost frame; None for
    threads other than the event loop's (the resolver's idle workers)."""
    frames = stack.split(";")
    if frames[0].startswith("Thread._bootstrap"):
        return None
    name = frames[-1].partition(" (")[0]
    return GROUPS.get(name, name)


def shares(raw: Path) -> dict[str, float]:
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        group = group_of(stack) if stack and n.isdigit() else None
        if group is not None:
            counts[group] += int(n)
    total = sum(counts.values()) or 1
    return {g: n / total * 100 for g, n in counts.most_common()}


# (process, shared object) of a perf sample -> what it stands for
AGENT_DSOS = {
    "libpython": "agents: Python interpreter",
    "[kernel.kallsyms]": "agents: kernel (system calls, softirqs)",
    "_rust.abi3.so": "agents: AES-GCM (cryptography's OpenSSL)",
    "_multiarray_umath": "agents: numpy",
    "libc.so": "agents: libc (memcpy, malloc)",
}


def machine_group(comm: str, dso: str) -> str:
    if comm == "python" or comm.startswith("python3"):
        return next((g for k, g in AGENT_DSOS.items() if dso.startswith(k)), "agents: other")
    if comm == "iperf3":
        return "iperf3 (kernel TCP/UDP included)"
    if comm == "swapper":
        return "idle"
    return "other processes"


def machine_shares(report: str) -> dict[str, float]:
    """Shares of every sample from ``perf report --sort comm,dso`` lines."""
    counts: collections.Counter[str] = collections.Counter()
    for line in report.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0].endswith("%"):
            counts[machine_group(fields[1], fields[2])] += float(fields[0].rstrip("%"))
    return dict(counts.most_common())


def measured(args: argparse.Namespace, rate: float) -> str:
    """What ran while sampling, and at what rate."""
    what = f"UDP 64 B, {rate:.1f} kpps" if args.udp64 else f"one TCP stream, {rate:.2f} Gbit/s"
    return f"{what}, {args.loss} % loss without offloads" if args.loss else what


# peers_under_loss.sh's underlay: no GSO/TSO, no GRO, random ingress loss
NO_OFFLOADS = (
    *("tso", "tx-udp-segmentation", "tx-udp_tnl-segmentation"),
    *("tx-udp_tnl-csum-segmentation", "gro"),
)


def lossy_underlay(hosts: list[Host], pct: float) -> None:
    per_100k = round(pct * 1000)
    rules = f"""
table netdev bench_loss {{
    chain in {{
        type filter hook ingress device "eth0" priority 0
        numgen random mod 100000 < {per_100k} counter drop
    }}
}}
"""
    for host in hosts:
        host.run(["ethtool", "-K", "eth0", *(x for f in NO_OFFLOADS for x in (f, "off"))])
        host.run(["nft", "-f", "-"], input=rules, check=True)


def profile_machine(args: argparse.Namespace, load: Callable[[int], float], tmp: Path) -> None:
    data = tmp / "perf.data"
    perf = subprocess.Popen(
        [
            *("perf", "record", "-a", "-e", "cpu-clock", "-F", "999", "-o", str(data)),
            *("--", "sleep", str(args.seconds)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        rate = load(args.seconds + 1)  # covers the whole sampling window
        perf.wait(timeout=args.seconds + 30)
    finally:
        if perf.poll() is None:
            perf.kill()
            perf.wait()
    report = subprocess.run(
        ["perf", "report", "-i", str(data), "--no-children", "--sort", "comm,dso", "--stdio"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    print(f"{measured(args, rate)}; share of the whole machine's samples (%, both cores)")
    for group, share in machine_shares(report).items():
        print(f"{group:<45}{share:>6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--udp64", action="store_true", help="64-byte UDP instead of TCP")
    parser.add_argument(
        "--machine", action="store_true", help="perf on the whole machine instead of py-spy"
    )
    parser.add_argument(
        "--loss", type=float, default=0.0, help="%% loss on an underlay without offloads"
    )
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if args.machine and shutil.which("perf") is None:
        sys.exit("perf is not installed: apt install linux-perf")
    if not args.machine and not Path(spy).exists():
        sys.exit("py-spy is not installed: pip install py-spy")
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="skylan-prof-") as tmp:
        a, b = lab.add_host("a"), lab.add_host("b")
        b.spawn(["iperf3", "-s", "-p", "5201"])
        b.wait_listening(5201)
        cases = skylan_overlay(lab, [a, b], Path(tmp), workers=1)
        target = next(t for name, t in cases.items() if name.startswith("skylan encrypted"))
        encrypted, agents = target.ip, target.pids

        def load(seconds: int) -> float:
            if args.udp64:
                return udp64_kpps(a, encrypted, seconds)
            return iperf(a, encrypted, seconds, 1)

        if args.loss:
            lossy_underlay([a, b], args.loss)
        load(2)  # warm up
        if args.machine:
            profile_machine(args, load, Path(tmp))
            return
        raws = [Path(tmp) / f"{role}.txt" for role in ("sender", "receiver")]
        spies = [
            subprocess.Popen(
                [
                    *(spy, "record", "--idle", "--nonblocking", "-r", str(args.rate)),
                    *("-d", str(args.seconds), "-f", "raw", "-o", str(raw), "-p", str(pid)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for raw, pid in zip(raws, agents, strict=True)
        ]
        try:
            rate = load(args.seconds)
            for p in spies:
                p.wait(timeout=args.seconds + 30)
        finally:
            for p in spies:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        sender, receiver = shares(raws[0]), shares(raws[1])
    print(f"{measured(args, rate)}; share of each agent's samples (%)")
    both = set(sender) | set(receiver)
    groups = sorted(both, key=lambda g: -(sender.get(g, 0) + receiver.get(g, 0)))
    print(f"{'':<40}{'sender':>8}{'receiver':>10}")
    for g in groups[: args.top]:
        print(f"{g:<40}{sender.get(g, 0):>8.1f}{receiver.get(g, 0):>10.1f}")


if __name__ == "__main__":
    main()

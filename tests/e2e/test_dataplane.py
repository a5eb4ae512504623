"""The encrypted layer-2 network end to end: real agents, TAPs and tunnels,
proven with real programs (ping, arping, tcpdump, iperf3, keepalived)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from skylan.dataplane import native
from skylan.lab import Host, Lab, Netem
from skylan.lab.product import Deployment
from skylan.lab.waiting import wait_for


@dataclass
class Overlay:
    lab: Lab
    sky: Deployment
    hosts: dict[str, Host]
    ips: dict[str, str]
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    controller: subprocess.Popen[bytes] | None = None
    encrypted: bool = True
    workers: dict[str, int] = field(default_factory=dict)
    dataplane: str = "auto"

    def native(self) -> bool:
        """Whether the compiled core carries this overlay's packets."""
        status = self.sky.status(next(iter(self.hosts.values())))
        return bool(self.encrypted and status["dataplane"].get("dataplane") == "native")

    def ping_all(self, timeout: float = 20) -> None:
        for src, host in self.hosts.items():
            for dst, ip in self.ips.items():
                if src != dst:
                    wait_for(
                        f"{src} -> {dst}",
                        lambda h=host, i=ip: h.ping(i, count=1, timeout=1),
                        timeout=timeout,
                    )


def build(
    lab: Lab,
    workdir: Path,
    names: tuple[str, ...] = ("a", "b", "c"),
    *,
    encrypted: bool = True,
    mtu: int | None = None,
    workers: dict[str, int] | None = None,
    ack_thinning: bool = True,
    dataplane: str = "auto",
) -> Overlay:
    """Controller + agents; with encryption, "c" sits behind NAT (kernel VXLAN,
    for unencrypted networks, needs directly reachable peers). ``workers``:
    data-plane lanes per node (default one)."""
    ctl = lab.add_host("ctl")
    hosts = {n: lab.add_host(n, nat=(n == "c" and encrypted)) for n in names}
    sky = Deployment(workdir)
    controller = sky.start_controller(ctl)
    kind = "--encrypted" if encrypted else "--unencrypted"
    mtu_args = ["--mtu", str(mtu)] if mtu else []
    sky.admin("net", "create", "prod", "--cidr", "172.16.1.0/24", kind, *mtu_args)
    token = sky.admin("token", "create", "--network", "prod", "--uses", str(len(hosts)), "--json")[
        "token"
    ]
    agents = {
        name: sky.join(
            host,
            token,
            workers=(workers or {}).get(name, 1),
            ack_thinning=ack_thinning,
            dataplane=dataplane,
        )
        for name, host in hosts.items()
    }

    def ready() -> bool:
        nodes = sky.admin("node", "list", "--json")
        return len(nodes) == len(hosts) and all(n["online"] and n["networks"] for n in nodes)

    wait_for("the nodes to come online", ready, timeout=60)
    ips = {n["name"]: n["networks"][0]["ipv4"] for n in sky.admin("node", "list", "--json")}
    for name, host in hosts.items():
        wait_for(
            f"sky0 on {name}",
            lambda h=host, n=name: (
                ips[n] in h.run(["ip", "-4", "addr", "show", "dev", "sky0"]).stdout
            ),
        )
    overlay = Overlay(lab, sky, hosts, ips, agents, controller, encrypted, workers or {}, dataplane)
    overlay.ping_all()
    return overlay


# different lane counts on each node exercise the lane pairing both ways
WORKERS = {"a": 2, "b": 3, "c": 1}


# the Python data plane's own optimizations, which the compiled core leaves out
PYTHON_ONLY = "the compiled core does not {} (docs/dataplane-core.md)"


@pytest.fixture(
    scope="module",
    params=["encrypted", "encrypted-python", "kernel-vxlan", "encrypted-workers"],
)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Overlay]:
    """One overlay per data plane for the tests that only look (they do not
    disturb it): every such test runs on each: the compiled core (the
    default where it is built), the Python data plane, the kernel's VXLAN,
    and the compiled core with several worker lanes per node."""
    with Lab() as lab:
        yield build(
            lab,
            tmp_path_factory.mktemp("overlay"),
            encrypted=request.param != "kernel-vxlan",
            workers=WORKERS if request.param == "encrypted-workers" else None,
            dataplane="python" if request.param == "encrypted-python" else "auto",
        )


def py(host: Host, code: str, **kw: Any) -> subprocess.Popen[bytes]:
    return host.spawn([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, **kw)


def bound(proc: subprocess.Popen[bytes]) -> None:
    """Until a listener started with :func:`py` says it is bound (its first line)."""
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"


def broadcast_raw(host: Host, ethertype: str, payload: bytes, count: int = 1) -> None:
    """Send ``count`` broadcast frames of ``ethertype`` (hex) from ``host``'s sky0."""
    host.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import socket
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind(("sky0", 0))
        src = open("/sys/class/net/sky0/address").read().strip()
        frame = bytes.fromhex("ffffffffffff" + src.replace(":", "") + "{ethertype}") + {payload!r}
        for _ in range({count}):
            s.send(frame)
    """),
        ],
        check=True,
    )


def test_all_nodes_ping_each_other_and_status_shows_tunnels(shared: Overlay) -> None:
    shared.ping_all()
    if not shared.encrypted:
        dp = shared.sky.status(shared.hosts["a"])["dataplane"]
        assert dp["vxlan"]["sky0"]["remotes"] == 2 and not dp["interfaces"]
        link = shared.hosts["a"].run(["ip", "-d", "link", "show", "dev", "sky0"]).stdout
        assert "vxlan id" in link and "nolearning" in link
        return

    def tunnels() -> dict[str, Any]:
        status = shared.sky.status(shared.hosts["a"])
        return {p["name"]: p["tunnel"] for p in status["networks"][0]["peers"]}

    wait_for(
        "a's status to show both tunnels",
        lambda: all(t and t["established"] and t["rtt_ms"] is not None for t in tunnels().values()),
    )
    # c sits behind NAT: a learned its public (router) address from its packets
    assert tunnels()["c"]["endpoint"].startswith("198.18.2.")
    human = shared.sky.skylan(
        shared.hosts["a"], "status", "--state-dir", str(shared.sky.state_dir(shared.hosts["a"]))
    )
    assert "handshake" in human and "GSO" in human


def test_worker_lanes_share_the_tap_and_spread_flows(shared: Overlay) -> None:
    if not shared.workers:
        pytest.skip("one lane: nothing to spread")
    a, b = shared.hosts["a"], shared.hosts["b"]
    assert "multi_queue" in a.run(["ip", "-d", "link", "show", "dev", "sky0"]).stdout

    def lanes(host: Host) -> list[dict[str, Any]]:
        lanes: list[dict[str, Any]] = shared.sky.status(host)["dataplane"]["lanes"]
        return lanes

    for name, count in shared.workers.items():
        if count > 1:
            wait_for(
                f"{name}'s {count} lanes to run with tunnels up",
                lambda h=shared.hosts[name], n=count: (
                    len(ls := lanes(h)) == n
                    and all(lane["running"] and lane["established"] == 2 for lane in ls)
                ),
            )
    before = [lane["tx_bytes"] for lane in lanes(a)]
    b.spawn(["iperf3", "-s", "-1", "-p", "5206"])
    b.wait_listening(5206)
    # 16 flows: the kernel hashes each onto one of a's 2 TAP queues
    res = a.run(
        ["iperf3", "-c", shared.ips["b"], "-p", "5206", "-t", "2", "-P", "16", "-J"], timeout=60
    )
    assert res.ok, res.stderr
    wait_for(
        "both of a's lanes to carry the flows",
        lambda: all(
            lane["tx_bytes"] - was > 1 << 20 for lane, was in zip(lanes(a), before, strict=True)
        ),
    )
    shared.ping_all()


def test_arping(shared: Overlay) -> None:
    res = shared.hosts["a"].run(
        ["arping", "-c", "2", "-w", "5", "-I", "sky0", shared.ips["b"]], timeout=15
    )
    assert res.ok, res.stdout + res.stderr
    assert re.search(r"reply from|bytes from", res.stdout, re.I), res.stdout


def test_ipv6_link_local_and_global_neighbour_discovery(shared: Overlay) -> None:
    a, b = shared.hosts["a"], shared.hosts["b"]
    a.run(["ip", "-6", "addr", "add", "fd00:1::a/64", "dev", "sky0", "nodad"], check=True)
    b.run(["ip", "-6", "addr", "add", "fd00:1::b/64", "dev", "sky0", "nodad"], check=True)
    out = b.run(["ip", "-6", "addr", "show", "dev", "sky0", "scope", "link"]).stdout
    link_local = re.search(r"inet6 (fe80::[0-9a-f:]+)/64", out)
    assert link_local, out
    assert wait_for(
        "link-local ping",
        lambda: a.run(["ping", "-6", "-c", "1", "-W", "2", f"{link_local.group(1)}%sky0"]).ok,
    )
    assert wait_for(
        "global ping", lambda: a.run(["ping", "-6", "-c", "1", "-W", "2", "fd00:1::b"]).ok
    )


def test_broadcast_reaches_every_member(shared: Overlay) -> None:
    listeners = {
        name: py(
            shared.hosts[name],
            """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", 5555))
            s.settimeout(10)
            print("ready", flush=True)
            print(s.recv(100).decode(), flush=True)
        """,
        )
        for name in ("b", "c")
    }
    for listener in listeners.values():
        bound(listener)
    shared.hosts["a"].run(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        for _ in range(3):
            s.sendto(b"hello everyone", ("172.16.1.255", 5555))
    """),
        ],
        check=True,
    )
    for name, proc in listeners.items():
        out, _ = proc.communicate(timeout=15)
        assert out.decode().strip() == "hello everyone", name


def test_bursts_of_small_udp_datagrams_arrive_whole_and_in_order(shared: Overlay) -> None:
    """Bursts of small datagrams reach the receiving agent in batches, which it
    writes to its TAP as UDP GSO frames where the kernel takes them: every
    datagram must still come out of the receiver's socket, intact, in order.
    Every other burst is of one size throughout, so that whole batches of
    equal-length frames (taken as rows, not frame by frame) cross too."""
    a, b = shared.hosts["a"], shared.hosts["b"]
    sink = py(
        b,
        """
        import socket, struct
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        s.bind(("0.0.0.0", 7100)); s.settimeout(3)
        print("ready", flush=True)
        seqs, bad = [], 0
        try:
            while True:
                d = s.recv(2048)
                seq, size = struct.unpack("!II", d[:8])
                bad += d != d[:8] + bytes([seq % 251]) * (size - 8)
                seqs.append(seq)
        except socket.timeout:
            pass
        print(len(seqs), seqs == sorted(seqs), bad, flush=True)
    """,
    )
    bound(sink)
    a.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import socket, struct, time
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            seq = 0
            for burst in range(40):
                for _ in range(50):
                    size = 72 if seq % 50 != 49 or burst % 2 else 30  # or ends shorter
                    s.sendto(struct.pack("!II", seq, size) + bytes([seq % 251]) * (size - 8),
                             ("{shared.ips["b"]}", 7100))
                    seq += 1
                time.sleep(0.005)
        """),
        ],
        check=True,
        timeout=60,
    )
    out, _ = sink.communicate(timeout=30)
    count, ordered, bad = out.decode().split()
    assert (int(count), ordered, int(bad)) == (2000, "True", 0)
    if shared.encrypted and not shared.native():  # (PYTHON_ONLY: merging datagrams)
        sky0 = shared.sky.status(b)["dataplane"]["interfaces"]["sky0"]
        if sky0["udp_gso"]:
            wait_for(
                "b's agent to have written merged datagrams",
                lambda: shared.sky.status(b)["dataplane"]["interfaces"]["sky0"]["rx_coalesced"],
            )


def test_custom_ethertype_frame_crosses(shared: Overlay) -> None:
    listener = py(
        shared.hosts["b"],
        """
        import socket
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88B5))
        s.bind(("sky0", 0))
        s.settimeout(10)
        print("ready", flush=True)
        while True:
            frame = s.recv(2000)
            if frame[12:14] == bytes.fromhex("88b5"):
                print(frame[14:30].decode(), flush=True)
                break
    """,
    )
    bound(listener)
    broadcast_raw(shared.hosts["a"], "88b5", b"raw-l2-payload!!".ljust(46, b"."))
    out, _ = listener.communicate(timeout=15)
    assert out.decode().strip() == "raw-l2-payload!!"


def test_storm_control_limits_broadcast_floods(shared: Overlay) -> None:
    """2000 broadcast frames in a burst; with a limit of 50/s, b sees about the
    burst allowance (the switch's bucket, or nftables on a VXLAN interface)."""
    a = shared.hosts["a"]
    before = {n: shared.sky.status(shared.hosts[n])["netmap_version"] for n in ("a", "b")}
    shared.sky.admin("net", "update", "prod", "--storm-pps", "50")
    try:
        if shared.encrypted:  # the switches' buckets: a's and b's agents have the netmap
            for n in ("a", "b"):
                wait_for(
                    f"{n}'s netmap with the limit",
                    lambda n=n: (
                        (shared.sky.status(shared.hosts[n])["netmap_version"] or 0)
                        > (before[n] or 0)
                    ),
                    timeout=15,
                )
        else:
            wait_for(
                "the storm limit on a's VXLAN interface",
                lambda: (
                    "50/second" in a.run(["nft", "list", "table", "netdev", "skylan_storm"]).stdout
                ),
            )
        listener = py(
            shared.hosts["b"],
            """
            import socket, time
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88B6))
            s.bind(("sky0", 0))
            s.settimeout(10)
            print("ready", flush=True)
            s.recv(2000)
            n, end = 1, time.monotonic() + 2
            s.settimeout(0.2)
            while time.monotonic() < end:
                try:
                    if s.recv(2000)[12:14] == bytes.fromhex("88b6"):
                        n += 1
                except TimeoutError:
                    pass
            print(n, flush=True)
        """,
        )
        bound(listener)
        broadcast_raw(a, "88b6", bytes(46), count=2000)
        out, _ = listener.communicate(timeout=20)
        received = int(out.decode().strip())
        assert 1 <= received <= 300, received
    finally:
        shared.sky.admin("net", "update", "prod", "--storm-pps", "1000")


def test_no_plaintext_on_the_underlay(shared: Overlay, tmp_path: Path) -> None:
    if not shared.encrypted:
        pytest.skip("an unencrypted network is, by choice, plaintext on the wire")
    a, b = shared.hosts["a"], shared.hosts["b"]
    pcap = tmp_path / "underlay.pcap"
    dump = a.capture("eth0", pcap, "udp")
    secret = b"TOP-SECRET-PAYLOAD-0123456789"
    payload = tmp_path / "payload.txt"
    payload.write_bytes(secret * 40000)  # iperf3 sends this file's bytes
    b.spawn(["iperf3", "-s", "-1", "-p", "5202"])
    b.wait_listening(5202)
    res = a.run(
        ["iperf3", "-c", shared.ips["b"], "-p", "5202", "-t", "2", "-F", str(payload), "-J"],
        timeout=60,
    )
    assert res.ok, res.stderr
    assert '"sum_received"' in res.stdout  # it did cross the overlay
    time.sleep(0.5)
    dump.send_signal(signal.SIGINT)
    dump.wait(10)
    captured = pcap.read_bytes()
    assert len(captured) > 500, "tcpdump saw nothing: the test would prove nothing"
    assert secret not in captured
    # no inner headers either: overlay addresses or the nodes' overlay MACs
    for ip in shared.ips.values():
        assert bytes(int(x) for x in ip.split(".")) not in captured
    macs = [p["mac"] for p in shared.sky.status(a)["networks"][0]["peers"]]
    for mac in macs:
        assert bytes.fromhex(mac.replace(":", "")) not in captured


def test_bulk_tcp_acks_are_thinned(shared: Overlay) -> None:
    """b reads the ACKs of a's bulk stream from its TAP several at a time;
    the older ones of each batch are left out (the data tests prove that TCP
    is none the worse for it)."""
    if not shared.encrypted:
        pytest.skip("the kernel's VXLAN carries every frame")
    if shared.native():
        pytest.skip(PYTHON_ONLY.format("thin ACKs"))
    a, b = shared.hosts["a"], shared.hosts["b"]

    def thinned() -> int:
        sky0 = shared.sky.status(b)["dataplane"]["interfaces"]["sky0"]
        assert sky0["ack_thinning"] is True
        count: int = sky0["tx_acks_thinned"]
        return count

    before = thinned()
    b.spawn(["iperf3", "-s", "-1", "-p", "5207"])
    b.wait_listening(5207)
    res = a.run(["iperf3", "-c", shared.ips["b"], "-p", "5207", "-t", "2", "-J"], timeout=60)
    assert res.ok, res.stderr
    wait_for("b to thin ACKs", lambda: thinned() > before + 100)


def send_file_intact(a: Host, b: Host, b_ip: str, tmp_path: Path, size: int) -> None:
    """``size`` random bytes over TCP from a to b arrive with the same SHA-256."""
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(size))
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    sink = py(
        b,
        """
        import hashlib, socket
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", 7000)); srv.listen(1); srv.settimeout(60)
        print("ready", flush=True)
        conn, _ = srv.accept()
        h = hashlib.sha256()
        while chunk := conn.recv(65536):
            h.update(chunk)
        print(h.hexdigest(), flush=True)
    """,
    )
    bound(sink)
    a.run(
        [
            sys.executable,
            "-c",
            f"import socket; s=socket.create_connection(('{b_ip}', 7000));"
            f"s.sendall(open('{payload}','rb').read()); s.close()",
        ],
        check=True,
        timeout=120,
    )
    out, _ = sink.communicate(timeout=120)
    assert out.decode().strip() == digest


def test_iperf3_over_lossy_reordering_underlay_and_file_integrity(lab: Lab, tmp_path: Path) -> None:
    overlay = build(lab, tmp_path, ("a", "b"))
    a, b = overlay.hosts["a"], overlay.hosts["b"]
    lab.impair("a", Netem(loss_pct=1, delay_ms=2, reorder_pct=5, seed=11))
    b.spawn(["iperf3", "-s", "-1", "-p", "5201"])
    b.wait_listening(5201)
    res = a.run(["iperf3", "-c", overlay.ips["b"], "-p", "5201", "-t", "3", "-J"], timeout=60)
    assert res.ok, res.stderr
    assert '"sum_received"' in res.stdout
    send_file_intact(a, b, overlay.ips["b"], tmp_path, 3 << 20)


@pytest.mark.parametrize("dataplane", ["native", "python"])
def test_a_lossy_path_switches_parity_on_and_keeps_data_intact(
    lab: Lab, tmp_path: Path, dataplane: str
) -> None:
    """1 % of the underlay's datagrams lost each way: without parity almost
    every 64 KB super-frame (~46 datagrams) would be lost. The receiver asks for
    parity, the sender adds it, and chunks are rebuilt instead."""
    if dataplane == "native" and not native.available():
        pytest.skip("the compiled core is not built")
    overlay = build(lab, tmp_path, ("a", "b"), dataplane=dataplane)
    a, b = overlay.hosts["a"], overlay.hosts["b"]
    lab.drop("a", 1.0)
    b.spawn(["iperf3", "-s", "-1", "-p", "5204"])
    b.wait_listening(5204)
    # long enough for b to lose a super-frame, ask, and a to answer with parity
    res = a.run(["iperf3", "-c", overlay.ips["b"], "-p", "5204", "-t", "3", "-J"], timeout=60)
    assert res.ok, res.stderr

    def peer_of(host: Host) -> Any:
        (peer,) = overlay.sky.status(host)["dataplane"]["peers"].values()
        return peer

    wait_for(
        "a to send parity and b to rebuild chunks",
        lambda: peer_of(a)["fec"] and peer_of(b)["repaired"] > 0,
    )
    repaired = peer_of(b)["repaired"]
    send_file_intact(a, b, overlay.ips["b"], tmp_path, 8 << 20)  # rebuilt chunks: same bytes
    wait_for("more chunks rebuilt", lambda: peer_of(b)["repaired"] > repaired)
    lab.drop("a", 0)


def test_full_size_super_frames_on_an_mtu_1500_network(lab: Lab, tmp_path: Path) -> None:
    """With a 1500-byte network MTU a TCP super-frame is ~64 KB, and its chunk
    headers take the sealed datagrams past one IPv4 packet: the socket must
    split the GSO send instead of losing the super-frame. ACK thinning is
    off here (``--no-ack-thinning``): every ACK crosses."""
    overlay = build(lab, tmp_path, ("a", "b"), mtu=1500, ack_thinning=False)
    a, b = overlay.hosts["a"], overlay.hosts["b"]
    assert "mtu 1500" in a.run(["ip", "link", "show", "dev", "sky0"]).stdout
    b.spawn(["iperf3", "-s", "-1", "-p", "5203"])
    b.wait_listening(5203)
    res = a.run(["iperf3", "-c", overlay.ips["b"], "-p", "5203", "-t", "2", "-J"], timeout=60)
    assert res.ok, res.stderr

    def sender() -> Any:
        return overlay.sky.status(a)["dataplane"]

    wait_for(  # the status file is rewritten every 2 s
        "the transfer in a's status",
        lambda: sum(p["tx_bytes"] for p in sender()["peers"].values()) > 50 << 20,
    )
    assert sender()["send_errors"] == 0
    receiver = overlay.sky.status(b)["dataplane"]["interfaces"]["sky0"]
    assert receiver["ack_thinning"] is False
    assert receiver["tx_acks_thinned"] == 0
    assert receiver["tx_packets"] > 1000  # the ACKs it read and sent, every one


def test_worker_lanes_are_restarted_and_end_with_their_agent(lab: Lab, tmp_path: Path) -> None:
    overlay = build(lab, tmp_path, ("a", "b"), workers={"a": 2, "b": 2})
    a, b = overlay.hosts["a"], overlay.hosts["b"]

    def lanes(host: Host) -> list[dict[str, Any]]:
        lanes: list[dict[str, Any]] = overlay.sky.status(host)["dataplane"]["lanes"]
        return lanes

    def up(host: Host, restarts: int) -> bool:
        now = lanes(host)
        return now[1]["restarts"] == restarts and all(
            lane["running"] and lane["established"] == 1 for lane in now
        )

    wait_for("a's lanes up", lambda: up(a, 0))
    killed = lanes(a)[1]["pid"]
    os.kill(killed, signal.SIGKILL)
    wait_for("a's lane 1 restarted with its tunnel up", lambda: up(a, 1))
    assert lanes(a)[1]["pid"] != killed
    overlay.ping_all()
    human = overlay.sky.skylan(a, "status", "--state-dir", str(overlay.sky.state_dir(a)))
    assert "lane 1: udp/51821" in human and "restarted 1x" in human
    a_workers = [lane["pid"] for lane in lanes(a)[1:]]
    b_workers = [lane["pid"] for lane in lanes(b)[1:]]
    overlay.agents["a"].send_signal(signal.SIGTERM)  # a clean stop
    overlay.agents["a"].wait(20)
    overlay.agents["b"].kill()  # no chance to clean up: the workers see their parent die
    overlay.agents["b"].wait(20)
    for pid in a_workers + b_workers:
        wait_for(f"worker {pid} to end", lambda p=pid: not _running(p), timeout=10)
    for host in (a, b):  # no queue left holding the TAP open
        wait_for(
            f"{host.name}'s sky0 to go",
            lambda h=host: "sky0" not in h.run(["ip", "-o", "link"]).stdout,
            timeout=10,
        )


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_controller_outage_and_agent_restart(lab: Lab, tmp_path: Path) -> None:
    overlay = build(lab, tmp_path, ("a", "b"))
    a = overlay.hosts["a"]
    assert overlay.controller is not None
    overlay.controller.terminate()
    overlay.controller.wait(10)
    for _ in range(5):
        assert a.ping(overlay.ips["b"], count=1, timeout=2)  # forwarding goes on
        time.sleep(0.5)
    overlay.sky.start_controller(lab.host("ctl"))
    overlay.sky.admin("node", "rename", "b", "bravo")
    wait_for(
        "a resyncs with the controller",
        lambda: any(p["name"] == "bravo" for p in overlay.sky.status(a)["networks"][0]["peers"]),
        timeout=45,
    )
    # restart a's agent: connectivity is back within 10 s
    agent = overlay.agents["a"]
    agent.send_signal(signal.SIGKILL)  # no goodbye: its TAP vanishes with the process
    agent.wait(10)
    started = time.monotonic()
    run = [sys.executable, "-m", "skylan", "agent", "run", "--state-dir"]
    log_path = tmp_path / "agent-a-restarted.log"
    with log_path.open("wb") as log:
        restarted = a.spawn([*run, str(overlay.sky.state_dir(a))], stdout=log, stderr=log)
    wait_for("a reaches b again", lambda: a.ping(overlay.ips["b"], count=1, timeout=1), timeout=10)
    assert time.monotonic() - started < 10
    # move a's tunnels to another UDP port without enrolling again: b follows
    restarted.terminate()
    # a shutdown stuck past its limit (15 s) ends with every thread's stack in the log
    assert restarted.wait(25) == 0, log_path.read_text()[-4000:]
    a.spawn([*run, str(overlay.sky.state_dir(a)), "--listen-port", "51999"])
    wait_for("b reaches a on its new port", lambda: b_sees_a_on(overlay, 51999), timeout=30)
    assert overlay.hosts["b"].ping(overlay.ips["a"], count=2, timeout=2)


def b_sees_a_on(overlay: Overlay, port: int) -> bool:
    b = overlay.hosts["b"]
    (peer,) = [p for p in overlay.sky.status(b)["networks"][0]["peers"] if p["name"] == "a"]
    endpoint = (peer.get("tunnel") or {}).get("endpoint") or ""
    return bool(endpoint.endswith(f":{port}") and b.ping(overlay.ips["a"], count=1, timeout=1))

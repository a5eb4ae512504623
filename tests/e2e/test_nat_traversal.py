"""Nodes behind NAT reach each other: candidates from the controller's
reflector, simultaneous initiations through both NATs (hole punching), and
the path each tunnel takes, as `skylan status` shows it."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest

from skylan.lab import Lab
from skylan.lab.host import Host
from skylan.lab.nat import NatType
from skylan.lab.product import Deployment
from skylan.lab.waiting import wait_for

from .test_failover_and_isolation import KEEPALIVED, VIP

JUNK = str(Path(__file__).with_name("relayjunk.py"))


def addresses(sky: Deployment, count: int) -> dict[str, str]:
    """Each node's overlay address, once all ``count`` have one."""

    def found() -> dict[str, str] | None:
        nodes = sky.admin("node", "list", "--json")
        have = {n["name"]: n["networks"][0]["ipv4"] for n in nodes if n["networks"]}
        return have if len(have) == count else None

    ips = wait_for(f"{count} nodes to have addresses", found, timeout=30)
    assert isinstance(ips, dict)
    return ips


def pair(
    lab: Lab, sky: Deployment, a: Host, b: Host, *, workers: int = 1, dataplane: str | None = None
) -> dict[str, str]:
    """Both join one network; their overlay addresses."""
    sky.admin("net", "create", "prod", "--cidr", "172.16.1.0/24", "--encrypted")
    token = sky.admin("token", "create", "--network", "prod", "--uses", "2", "--json")["token"]
    sky.join(a, token, workers=workers, dataplane=dataplane)
    sky.join(b, token, workers=workers, dataplane=dataplane)
    return addresses(sky, 2)


def path_of(sky: Deployment, host: Host, peer: str) -> tuple[str | None, str]:
    t = tunnel(sky, host, peer)
    return (None, "") if t is None else (str(t["path"]), str(t["endpoint"]))


def tunnel(sky: Deployment, host: object, peer: str) -> dict[str, object] | None:
    status = sky.status(host)  # type: ignore[arg-type]
    for net in status["networks"]:
        for p in net["peers"]:
            if p["name"] == peer:
                return p["tunnel"]  # type: ignore[no-any-return]
    return None


def test_two_nodes_behind_endpoint_independent_nats_connect_directly(
    lab: Lab, tmp_path: Path
) -> None:
    ctl = lab.add_host("ctl")
    a = lab.add_host("a", nat=NatType.EIM)
    b = lab.add_host("b", nat=NatType.EIM)
    sky = Deployment(tmp_path)
    sky.start_controller(ctl)
    sky.admin("net", "create", "prod", "--cidr", "172.16.1.0/24", "--encrypted")
    token = sky.admin("token", "create", "--network", "prod", "--uses", "2", "--json")["token"]
    started = time.monotonic()
    sky.join(a, token)
    sky.join(b, token)
    ips = wait_for(
        "both nodes to have addresses",
        lambda: (
            {
                n["name"]: n["networks"][0]["ipv4"]
                for n in sky.admin("node", "list", "--json")
                if n["networks"]
            }
            if len(sky.admin("node", "list", "--json")) == 2
            else None
        ),
        timeout=30,
    )
    assert ips is not None and len(ips) == 2
    wait_for(
        "a to ping b over the overlay",
        lambda: a.ping(ips["b"], count=1, timeout=1),
        timeout=30,
    )
    took = time.monotonic() - started

    def direct(host: object, peer: str, outside: str) -> bool:
        t = tunnel(sky, host, peer)  # (the status file is rewritten every 2 s)
        return t is not None and t["path"] == "reflexive" and str(t["endpoint"]).startswith(outside)

    # direct: each at the other's NAT's outside, not through anything else
    wait_for("a's tunnel to b to show its path", lambda: direct(a, "b", f"{b.public_ip}:"), 10)
    wait_for("b's tunnel to a to show its path", lambda: direct(b, "a", f"{a.public_ip}:"), 10)
    print(f"connected {took:.1f} s after the agents started")
    assert took < 5, f"connected {took:.1f} s after the agents started"


def test_symmetric_nats_on_both_sides_connect_through_a_relay(lab: Lab, tmp_path: Path) -> None:
    ctl = lab.add_host("ctl")
    relay_host = lab.add_host("relay")
    a = lab.add_host("a", nat=NatType.SYMMETRIC)
    b = lab.add_host("b", nat=NatType.SYMMETRIC)
    stranger = lab.add_host("stranger")
    sky = Deployment(tmp_path)
    sky.start_controller(ctl)
    relay = sky.start_relay(relay_host, "r1", tls_port=443)
    started = time.monotonic()
    ips = pair(lab, sky, a, b)
    wait_for("a to ping b over the overlay", lambda: a.ping(ips["b"], count=1, timeout=1), 30)
    took = time.monotonic() - started
    wait_for("a's tunnel to b to show the relay", lambda: path_of(sky, a, "b")[0] == "relay", 10)
    assert path_of(sky, a, "b")[1].startswith(f"{relay_host.underlay_ip}:")
    assert b.ping(ips["a"], count=3, timeout=2)
    assert sky.status(a)["dataplane"]["relay_rtt_ms"]["r1"] > 0  # (from its hellos)
    print(f"connected through the relay {took:.1f} s after the agents started")
    assert took < 5, f"connected {took:.1f} s after the agents started"

    # what the relay sees is ciphertext: a ping's pattern never shows
    pcap = tmp_path / "relay.pcap"
    dump = relay_host.capture("eth0", pcap, "udp")
    pattern = "5a4b3c2d1e0f5a4b3c2d1e0f5a4b3c2d"
    assert a.run(["ping", "-c", "5", "-i", "0.2", "-p", pattern, ips["b"]]).ok
    time.sleep(0.5)
    dump.terminate()
    dump.wait(5)
    captured = pcap.read_bytes()
    assert captured.count(bytes.fromhex("5a4b3c2d1e0f")) == 0
    assert len(captured) > 10 * 100  # (it did capture the relayed pings)

    # junk, strangers' hellos, a flood and a TLS stream of garbage: dropped
    # and counted, and the relayed pair never notices
    junk = [sys.executable, JUNK, relay_host.underlay_ip, "3000"]
    assert stranger.run(junk, timeout=60).ok
    assert relay.poll() is None
    assert a.ping(ips["b"], count=3, timeout=2) and b.ping(ips["a"], count=3, timeout=2)

    def dropped() -> int:
        (listed,) = sky.admin("relay", "list", "--json")
        return int(listed["dropped"])

    wait_for("the relay to report what it dropped", lambda: dropped() >= 2000, 30)


def test_a_direct_path_takes_over_from_the_relay_and_a_dead_relay_hands_over(
    lab: Lab, tmp_path: Path
) -> None:
    ctl = lab.add_host("ctl")
    r1, r2 = lab.add_host("r1"), lab.add_host("r2")
    a = lab.add_host("a", nat=NatType.EIM)
    b = lab.add_host("b", nat=NatType.EIM)
    lab.block("a", b.public_ip)  # no direct path at first
    sky = Deployment(tmp_path)
    sky.start_controller(ctl)
    relays = {"r1": sky.start_relay(r1, "r1"), "r2": sky.start_relay(r2, "r2")}
    ips = pair(lab, sky, a, b)
    wait_for("a to ping b over the overlay", lambda: a.ping(ips["b"], count=1, timeout=1), 30)
    wait_for("a relayed path", lambda: path_of(sky, a, "b")[0] == "relay", 10)
    # the direct path opens: it takes over (probes of better paths, every 5..20 s)
    lab.block("a", b.public_ip, blocked=False)
    opened = time.monotonic()
    pinger = a.spawn(["ping", "-i", "0.2", ips["b"]])
    try:
        wait_for("the direct path", lambda: path_of(sky, a, "b")[0] == "reflexive", 40)
        took = time.monotonic() - opened
        assert took < 30 + 2, f"direct after {took:.1f} s"  # (+ the status file's 2 s)
        wait_for("b's side direct too", lambda: path_of(sky, b, "a")[0] == "reflexive", 10)
        # it dies again: back to a relay within seconds, traffic keeps flowing
        lab.block("a", b.public_ip)
        cut = time.monotonic()
        wait_for("back on a relay", lambda: path_of(sky, a, "b")[0] == "relay", 20)
        assert time.monotonic() - cut < 10 + 2
        _, through = path_of(sky, a, "b")
        used = "r1" if through.startswith(f"{r1.underlay_ip}:") else "r2"
        other = r2 if used == "r1" else r1
        # the relay in use dies: its pairs move to the other within 10 s
        relays[used].kill()
        killed = time.monotonic()
        wait_for(
            "the other relay",
            lambda: path_of(sky, a, "b")[1].startswith(f"{other.underlay_ip}:"),
            20,
        )
        assert time.monotonic() - killed < 10 + 2
        assert a.ping(ips["b"], count=3, timeout=2) and b.ping(ips["a"], count=3, timeout=2)
    finally:
        pinger.kill()


def test_symmetric_nat_reaches_a_full_cone_nat_directly(lab: Lab, tmp_path: Path) -> None:
    ctl = lab.add_host("ctl")
    relay_host = lab.add_host("relay")
    a = lab.add_host("a", nat=NatType.SYMMETRIC)
    b = lab.add_host("b", nat=NatType.CONE)
    sky = Deployment(tmp_path)
    sky.start_controller(ctl)
    sky.start_relay(relay_host, "r1")
    started = time.monotonic()
    ips = pair(lab, sky, a, b)
    wait_for("a to ping b", lambda: a.ping(ips["b"], count=1, timeout=1), 30)
    wait_for("a direct path", lambda: path_of(sky, a, "b")[0] == "reflexive", 15)
    took = time.monotonic() - started
    assert took < 10 + 2, f"direct after {took:.1f} s"
    assert path_of(sky, a, "b")[1].startswith(f"{b.public_ip}:")


def test_a_node_with_only_tcp_443_out_reaches_every_member_through_the_relays_tls(
    lab: Lab, tmp_path: Path
) -> None:
    ctl = lab.add_host("ctl")
    relay_host = lab.add_host("relay")
    corp = lab.add_host("corp", nat=NatType.TCP443)
    home = lab.add_host("home", nat=NatType.EIM)
    cloud = lab.add_host("cloud")
    sky = Deployment(tmp_path)
    sky.start_controller(ctl, port=443)  # (the only way out of corp)
    sky.start_relay(relay_host, "r1", tls_port=443)
    sky.admin("net", "create", "prod", "--cidr", "172.16.1.0/24", "--encrypted")
    token = sky.admin("token", "create", "--network", "prod", "--uses", "3", "--json")["token"]
    for host in (corp, home, cloud):
        sky.join(host, token)
    ips = addresses(sky, 3)
    for peer in ("home", "cloud"):
        wait_for(f"corp to ping {peer}", lambda p=peer: corp.ping(ips[p], count=1, timeout=1), 30)
        wait_for(
            f"{peer}'s path to corp",
            lambda p=peer: path_of(sky, lab.host(p), "corp")[0] == "relay",
            10,
        )
        assert lab.host(peer).ping(ips["corp"], count=3, timeout=2)
    # and corp's own view: both by the relay, over its TLS (a loopback address here)
    for peer in ("home", "cloud"):
        kind, endpoint = path_of(sky, corp, peer)
        assert kind == "relay" and endpoint.startswith("127.0.0.1:"), (peer, kind, endpoint)


def test_a_floating_ip_fails_over_between_relayed_nodes_and_iperf3_runs_over_the_relay(
    lab: Lab, tmp_path: Path
) -> None:
    """keepalived (VRRP multicast, gratuitous ARP) between two nodes that only
    meet through a relay, and a client behind another NAT; the relayed nodes
    run two worker lanes, each with its own port on the relay."""
    ctl, relay_host = lab.add_host("ctl"), lab.add_host("relay")
    a = lab.add_host("a", nat=NatType.SYMMETRIC)
    b = lab.add_host("b", nat=NatType.SYMMETRIC)
    c = lab.add_host("c", nat=NatType.EIM)
    sky = Deployment(tmp_path)
    sky.start_controller(ctl)
    sky.start_relay(relay_host, "r1")
    sky.admin("net", "create", "prod", "--cidr", "172.16.1.0/24", "--encrypted")
    token = sky.admin("token", "create", "--network", "prod", "--uses", "3", "--json")["token"]
    for host, workers in ((a, 2), (b, 2), (c, 1)):
        sky.join(host, token, workers=workers)
    ips = addresses(sky, 3)
    wait_for("a to reach b", lambda: a.ping(ips["b"], count=1, timeout=1), 30)
    wait_for("a to b by the relay", lambda: path_of(sky, a, "b")[0] == "relay", 10)

    def both_lanes_relayed() -> bool:
        lanes = sky.status(a)["dataplane"]["lanes"] or []
        return len(lanes) == 2 and all(lane["relays"] for lane in lanes)

    wait_for("each of a's lanes to have its port on the relay", both_lanes_relayed, 15)
    # iperf3 over the relay, four flows over the two lanes
    b.spawn(["iperf3", "-s", "-p", "5201"])
    b.wait_listening(5201)
    res = a.run(["iperf3", "-c", ips["b"], "-p", "5201", "-t", "2", "-P", "4", "-J"], timeout=60)
    assert res.ok, res.stderr
    gbps = json.loads(res.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
    print(f"iperf3 over the relay: {gbps:.2f} Gbit/s")
    assert gbps > 0.05
    # keepalived: a is master, b backup; the VIP moves when a goes
    daemons = {}
    for host, priority in ((a, 150), (b, 100)):
        conf = tmp_path / f"keepalived-{host.name}.conf"
        conf.write_text(KEEPALIVED.format(priority=priority, vip=VIP))
        pids = ["-p", str(tmp_path / f"ka-{host.name}.pid")]
        pids += ["-r", str(tmp_path / f"vrrp-{host.name}.pid")]
        daemons[host.name] = host.spawn(
            ["keepalived", "--dont-fork", "--log-console", "--vrrp", "-f", str(conf), *pids]
        )
    wait_for("a to hold the floating IP", lambda: VIP in a.run(["ip", "-4", "addr"]).stdout, 20)
    wait_for("c to reach the floating IP", lambda: c.ping(VIP, count=1, timeout=1), 20)
    moved = time.monotonic()
    daemons["a"].send_signal(signal.SIGTERM)
    daemons["a"].wait(10)
    wait_for("b to hold the floating IP", lambda: VIP in b.run(["ip", "-4", "addr"]).stdout, 20)
    wait_for("c to reach the floating IP again", lambda: c.ping(VIP, count=1, timeout=1), 20)
    took = time.monotonic() - moved
    print(f"the floating IP answered again {took:.1f} s after the master went")
    assert took < 10
    b_mac = b.run(["cat", "/sys/class/net/sky0/address"]).stdout.strip()
    assert b_mac in c.run(["ip", "neigh", "show", VIP, "dev", "sky0"]).stdout


@pytest.mark.parametrize("dataplane", ["python", "native"])
def test_two_nodes_behind_one_nat_talk_over_their_lan(
    lab: Lab, tmp_path: Path, dataplane: str
) -> None:
    ctl = lab.add_host("ctl")
    a = lab.add_host("a", nat=NatType.EIM)
    b = lab.add_host("b", behind="a")
    sky = Deployment(tmp_path)
    sky.start_controller(ctl)
    ips = pair(lab, sky, a, b, dataplane=dataplane)
    wait_for("a to ping b", lambda: a.ping(ips["b"], count=1, timeout=1), 30)
    # their LAN addresses, not a hairpin through the router's outside
    wait_for("a local path", lambda: path_of(sky, a, "b")[0] == "local", 15)
    assert path_of(sky, a, "b")[1].startswith(f"{b.underlay_ip}:")

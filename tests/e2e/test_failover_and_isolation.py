"""Floating IPs with keepalived (VRRP: multicast + gratuitous ARP) and the
isolation of networks from each other."""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import time
from pathlib import Path

from skylan.lab import Lab
from skylan.lab.product import Deployment
from skylan.lab.waiting import wait_for

from .test_dataplane import build

VIP = "172.16.1.100"

KEEPALIVED = """
vrrp_instance skylan_demo {{
    state BACKUP
    interface sky0
    virtual_router_id 51
    priority {priority}
    advert_int 0.5
    virtual_ipaddress {{
        {vip}/24 dev sky0
    }}
}}
"""


def test_floating_ip_fails_over_in_under_three_seconds(lab: Lab, tmp_path: Path) -> None:
    overlay = build(lab, tmp_path)
    a, b, c = (overlay.hosts[n] for n in "abc")
    daemons = {}
    for host, priority in ((a, 150), (b, 100)):
        conf = tmp_path / f"keepalived-{host.name}.conf"
        conf.write_text(KEEPALIVED.format(priority=priority, vip=VIP))
        daemons[host.name] = host.spawn(
            [
                "keepalived",
                "--dont-fork",
                "--log-console",
                "--vrrp",
                "-f",
                str(conf),
                "-p",
                str(tmp_path / f"ka-{host.name}.pid"),
                "-r",
                str(tmp_path / f"vrrp-{host.name}.pid"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    wait_for(
        "a to hold the floating IP",
        lambda: VIP in a.run(["ip", "-4", "addr", "show", "dev", "sky0"]).stdout,
        timeout=20,
    )
    wait_for("c to reach the floating IP", lambda: c.ping(VIP, count=1, timeout=1))
    # a netmap change (here the MTU) reconfigures sky0: the agent leaves the
    # address keepalived holds alone (it once took every address it had not given)
    overlay.sky.admin("net", "update", "prod", "--mtu", "1400")
    wait_for("the new MTU", lambda: "mtu 1400" in a.run(["ip", "link", "show", "sky0"]).stdout, 15)
    time.sleep(1)
    assert VIP in a.run(["ip", "-4", "addr", "show", "dev", "sky0"]).stdout
    assert c.ping(VIP, count=1, timeout=2)
    pinger = c.spawn(["ping", "-n", "-D", "-i", "0.1", "-w", "12", VIP], stdout=subprocess.PIPE)
    time.sleep(3)
    stopped_at = time.time()
    daemons["a"].send_signal(signal.SIGTERM)  # the master goes away
    daemons["a"].wait(10)
    out, _ = pinger.communicate(timeout=30)
    stamps = [float(m) for m in re.findall(r"^\[(\d+\.\d+)\].*bytes from", out.decode(), re.M)]
    assert stamps, out
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    gap = max(gaps)
    print(f"longest gap in replies around the failover: {gap:.2f} s")
    assert gap < 3.0
    assert stamps[-1] > stopped_at + 5  # replies kept coming long after the failover
    assert VIP in b.run(["ip", "-4", "addr", "show", "dev", "sky0"]).stdout
    assert VIP not in a.run(["ip", "-4", "addr", "show", "dev", "sky0"]).stdout
    # the gratuitous ARP moved c's neighbour entry to b: traffic reaches the new master
    b_mac = b.run(["cat", "/sys/class/net/sky0/address"]).stdout.strip()
    neigh = c.run(["ip", "neigh", "show", VIP, "dev", "sky0"]).stdout
    assert b_mac in neigh, neigh


def test_two_networks_two_interfaces_and_isolation(lab: Lab, tmp_path: Path) -> None:
    ctl = lab.add_host("ctl")
    a, b, c = lab.add_host("a"), lab.add_host("b"), lab.add_host("c")
    sky = Deployment(tmp_path)
    sky.start_controller(ctl)
    sky.admin("net", "create", "red", "--cidr", "172.16.1.0/24")
    sky.admin("net", "create", "blue", "--cidr", "172.16.2.0/24")
    red = sky.admin("token", "create", "--network", "red", "--uses", "2", "--json")["token"]
    blue = sky.admin("token", "create", "--network", "blue", "--json")["token"]
    sky.join(a, red)
    sky.join(b, red)
    sky.join(c, blue)
    wait_for("three nodes", lambda: len(sky.admin("node", "list", "--json")) == 3, timeout=60)
    sky.admin("port", "attach", "blue", "a", "--ip", "172.16.2.10")
    wait_for(
        "a has two interfaces",
        lambda: "172.16.2.10" in a.run(["ip", "-4", "addr", "show", "dev", "sky1"]).stdout,
        timeout=30,
    )
    ips = {
        n["name"]: {m["network"]: m["ipv4"] for m in n["networks"]}
        for n in sky.admin("node", "list", "--json")
    }
    assert wait_for("a reaches b on red", lambda: a.ping(ips["b"]["red"], count=1, timeout=1))
    assert wait_for("a reaches c on blue", lambda: a.ping(ips["c"]["blue"], count=1, timeout=1))
    # b is only in red: even pointing the blue prefix at its red interface, its ARP
    # requests are flooded only to red's members, so c never hears them
    b.run(["ip", "route", "add", "172.16.2.0/24", "dev", "sky0"], check=True)
    assert not b.ping(ips["c"]["blue"], count=3, timeout=1)
    assert not c.ping(ips["b"]["red"], count=2, timeout=1)
    # leaving a network removes its interface
    sky.admin("port", "detach", "blue", "a")
    wait_for(
        "sky1 to disappear from a",
        lambda: not a.run(["ip", "link", "show", "dev", "sky1"]).ok,
        timeout=30,
    )
    assert a.ping(ips["b"]["red"], count=1, timeout=2)

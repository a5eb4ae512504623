"""Members' names in DNS: getent (the host's resolver) and dig inside lab
hosts, while the hosts' other DNS keeps working through the agent."""

from __future__ import annotations

import sys
from pathlib import Path

from skylan.lab import Host, Lab
from skylan.lab.product import Deployment
from skylan.lab.waiting import wait_for

from .upstreamdns import ADDRESS as UPSTREAM_ANSWER

ZONE = "prod.skylan.internal"


def getent(host: Host, database: str, name: str) -> list[str]:
    res = host.run(["getent", database, name], timeout=20)
    return sorted({line.split()[0] for line in res.stdout.splitlines()}) if res.ok else []


def dig(host: Host, name: str, rdtype: str = "A", *extra: str) -> list[str]:
    res = host.run(["dig", "+short", "+time=2", "+tries=2", *extra, name, rdtype], timeout=20)
    assert res.ok, res.stderr + res.stdout
    return sorted(res.stdout.split())


def dig_status(host: Host, name: str) -> str:
    res = host.run(["dig", "+time=2", "+tries=2", name, "A"], timeout=20)
    return res.stdout.split("status: ", 1)[1].split(",", 1)[0] if "status: " in res.stdout else ""


def test_members_resolve_each_other_and_other_names_still_resolve(lab: Lab, tmp_path: Path) -> None:
    sky = Deployment(tmp_path)
    ctl = lab.add_host("ctl")
    sky.start_controller(ctl)
    ctl.spawn([sys.executable, str(Path(__file__).with_name("upstreamdns.py")), ctl.underlay_ip])
    a, b = lab.add_host("a"), lab.add_host("b")
    original = f"nameserver {ctl.underlay_ip}\noptions timeout:2\n"
    for host in (a, b):
        host.resolv_conf.write_text(original)
    assert wait_for("the hosts' DNS", lambda: getent(a, "hosts", "www.example.test"))

    sky.admin("net", "create", "prod", "--cidr", "172.16.1.0/24", "--cidr6", "fd00:1::/64")
    token = sky.admin("token", "create", "--network", "prod", "--uses", "2", "--json")["token"]
    agents = {host.name: sky.join(host, token) for host in (a, b)}
    ips = {}

    def ready() -> bool:
        nodes = sky.admin("node", "list", "--json")
        ips.update({n["name"]: n["networks"][0] for n in nodes if n["networks"]})
        return len(nodes) == 2 and all(n["online"] and n["networks"] for n in nodes)

    wait_for("the nodes", ready, timeout=60)
    b4, b6 = ips["b"]["ipv4"], ips["b"]["ipv6"]
    name = f"b.{ZONE}"
    assert wait_for("a resolves b", lambda: getent(a, "ahostsv4", name) == [b4], timeout=15)
    assert getent(a, "ahostsv6", name) == [b6]
    assert getent(b, "ahostsv4", f"a.{ZONE}") == [ips["a"]["ipv4"]]
    assert getent(b, "hosts", f"B.{ZONE.upper()}")  # names are not case-sensitive
    assert dig(a, name) == [b4] and dig(a, name, "AAAA") == [b6]
    assert dig(a, name, "A", "+tcp") == [b4]
    assert dig_status(a, f"nobody.{ZONE}") == "NXDOMAIN"
    # the host's other DNS keeps working: through the agent, which forwards it
    assert getent(a, "ahostsv4", "www.example.test") == [UPSTREAM_ANSWER]
    assert dig(a, "www.example.test") == [UPSTREAM_ANSWER]
    assert dig_status(a, "nowhere.example.test") == "NXDOMAIN"
    status = sky.status(a)["dns"]
    assert status["mode"] == "resolv-conf" and status["zones"] == [ZONE]
    assert status["upstreams"] == [ctl.underlay_ip]
    assert a.resolv_conf.read_text().endswith(original)

    # a name for a floating address, a rename and a member leaving: within seconds
    record = sky.admin("dns", "add", "prod", "vip", "172.16.1.100", "--json")
    assert record["fqdn"] == f"vip.{ZONE}"
    assert wait_for("vip", lambda: getent(b, "ahostsv4", f"vip.{ZONE}") == ["172.16.1.100"])
    sky.admin("node", "rename", "b", "db")
    assert wait_for("db", lambda: getent(a, "ahostsv4", f"db.{ZONE}") == [b4], timeout=15)
    assert dig_status(a, name) == "NXDOMAIN"
    sky.admin("port", "detach", "prod", "db")
    assert wait_for("db gone", lambda: dig_status(a, f"db.{ZONE}") == "NXDOMAIN", timeout=15)
    sky.admin("dns", "set", "prod", "vip", "--name", "web", "--address", "172.16.1.101")
    assert wait_for("web", lambda: dig(a, f"web.{ZONE}") == ["172.16.1.101"], timeout=15)
    assert dig_status(a, f"vip.{ZONE}") == "NXDOMAIN"
    sky.admin("dns", "remove", "prod", record["id"])
    assert wait_for("web gone", lambda: dig_status(a, f"web.{ZONE}") == "NXDOMAIN", timeout=15)

    # the agent stopping gives the host its resolv.conf back as it was
    agents["a"].terminate()
    agents["a"].wait(15)
    assert a.resolv_conf.read_text() == original
    assert getent(a, "ahostsv4", "www.example.test") == [UPSTREAM_ANSWER]

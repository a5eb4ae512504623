"""IPv6 on the overlay without manual steps: a network with an IPv6 prefix
gives every member an address (its IPv4 host part under the prefix), which
the agents configure; ping6 and TCP over it; a prefix given later reaches
every member."""

from __future__ import annotations

import sys
from pathlib import Path

from skylan.lab import Host, Lab
from skylan.lab.product import Deployment
from skylan.lab.waiting import wait_for

SERVE = (
    "import socket; s = socket.socket(socket.AF_INET6); "
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('::', 7777)); s.listen(); "
    "c, _ = s.accept(); c.sendall(c.recv(100).upper()); c.close()"
)
ASK = (
    "import socket, sys; c = socket.create_connection((sys.argv[1], 7777), timeout=10); "
    "c.sendall(b'over ipv6'); print(c.recv(100).decode())"
)


def test_members_get_ipv6_addresses_and_talk_over_them(lab: Lab, tmp_path: Path) -> None:
    ctl, a, b = lab.add_host("ctl"), lab.add_host("a"), lab.add_host("b", nat=True)
    sky = Deployment(tmp_path)
    sky.start_controller(ctl)
    sky.admin("net", "create", "prod", "--cidr", "172.16.1.0/24", "--cidr6", "fd00:1::/64")
    token = sky.admin("token", "create", "--network", "prod", "--uses", "2", "--json")["token"]
    sky.join(a, token)
    sky.join(b, token)

    def addresses() -> dict[str, tuple[str, str]] | None:
        nodes = sky.admin("node", "list", "--json")
        found = {
            n["name"]: (n["networks"][0]["ipv4"], n["networks"][0]["ipv6"])
            for n in nodes
            if n["networks"]
        }
        return found if len(found) == 2 else None

    ips = wait_for("both nodes to have addresses", addresses, timeout=30)
    assert isinstance(ips, dict)
    for name, (v4, v6) in ips.items():
        assert v6 == "fd00:1::" + v4.rsplit(".", 1)[1], (name, v4, v6)  # the host part
    v6_of = {name: v6 for name, (_, v6) in ips.items()}

    def configured(host: Host, address: str) -> bool:
        return address in host.run(["ip", "-6", "addr", "show", "dev", "sky0"]).stdout

    for host in (a, b):
        wait_for(f"{host.name}'s IPv6 address", lambda h=host: configured(h, v6_of[h.name]), 20)
    wait_for(
        "ping6 a -> b",
        lambda: a.run(["ping", "-6", "-c", "1", "-W", "2", v6_of["b"]]).ok,
        20,
    )
    server = b.spawn([sys.executable, "-c", SERVE])
    try:

        def ask() -> str:
            return a.run([sys.executable, "-c", ASK, v6_of["b"]], timeout=20).stdout.strip()

        answer = wait_for("TCP over IPv6", ask, 20)
        assert answer == "OVER IPV6"
    finally:
        server.kill()
    # a prefix changed later reaches every member, and the old address goes
    sky.admin("net", "update", "prod", "--cidr6", "fd00:2::/64")
    new_b = v6_of["b"].replace("fd00:1::", "fd00:2::")
    wait_for("b's new IPv6 address", lambda: configured(b, new_b), 20)
    assert not configured(b, v6_of["b"])
    wait_for(
        "ping6 to the new address",
        lambda: a.run(["ping", "-6", "-c", "1", "-W", "2", new_b]).ok,
        20,
    )
    # a static address of its own for b, outside the derived ones, and back
    port = sky.admin("port", "set", "prod", "b", "--ipv6", "fd00:2::b:1", "--json")
    assert port["ipv6"] == "fd00:2::b:1"
    wait_for("b's static IPv6 address", lambda: configured(b, "fd00:2::b:1"), 20)
    assert not configured(b, new_b)
    wait_for(
        "ping6 to the static address",
        lambda: a.run(["ping", "-6", "-c", "1", "-W", "2", "fd00:2::b:1"]).ok,
        20,
    )
    assert sky.admin("port", "set", "prod", "b", "--ipv6", "auto", "--json")["ipv6"] == new_b
    wait_for("b's derived address again", lambda: configured(b, new_b), 20)


def test_an_ipv6_gateway_route_reaches_an_office_lan(lab: Lab, tmp_path: Path) -> None:
    ctl, a, c = lab.add_host("ctl"), lab.add_host("a"), lab.add_host("c")
    lan = lab.add_office_lan("c", prefix="192.168.10.0/24", prefix6="fd10::/64")
    sky = Deployment(tmp_path)
    sky.start_controller(ctl)
    sky.admin("net", "create", "prod", "--cidr", "172.16.1.0/24", "--cidr6", "fd00:1::/64")
    token = sky.admin("token", "create", "--network", "prod", "--uses", "2", "--json")["token"]
    sky.join(a, token)
    sky.join(c, token)
    wait_for(
        "the nodes",
        lambda: len([n for n in sky.admin("node", "list", "--json") if n["networks"]]) == 2,
        30,
    )
    log = (tmp_path / "web.log").open("wb")
    lan.spawn([sys.executable, "-m", "http.server", "8080", "--bind", "::"], stdout=log, stderr=log)
    url = "http://[fd10::a]:8080/"

    def fetch() -> bool:
        return a.run(["curl", "-6", "-sf", "-m", "3", "-o", "/dev/null", url], timeout=10).ok

    assert not fetch()  # no route yet
    sky.admin("gateway", "add", "prod", "fd10::/64", "--via", "c")
    assert wait_for("a reaches the IPv6 LAN through c", fetch, timeout=30)
    assert "fd10::1 " in (tmp_path / "web.log").read_text()  # masqueraded behind c
    status = sky.status(a)["host"]
    assert any(
        r["prefix"] == "fd10::/64" and r["via"].startswith("fd00:1::") for r in status["routes"]
    )
    assert sky.status(c)["host"]["gateway_for"] == ["fd10::/64"]


KEEPALIVED6 = """
global_defs {{
    vrrp_version 3
}}
vrrp_instance v6 {{
    state BACKUP
    interface sky0
    virtual_router_id 61
    priority {priority}
    advert_int 0.5
    virtual_ipaddress {{
        fd00:1::100/64 dev sky0
    }}
}}
"""


def test_an_ipv6_floating_ip_fails_over(lab: Lab, tmp_path: Path) -> None:
    ctl = lab.add_host("ctl")
    a, b, c = lab.add_host("a"), lab.add_host("b"), lab.add_host("c", nat=True)
    sky = Deployment(tmp_path)
    sky.start_controller(ctl)
    sky.admin("net", "create", "prod", "--cidr", "172.16.1.0/24", "--cidr6", "fd00:1::/64")
    token = sky.admin("token", "create", "--network", "prod", "--uses", "3", "--json")["token"]
    for host in (a, b, c):
        sky.join(host, token)
    wait_for(
        "three members with addresses",
        lambda: sum(1 for n in sky.admin("node", "list", "--json") if n["networks"]) == 3,
        30,
    )
    vip = "fd00:1::100"
    daemons = {}
    for host, priority in ((a, 150), (b, 100)):
        conf = tmp_path / f"ka6-{host.name}.conf"
        conf.write_text(KEEPALIVED6.format(priority=priority))
        pids = ["-p", str(tmp_path / f"ka6-{host.name}.pid")]
        pids += ["-r", str(tmp_path / f"vrrp6-{host.name}.pid")]
        daemons[host.name] = host.spawn(
            ["keepalived", "--dont-fork", "--log-console", "--vrrp", "-f", str(conf), *pids]
        )

    def holds(host: Host) -> bool:
        return vip in host.run(["ip", "-6", "addr", "show", "dev", "sky0"]).stdout

    def reached() -> bool:
        return c.run(["ping", "-6", "-c", "1", "-W", "1", vip]).ok

    wait_for("a to hold the IPv6 floating IP", lambda: holds(a), 30)
    wait_for("c to reach it", reached, 20)
    daemons["a"].send_signal(15)
    daemons["a"].wait(10)
    wait_for("b to take it over", lambda: holds(b), 20)
    wait_for("c to reach it on b", reached, 20)
    assert not holds(a)

"""Gateways to an office LAN and cloaking, proven with curl and nmap."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from skylan.lab import Host, Lab
from skylan.lab.product import Deployment
from skylan.lab.waiting import wait_for

LAN = "192.168.10.0/24"
LAN_HOST = "192.168.10.10"


def deploy(
    lab: Lab, tmp_path: Path, names: tuple[str, ...], workers: int = 1
) -> tuple[Deployment, dict[str, Host]]:
    sky = Deployment(tmp_path)
    sky.start_controller(lab.add_host("ctl"))
    hosts = {n: lab.add_host(n) for n in names}
    sky.admin("net", "create", "prod", "--cidr", "172.16.1.0/24")
    token = sky.admin("token", "create", "--network", "prod", "--uses", str(len(names)), "--json")[
        "token"
    ]
    for host in hosts.values():
        sky.join(host, token, workers=workers)

    def ready() -> bool:
        nodes = sky.admin("node", "list", "--json")
        return len(nodes) == len(names) and all(n["online"] and n["networks"] for n in nodes)

    wait_for("the nodes", ready, timeout=60)
    return sky, hosts


def curl(host: Host, url: str) -> bool:
    return host.run(["curl", "-sf", "-m", "3", "-o", "/dev/null", url], timeout=10).ok


def test_gateway_to_office_lan(lab: Lab, tmp_path: Path) -> None:
    sky, hosts = deploy(lab, tmp_path, ("a", "b", "c"))
    lan = lab.add_office_lan("c", prefix=LAN)
    log = (tmp_path / "web.log").open("wb")
    lan.spawn(
        [sys.executable, "-m", "http.server", "8080", "--bind", "0.0.0.0"], stdout=log, stderr=log
    )
    wait_for("the office web server", lambda: curl(hosts["c"], f"http://{LAN_HOST}:8080/"))
    assert not curl(hosts["a"], f"http://{LAN_HOST}:8080/")  # no gateway yet

    def candidates() -> list[tuple[str, str]]:
        return [
            (c["node"], c["prefix"]) for c in sky.admin("gateway", "candidates", "prod", "--json")
        ]

    assert wait_for("c as a gateway candidate", lambda: ("c", LAN) in candidates())
    route = sky.admin("gateway", "add", "prod", LAN, "--via", "c", "--json")
    for name in ("a", "b"):
        assert wait_for(
            f"{name} reaches the LAN through c",
            lambda n=name: curl(hosts[n], f"http://{LAN_HOST}:8080/"),
            timeout=30,
        )
    web_log = (tmp_path / "web.log").read_text()
    assert "192.168.10.1 " in web_log  # masqueraded behind c's LAN address
    status = sky.status(hosts["c"])
    assert status["host"]["gateway_for"] == [LAN] and status["host"]["masquerade"] == [LAN]
    assert any(r["prefix"] == LAN for r in sky.status(hosts["a"])["host"]["routes"])

    # without masquerade the LAN host sees the overlay address (its router, here c,
    # routes the answer back into the overlay)
    sky.admin("gateway", "remove", "prod", route["id"])
    sky.admin("gateway", "add", "prod", LAN, "--via", "c", "--no-masquerade")
    a_ip = next(
        n["networks"][0]["ipv4"] for n in sky.admin("node", "list", "--json") if n["name"] == "a"
    )
    wait_for(
        "a's request with its overlay address",
        lambda: (
            curl(hosts["a"], f"http://{LAN_HOST}:8080/?nomasq")
            and f"{a_ip} " in (tmp_path / "web.log").read_text()
        ),
        timeout=30,
    )

    # removing the gateway cuts access
    for r in sky.admin("gateway", "list", "prod", "--json"):
        sky.admin("gateway", "remove", "prod", r["id"])
    wait_for("the route to go", lambda: not sky.status(hosts["a"])["host"]["routes"], timeout=30)
    assert not curl(hosts["a"], f"http://{LAN_HOST}:8080/")
    assert not sky.status(hosts["c"])["host"]["gateway_for"]


def listen(host: Host) -> None:
    """sshd-like listeners: TCP 2222 and 8000 (HTTP), UDP 5353."""
    host.spawn([sys.executable, "-m", "http.server", "8000", "--bind", "0.0.0.0"])
    host.spawn(
        [
            sys.executable,
            "-c",
            (
                "import socket,time\n"
                "t=socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                "t.bind(('0.0.0.0',2222)); t.listen()\n"
                "u=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0',5353))\n"
                "time.sleep(600)\n"
            ),
        ]
    )
    for port in (8000, 2222):
        host.wait_listening(port)
    host.wait_listening(5353, udp=True)


def scan(scanner: Host, target: str, *args: str) -> dict[str, str]:
    res = scanner.run(
        ["nmap", "-n", "-Pn", "-T4", "--max-retries", "1", *args, target], timeout=180
    )
    assert res.ok, res.stderr
    return {
        m.group(1): m.group(2) for m in re.finditer(r"^(\d+/(?:tcp|udp))\s+(\S+)", res.stdout, re.M)
    }


def test_cloaking_hides_nodes_from_the_internet(lab: Lab, tmp_path: Path) -> None:
    sky, hosts = deploy(lab, tmp_path, ("a", "b"), workers=2)  # lanes on 51820 and 51821
    internet = lab.add_internet()
    b = hosts["b"]
    listen(b)
    before = scan(internet, b.underlay_ip, "-sS", "-p", "22,2222,8000")
    assert before == {"22/tcp": "closed", "2222/tcp": "open", "8000/tcp": "open"}

    sky.admin("cloak", "allow", "prod", "tcp", "--port", "8000", "--node", "b")
    sky.admin("net", "update", "prod", "--cloaked")
    wait_for("b to be cloaked", lambda: sky.status(b)["host"].get("cloaked"), timeout=30)

    tcp = scan(internet, b.underlay_ip, "-sS", "--top-ports", "100", "-p", "T:2222,8000")
    assert tcp.pop("8000/tcp") == "open"  # the exception rule
    assert tcp and set(tcp.values()) == {"filtered"}, tcp
    udp = scan(
        internet,
        b.underlay_ip,
        "-sU",
        "--top-ports",
        "20",
        "-p",
        "U:5353",
        "--host-timeout",
        "120s",
    )
    assert udp and not {"open", "closed"} & set(udp.values()), udp
    # the overlay still works between the members
    b_ip = next(
        n["networks"][0]["ipv4"] for n in sky.admin("node", "list", "--json") if n["name"] == "b"
    )
    assert wait_for("a reaches b", lambda: hosts["a"].ping(b_ip, count=1, timeout=1))
    ruleset = b.run(["nft", "list", "table", "inet", "skylan"]).stdout
    assert "counter" in ruleset
    assert re.search(r"udp dport \{[^}]*51821", ruleset), ruleset  # every lane's port

    sky.admin("net", "update", "prod", "--visible")
    wait_for("b to be visible", lambda: not sky.status(b)["host"].get("cloaked"), timeout=30)
    assert scan(internet, b.underlay_ip, "-sS", "-p", "2222")["2222/tcp"] == "open"
    assert not b.run(["nft", "list", "table", "inet", "skylan"]).ok  # removed cleanly

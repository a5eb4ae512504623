"""The encrypted layer-2 network end to end: real agents, TAPs and tunnels."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from skylan.lab import Host, Lab
from skylan.lab.product import Deployment, wait_for


@dataclass
class Overlay:
    lab: Lab
    sky: Deployment
    hosts: dict[str, Host]
    ips: dict[str, str]


@pytest.fixture
def overlay(lab: Lab, tmp_path: Path) -> Iterator[Overlay]:
    ctl = lab.add_host("ctl")
    hosts = {"a": lab.add_host("a"), "b": lab.add_host("b"), "c": lab.add_host("c", nat=True)}
    sky = Deployment(tmp_path)
    sky.start_controller(ctl)
    sky.admin("net", "create", "prod", "--cidr", "172.16.1.0/24")
    token = sky.admin("token", "create", "--network", "prod", "--uses", "3", "--json")["token"]
    for host in hosts.values():
        sky.join(host, token)

    def ready() -> bool:
        nodes = sky.admin("node", "list", "--json")
        return len(nodes) == 3 and all(n["online"] and n["networks"] for n in nodes)

    wait_for("three nodes online", ready, timeout=60)
    ips = {n["name"]: n["networks"][0]["ipv4"] for n in sky.admin("node", "list", "--json")}
    for name, host in hosts.items():
        wait_for(
            f"sky0 on {name}",
            lambda h=host, n=name: (
                ips[n] in h.run(["ip", "-4", "addr", "show", "dev", "sky0"]).stdout
            ),
        )
    yield Overlay(lab, sky, hosts, ips)


def test_all_nodes_ping_each_other(overlay: Overlay) -> None:
    for src, host in overlay.hosts.items():
        for dst, ip in overlay.ips.items():
            if src != dst:
                wait_for(
                    f"{src} -> {dst}",
                    lambda h=host, i=ip: h.ping(i, count=1, timeout=1),
                    timeout=20,
                )

    def tunnels() -> dict[str, Any]:
        status = overlay.sky.status(overlay.hosts["a"])
        return {p["name"]: p["tunnel"] for p in status["networks"][0]["peers"]}

    wait_for(
        "a's status to show both tunnels",
        lambda: all(t and t["established"] for t in tunnels().values()),
    )
    # c sits behind NAT: a learned its public (router) address from its packets
    assert tunnels()["c"]["endpoint"].startswith("198.18.2.")
    assert tunnels()["b"]["rtt_ms"] is not None

"""Nodes behind NAT reach each other: candidates from the controller's
reflector, simultaneous initiations through both NATs (hole punching), and
the path each tunnel takes, as `skylan status` shows it."""

from __future__ import annotations

import time
from pathlib import Path

from skylan.lab import Lab
from skylan.lab.host import Host
from skylan.lab.nat import NatType
from skylan.lab.product import Deployment, wait_for


def pair(lab: Lab, sky: Deployment, a: Host, b: Host) -> dict[str, str]:
    """Both join one network; their overlay addresses."""
    sky.admin("net", "create", "prod", "--cidr", "172.16.1.0/24", "--encrypted")
    token = sky.admin("token", "create", "--network", "prod", "--uses", "2", "--json")["token"]
    sky.join(a, token)
    sky.join(b, token)

    def addresses() -> dict[str, str] | None:
        nodes = sky.admin("node", "list", "--json")
        found = {n["name"]: n["networks"][0]["ipv4"] for n in nodes if n["networks"]}
        return found if len(found) == 2 else None

    found = wait_for("both nodes to have addresses", addresses, timeout=30)
    assert isinstance(found, dict)
    return found


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
    sky = Deployment(tmp_path)
    sky.start_controller(ctl)
    sky.start_relay(relay_host, "r1")
    started = time.monotonic()
    ips = pair(lab, sky, a, b)
    wait_for("a to ping b over the overlay", lambda: a.ping(ips["b"], count=1, timeout=1), 30)
    took = time.monotonic() - started
    wait_for("a's tunnel to b to show the relay", lambda: path_of(sky, a, "b")[0] == "relay", 10)
    assert path_of(sky, a, "b")[1].startswith(f"{relay_host.underlay_ip}:")
    assert b.ping(ips["a"], count=3, timeout=2)
    print(f"connected through the relay {took:.1f} s after the agents started")
    assert took < 5, f"connected {took:.1f} s after the agents started"

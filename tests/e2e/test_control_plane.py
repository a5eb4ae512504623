"""Controller and agents across the lab: enrollment over the underlay (one node
behind NAT), netmaps, `skylan status`, and riding out a controller restart."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skylan.controller.tls import fingerprint_of_pem
from skylan.lab import Host, Lab

ADMIN = "skyadm_e2e-admin-token-0123456789abcdef"
CTL_PORT = 8443


def skylan(host: Host, *args: str, env: dict[str, str] | None = None) -> Any:
    res = host.run(
        [sys.executable, "-m", "skylan", *args], env={**os.environ, **(env or {})}, timeout=60
    )
    assert res.ok, f"skylan {' '.join(args)} on {host.name}: {res.stderr}"
    return json.loads(res.stdout) if "--json" in args else res.stdout


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (AssertionError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def start_controller(lab: Lab, ctl: Host, data: Path) -> Any:
    proc = ctl.spawn(
        [
            sys.executable,
            "-m",
            "skylan",
            "controller",
            "serve",
            "--data-dir",
            str(data),
            "--listen",
            f"{ctl.underlay_ip}:{CTL_PORT}",
            "--poll-interval",
            "0.5",
        ],
        env={**os.environ, "SKYLAN_ADMIN_TOKEN": ADMIN, "SKYLAN_LOG": "warning"},
    )
    url = f"https://{ctl.underlay_ip}:{CTL_PORT}"
    wait_for(
        "the controller",
        lambda: (
            ctl.run(
                [
                    sys.executable,
                    "-c",
                    f"import httpx; httpx.get('{url}/api/v1/health', verify=False)",
                ]
            ).ok
        ),
    )
    return proc


def test_agents_enroll_follow_netmaps_and_survive_controller_restart(
    lab: Lab, tmp_path: Path
) -> None:
    ctl = lab.add_host("ctl")
    hosts = [lab.add_host("a"), lab.add_host("b"), lab.add_host("c", nat=True)]
    data = tmp_path / "controller"
    controller = start_controller(lab, ctl, data)
    url = f"https://{ctl.underlay_ip}:{CTL_PORT}"
    admin_env = {
        "SKYLAN_URL": url,
        "SKYLAN_TOKEN": ADMIN,
        "SKYLAN_FINGERPRINT": fingerprint_of_pem((data / "tls.crt").read_bytes()),
        "SKYLAN_CONFIG": str(tmp_path / "cli.json"),
    }
    skylan(ctl, "net", "create", "prod", "--cidr", "172.16.1.0/24", env=admin_env)
    token = skylan(
        ctl, "token", "create", "--network", "prod", "--uses", "3", "--json", env=admin_env
    )["token"]
    for host in hosts:
        log = (tmp_path / f"{host.name}.log").open("wb")
        host.spawn(
            [
                sys.executable,
                "-m",
                "skylan",
                "agent",
                "join",
                url,
                token,
                "--state-dir",
                str(tmp_path / host.name),
                "--hostname",
                host.name,
            ],
            stdout=log,
            stderr=log,
        )

    def all_online() -> bool:
        nodes = skylan(ctl, "node", "list", "--json", env=admin_env)
        return len(nodes) == 3 and all(n["online"] and n["networks"] for n in nodes)

    try:
        wait_for("three nodes online", all_online)
    except AssertionError:
        for host in hosts:
            print(host.name, (tmp_path / f"{host.name}.log").read_text()[-2000:])
        raise
    nodes = {n["name"]: n for n in skylan(ctl, "node", "list", "--json", env=admin_env)}
    assert nodes["c"]["endpoints"][0].startswith("198.19.")  # its own (private) view
    assert sorted(n["networks"][0]["ipv4"] for n in nodes.values()) == [
        "172.16.1.1",
        "172.16.1.2",
        "172.16.1.3",
    ]

    def status(host: Host) -> Any:
        return skylan(host, "status", "--json", "--state-dir", str(tmp_path / host.name))

    def sees_peers(host: Host, names: set[str]) -> bool:
        nets = status(host)["networks"]
        return bool(nets) and {p["name"] for p in nets[0]["peers"]} == names

    wait_for("a sees b and c", lambda: sees_peers(hosts[0], {"b", "c"}))
    wait_for("c sees a and b", lambda: sees_peers(hosts[2], {"a", "b"}))
    human = skylan(hosts[0], "status", "--state-dir", str(tmp_path / "a"))
    assert "prod" in human and "172.16.1.2" in human

    # the controller goes away: agents keep their last netmap and say so
    controller.terminate()
    controller.wait(10)
    wait_for("a notices", lambda: status(hosts[0])["last_error"])
    assert sees_peers(hosts[0], {"b", "c"})

    # it comes back (same data dir): agents resync and see new changes
    start_controller(lab, ctl, data)
    skylan(ctl, "node", "rename", "b", "bravo", env=admin_env)
    wait_for("a sees the rename", lambda: sees_peers(hosts[0], {"bravo", "c"}), timeout=45)
    assert status(hosts[0])["last_error"] is None

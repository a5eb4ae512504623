"""What ``skylan demo`` shows: the product on this machine, in a lab of namespaces.

A controller (SQLite) and a relay run on lab hosts; four agents — one behind
a home router, one behind a symmetric NAT — join with a token over the lab's
underlay, exactly as on real machines, and ping each other across the
encrypted layer-2 network (the two behind NATs through the relay).

With ``--console`` the lab stays up (until Ctrl-C) with some traffic flowing,
and the web console is relayed to ``https://127.0.0.1:PORT/`` on this machine.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import typer
from rich.console import Console

from skylan.lab import Host, Lab
from skylan.lab.nat import NatType
from skylan.lab.product import CONTROLLER_PORT, Deployment
from skylan.lab.waiting import wait_for

_out = Console(highlight=False)


def _echo(text: str) -> None:
    """A command's output as it printed it: not read as Rich markup, which
    would swallow anything in brackets, such as an IPv6 endpoint."""
    _out.print(text, soft_wrap=True, markup=False)


def _ping(host: Host, address: str) -> str:
    deadline = time.monotonic() + 20  # the first packets may wait for a handshake
    while time.monotonic() < deadline:
        if host.ping(address, count=1, timeout=1):
            return "reachable"
    return "unreachable"


def _serve_console(sky: Deployment, ctl: Host, port: int, a: Host, b_ip: str) -> None:
    """Relay the console to loopback, keep traffic flowing, wait for Ctrl-C."""
    relay = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skylan.lab.forward",
            f"127.0.0.1:{port}",
            ctl.netns,
            f"{ctl.underlay_ip}:{CONTROLLER_PORT}",
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"https://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return httpx.get(f"{url}/login", verify=False, timeout=2).status_code == 200
            except httpx.HTTPError:
                return relay.poll() is not None  # a dead relay ends the wait (and the demo)

        wait_for("the console relay", answers)
        if relay.poll() is not None:
            raise typer.BadParameter(
                f"port {port} on 127.0.0.1 is taken", param_hint="--console-port"
            )
        # a gentle, bounded stream so the charts have something to show
        a.spawn(["iperf3", "-c", b_ip, "-b", "20M", "-t", "3600", "-p", "5201"])
        _out.rule("web console")
        _out.print(f"console: {url}/", soft_wrap=True)
        _out.print(
            "its certificate is self-signed; SHA-256 fingerprint "
            + sky.admin_env()["SKYLAN_FINGERPRINT"],
            soft_wrap=True,
        )
        _out.print(f"log in with the admin token: {sky.admin_token}", soft_wrap=True)
        _out.print("Ctrl-C ends the demo and removes the lab.")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    finally:
        relay.terminate()
        relay.wait(timeout=10)


def tour(console: bool, console_port: int) -> None:
    with tempfile.TemporaryDirectory(prefix="skylan-demo-") as tmp, Lab() as lab:
        sky = Deployment(Path(tmp))
        _out.rule(
            f"lab {lab.id}: hosts ctl, relay, a, b, c (behind a home router) "
            "and d (behind a symmetric NAT, like a cloud NAT gateway)"
        )
        ctl, relay = lab.add_host("ctl"), lab.add_host("relay")
        nodes = [
            lab.add_host("a"),
            lab.add_host("b"),
            lab.add_host("c", nat=NatType.EIM),
            lab.add_host("d", nat=NatType.SYMMETRIC),
        ]
        sky.start_controller(ctl)
        _out.print(f"controller running on {sky.url} (SQLite)")
        _out.rule(f"skylan relay add r1 {relay.underlay_ip}:3478, then skylan relay serve on it")
        sky.start_relay(relay, "r1")
        _echo(sky.admin("relay", "list"))
        _out.rule("skylan net create demo --cidr 172.16.1.0/24")
        _echo(sky.admin("net", "create", "demo", "--cidr", "172.16.1.0/24"))
        token = sky.admin("token", "create", "--network", "demo", "--uses", "4", "--json")
        _out.rule("on a, b, c and d: skylan agent join URL TOKEN")
        _out.print(f"skylan agent join {sky.url} {token['token']}", soft_wrap=True)
        for host in nodes:
            sky.join(host, token["token"])

        def all_online() -> bool:
            listed = sky.admin("node", "list", "--json")
            return len(listed) == 4 and all(n["online"] and n["networks"] for n in listed)

        wait_for("the four agents to come online", all_online, timeout=60)
        wait_for("d's netmap", lambda: len(sky.status(nodes[3])["networks"][0]["peers"]) == 3)
        ips = {n["name"]: n["networks"][0]["ipv4"] for n in sky.admin("node", "list", "--json")}
        _out.rule("ping across the encrypted overlay")
        by_name = {h.name: h for h in nodes}
        for src, dst in (("a", "b"), ("a", "c"), ("c", "b"), ("d", "a"), ("d", "c")):
            _out.print(f"{src} -> {dst} ({ips[dst]}): {_ping(by_name[src], ips[dst])}")
        _out.rule("names: every member answers NODE.NETWORK.skylan.internal")
        for src, dst in (("a", "c"), ("d", "b")):
            name = f"{dst}.demo.skylan.internal"
            found = by_name[src].run(["getent", "ahostsv4", name]).stdout.split()
            _out.print(f"on {src}: {name} is {found[0] if found else 'not found'}")
        _out.rule("skylan node list (on the controller)")
        _echo(sky.admin("node", "list"))

        def relayed_to_c() -> bool:
            peers = sky.status(nodes[3])["networks"][0]["peers"]
            return any(p["name"] == "c" and (p["tunnel"] or {}).get("path") for p in peers)

        wait_for("d's status to show its paths", relayed_to_c, timeout=10)
        _out.rule("skylan status (on d: direct to a and b, relayed to c)")
        d_status = sky.skylan(nodes[3], "status", "--state-dir", str(sky.state_dir(nodes[3])))
        _echo(d_status)
        if console:
            by_name["b"].spawn(["iperf3", "-s", "-p", "5201"])
            _serve_console(sky, ctl, console_port, by_name["a"], ips["b"])
        else:
            _out.print(
                f"API: {sky.url}/api/v1/docs (reachable inside the lab); admin token "
                f"{sky.admin_token}. `skylan demo --console` keeps the lab up and "
                "shows the web console. The lab is removed when the demo ends."
            )
    _out.print("lab removed")

"""The compiled core and the Python data plane on one network: the wire
format is one, so a node on either talks to a node on the other, and sessions
move between Python (handshakes) and the core (data) at every rekey without
losing the traffic. Rekeys come every 3 s here instead of 90 s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skylan.dataplane import native
from skylan.lab import Host, Lab
from skylan.lab.waiting import wait_for
from skylan.tunnel.keys import StaticKeypair
from tests.e2e import netmapdriver
from tests.netmaps import netmap, peer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not native.available(), reason="the compiled core is not built"),
]

REKEY_S = 3.0


def _start(lab: Lab, tmp_path: Path, kinds: dict[str, str]) -> dict[str, Host]:
    hosts = {name: lab.add_host(name) for name in kinds}
    keys = {name: StaticKeypair.generate() for name in kinds}
    peers = [
        peer(n, keys[n].public_b64, f"172.16.8.{i + 1}", hosts[n].underlay_ip)
        for i, n in enumerate(kinds)
    ]
    for name, host in hosts.items():
        nm = netmap(name, peers, cidr4="172.16.8.0/24")
        netmapdriver.start(host, tmp_path, name, keys[name], nm, kinds[name], str(REKEY_S))
    for name in hosts:
        netmapdriver.wait_started(tmp_path, name)
    return hosts


def test_native_and_python_nodes_talk_across_rekeys(lab: Lab, tmp_path: Path) -> None:
    hosts = _start(lab, tmp_path, {"n": "native", "p": "python", "m": "native"})
    n, p, m = hosts["n"], hosts["p"], hosts["m"]
    assert netmapdriver.status(tmp_path, "n")["dataplane"] == "native"
    assert netmapdriver.status(tmp_path, "p")["dataplane"] == "python"
    wait_for("n -> p", lambda: n.ping("172.16.8.2"), timeout=20)
    wait_for("n -> m", lambda: n.ping("172.16.8.3"), timeout=20)
    wait_for("p -> m", lambda: p.ping("172.16.8.3"), timeout=20)
    # 12 s of steady pings, both ways, over four rekeys: none lost
    n_ping = n.spawn(
        ["ping", "-n", "-q", "-c", "120", "-i", "0.1", "172.16.8.2"],
        stdout=(tmp_path / "n-ping").open("wb"),
    )
    p_ping = p.spawn(
        ["ping", "-n", "-q", "-c", "120", "-i", "0.1", "172.16.8.3"],
        stdout=(tmp_path / "p-ping").open("wb"),
    )
    m.spawn(["iperf3", "-s", "-1", "-p", "5301"])
    wait_for("iperf3 on m", lambda: "5301" in m.run(["ss", "-ltn"]).stdout)
    res = n.run(["iperf3", "-c", "172.16.8.3", "-p", "5301", "-t", "8", "-J"], timeout=60)
    assert res.ok, res.stderr
    assert json.loads(res.stdout)["end"]["sum_received"]["bytes"] > 50 << 20
    assert n_ping.wait(timeout=30) == 0 and p_ping.wait(timeout=30) == 0
    for out in ("n-ping", "p-ping"):
        text = (tmp_path / out).read_text()
        assert " 0% packet loss" in text, text
    st = netmapdriver.status(tmp_path, "n")
    assert st["peers"]["p"]["established"] and st["peers"]["m"]["established"]
    # sessions die 6 s after their handshake: still up after 12 s, they were rekeyed
    assert st["peers"]["p"]["handshake_age_s"] < 2 * REKEY_S
    core = st["core"]
    assert core["rx_messages"] > 1000 and core["tx_messages"] > 1000, core
    assert not {k: v for k, v in st["drops"].items() if k in ("auth_failed", "replay")}, st

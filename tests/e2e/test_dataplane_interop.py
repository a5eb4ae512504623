"""The compiled core and the Python data plane on one network: the wire
format is one, so a node on either talks to a node on the other, and sessions
move between Python (handshakes) and the core (data) at every rekey without
losing the traffic. Rekeys come every 3 s here instead of 90 s."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from skylan.agent.state import save_key
from skylan.dataplane import native
from skylan.lab import Host, Lab
from skylan.lab.product import wait_for
from skylan.model.netmap import NetMap, NetworkMap, PeerInfo, PortInfo, SelfInfo
from skylan.tunnel.keys import StaticKeypair

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not native.available(), reason="the compiled core is not built"),
]

PORT = 51820
DRIVER = Path(__file__).with_name("netmap_node.py")
REKEY_S = 3.0


def _peer(name: str, key: StaticKeypair, host: Host, last: int) -> PeerInfo:
    return PeerInfo(
        node_id=name,
        name=name,
        public_key=key.public_b64,
        endpoints=[f"{host.underlay_ip}:{PORT}"],
        port=PortInfo(
            port_id=f"port-{name}",
            mac=f"02:00:00:00:00:{last:02x}",
            ipv4=f"172.16.8.{last}",
            prefixlen=24,
        ),
    )


def _start(lab: Lab, tmp_path: Path, kinds: dict[str, str]) -> dict[str, Host]:
    hosts = {name: lab.add_host(name) for name in kinds}
    keys = {name: StaticKeypair.generate() for name in kinds}
    peers = [_peer(n, keys[n], hosts[n], i + 1) for i, n in enumerate(kinds)]
    for name, host in hosts.items():
        net = NetworkMap(
            id="net",
            name="prod",
            vni=1,
            cidr4="172.16.8.0/24",
            cidr6=None,
            mtu=1420,
            encrypted=True,
            cloaked=False,
            storm_pps=1000,
            routes=[],
            cloak_rules=[],
            peers=peers,
        )
        netmap = NetMap(
            version=1, node=SelfInfo(node_id=name, name=name, status="approved"), networks=[net]
        )
        (tmp_path / f"{name}.json").write_text(netmap.model_dump_json())
        save_key(keys[name], tmp_path / f"{name}.key")
        host.spawn(
            [
                sys.executable,
                str(DRIVER),
                str(tmp_path / f"{name}.key"),
                str(PORT),
                str(tmp_path / f"{name}.json"),
                str(tmp_path / f"{name}-status.json"),
                kinds[name],
                str(REKEY_S),
            ],
            stderr=(tmp_path / f"{name}.log").open("wb"),
        )
    for name in hosts:
        wait_for(f"{name}'s data plane", lambda n=name: (tmp_path / f"{n}-status.json").exists())
    return hosts


def _status(tmp_path: Path, name: str) -> Any:
    return json.loads((tmp_path / f"{name}-status.json").read_text())


def test_native_and_python_nodes_talk_across_rekeys(lab: Lab, tmp_path: Path) -> None:
    hosts = _start(lab, tmp_path, {"n": "native", "p": "python", "m": "native"})
    n, p, m = hosts["n"], hosts["p"], hosts["m"]
    assert _status(tmp_path, "n")["dataplane"] == "native"
    assert _status(tmp_path, "p")["dataplane"] == "python"
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
    st = _status(tmp_path, "n")
    assert st["peers"]["p"]["established"] and st["peers"]["m"]["established"]
    # sessions die 6 s after their handshake: still up after 12 s, they were rekeyed
    assert st["peers"]["p"]["handshake_age_s"] < 2 * REKEY_S
    core = st["core"]
    assert core["rx_messages"] > 1000 and core["tx_messages"] > 1000, core
    assert not {k: v for k, v in st["drops"].items() if k in ("auth_failed", "replay")}, st

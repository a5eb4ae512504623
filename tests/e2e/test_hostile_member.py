"""A netmap with hostile members: keys that admit no shared secret (all zeros,
a point of order 8), a member claiming the receiving node's own key, a key that
is not base64 and a MAC that is not one. Listed before the good peer, each used
to stop the data plane's netmap (and with it every later peer's tunnel and
broadcasts) with a raw exception. Now each is skipped and named in the status,
and the good peers ping each other: ARP, a broadcast, goes out past them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from skylan.agent.state import save_key
from skylan.lab import Lab
from skylan.lab.product import wait_for
from skylan.model.netmap import NetMap, NetworkMap, PeerInfo, PortInfo, SelfInfo
from skylan.tunnel.keys import StaticKeypair

PORT = 51820
DRIVER = Path(__file__).with_name("netmap_node.py")
ZERO = "A" * 43 + "="
ORDER_8 = "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA="


def _peer(node_id: str, key: str, ip: str, underlay: str, mac: str | None = None) -> PeerInfo:
    last = int(ip.rsplit(".", 1)[1])
    return PeerInfo(
        node_id=node_id,
        name=node_id,
        public_key=key,
        endpoints=[f"{underlay}:{PORT}"],
        port=PortInfo(
            port_id=f"port-{node_id}",
            mac=mac or f"02:00:00:00:00:{last:02x}",
            ipv4=ip,
            prefixlen=24,
        ),
    )


def test_hostile_members_are_skipped_and_the_rest_keep_working(lab: Lab, tmp_path: Path) -> None:
    a, b = lab.add_host("a"), lab.add_host("b")
    keys = {n: StaticKeypair.generate() for n in ("a", "b")}
    good = {
        "a": _peer("a", keys["a"].public_b64, "172.16.9.1", a.underlay_ip),
        "b": _peer("b", keys["b"].public_b64, "172.16.9.2", b.underlay_ip),
    }
    nowhere = "198.18.1.250"  # inside the lab's underlay; nobody answers there
    for name, host in (("a", a), ("b", b)):
        other = "b" if name == "a" else "a"
        hostile = [
            _peer("zero", ZERO, "172.16.9.10", nowhere),
            _peer("order8", ORDER_8, "172.16.9.11", nowhere),
            _peer("mirror", keys[name].public_b64, "172.16.9.12", nowhere),
            _peer("garbled", "not base64!", "172.16.9.13", nowhere),
            _peer("badmac", StaticKeypair.generate().public_b64, "172.16.9.14", nowhere, "zz"),
        ]
        net = NetworkMap(
            id="net",
            name="prod",
            vni=1,
            cidr4="172.16.9.0/24",
            cidr6=None,
            mtu=1420,
            encrypted=True,
            cloaked=False,
            storm_pps=1000,
            routes=[],
            cloak_rules=[],
            peers=[*hostile, good[name], good[other]],
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
            ],
            stderr=(tmp_path / f"{name}.log").open("wb"),
        )

    def status(name: str) -> dict[str, object]:
        data: dict[str, object] = json.loads((tmp_path / f"{name}-status.json").read_text())
        return data

    for name in ("a", "b"):
        wait_for(f"{name}'s data plane", lambda n=name: (tmp_path / f"{n}-status.json").exists())
    # ping resolves the other's MAC by ARP first: a broadcast to every member
    wait_for("a -> b over the overlay", lambda: a.ping("172.16.9.2"), timeout=20)
    assert b.ping("172.16.9.1")
    for name in ("a", "b"):
        other = "b" if name == "a" else "a"
        st = wait_for(
            f"{name}'s status to show the tunnel",
            lambda n=name, o=other: (s := status(n))["peers"][o]["established"] and s,  # type: ignore[index]
        )
        assert set(st["bad_peers"]) == {"zero", "order8", "mirror", "garbled", "badmac"}, st
        assert set(st["peers"]) == {other}

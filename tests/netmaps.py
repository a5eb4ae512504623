"""Hand-made netmaps for tests that drive a data plane or the host
configuration without a controller (one place that knows a netmap's shape)."""

from __future__ import annotations

from typing import Any

from skylan.model.netmap import NetMap, NetworkMap, PeerInfo, PortInfo, SelfInfo

PORT = 51820


def peer(
    node_id: str,
    key: str,
    ip: str,
    underlay: str,
    mac: str | None = None,
    **port: Any,
) -> PeerInfo:
    """A member with one port at ``ip`` (its MAC from the address unless
    given); ``port``: more of the port's fields (``ipv6``, ``extra_ips``), and
    ``tags``."""
    last = int(ip.rsplit(".", 1)[1])
    tags = port.pop("tags", [])
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
            **port,
        ),
        tags=tags,
    )


def network(peers: list[PeerInfo], **settings: Any) -> NetworkMap:
    """One encrypted network of ``peers``; ``settings`` override the defaults."""
    fields: dict[str, Any] = {
        "id": "net",
        "name": "prod",
        "vni": 1,
        "cidr4": "172.16.9.0/24",
        "cidr6": None,
        "mtu": 1420,
        "encrypted": True,
        "cloaked": False,
        "storm_pps": 1000,
        "routes": [],
        "cloak_rules": [],
        "peers": peers,
    }
    return NetworkMap(**(fields | settings))


def netmap(node: str, peers: list[PeerInfo], **settings: Any) -> NetMap:
    """``node``'s netmap with one encrypted network of ``peers``."""
    own = SelfInfo(node_id=node, name=node, status="approved")
    return NetMap(version=1, node=own, networks=[network(peers, **settings)])

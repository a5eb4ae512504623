"""Building netmap pieces from the database.

A network's section (its settings, members, routes and cloak rules) is the
same for every member, so it is built and serialised once per change and
shared; a node's netmap is then its own header plus the sections of its
networks, concatenated as bytes.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from skylan.controller.storage.tables import (
    CloakRuleRow,
    NetworkRow,
    NodeRow,
    PortRow,
    RouteRow,
)
from skylan.model.netmap import (
    CloakRuleInfo,
    NetworkMap,
    PeerInfo,
    PortInfo,
    RouteInfo,
    SelfInfo,
)


@dataclass
class NetworkSection:
    """A network's part of every member's netmap, serialised once.

    ``settings`` is the section's JSON without its closing brace and without
    ``peers``; the peer list is kept apart so that an agent that already holds
    the current list (it asked ``since`` a version at or after
    ``peers_version``) gets ``"peers": null`` instead of N entries again.
    """

    settings: bytes
    peers: bytes
    members: set[str]  # every node with a port, approved or not
    peers_version: int = 0

    def render(self, since: int) -> bytes:
        unchanged = 0 < self.peers_version <= since
        return self.settings + b',"peers":' + (b"null" if unchanged else self.peers) + b"}"


@dataclass
class NodeHeader:
    json: bytes
    approved: bool


def port_info(port: PortRow, prefixlen: int) -> PortInfo:
    return PortInfo(
        port_id=port.id,
        mac=port.mac,
        ipv4=port.ipv4,
        prefixlen=prefixlen,
        extra_ips=list(port.extra_ips),
    )


def build_sections(db: Session, network_ids: Iterable[str]) -> dict[str, NetworkSection | None]:
    """Sections for the given networks; None for networks that no longer exist."""
    ids = list(network_ids)
    out: dict[str, NetworkSection | None] = dict.fromkeys(ids)
    if not ids:
        return out
    networks = {n.id: n for n in db.scalars(select(NetworkRow).where(NetworkRow.id.in_(ids)))}
    rows = db.execute(
        select(PortRow, NodeRow)
        .join(NodeRow, PortRow.node_id == NodeRow.id)
        .where(PortRow.network_id.in_(ids))
        .order_by(PortRow.ipv4)
    ).all()
    ports_by_net: dict[str, list[tuple[PortRow, NodeRow]]] = defaultdict(list)
    for port, node in rows:
        ports_by_net[port.network_id].append((port, node))
    routes_by_net: dict[str, list[RouteRow]] = defaultdict(list)
    for route in db.scalars(select(RouteRow).where(RouteRow.network_id.in_(ids))):
        routes_by_net[route.network_id].append(route)
    rules_by_net: dict[str, list[CloakRuleRow]] = defaultdict(list)
    for rule in db.scalars(select(CloakRuleRow).where(CloakRuleRow.network_id.in_(ids))):
        rules_by_net[rule.network_id].append(rule)
    for net_id, net in networks.items():
        prefixlen = ipaddress.IPv4Network(net.cidr4).prefixlen
        members = ports_by_net[net_id]
        port_ip = {p.id: p.ipv4 for p, _ in members}
        port_node = {p.id: p.node_id for p, _ in members}
        peer_list = [
            PeerInfo(
                node_id=node.id,
                name=node.name,
                public_key=node.public_key,
                endpoints=list(node.endpoints),
                port=port_info(port, prefixlen),
                observed_ip=node.observed_ip,
                lane_keys=list(node.lane_keys),
            )
            for port, node in members
            if node.status == "approved"
        ]
        section = NetworkMap(
            id=net.id,
            name=net.name,
            vni=net.vni,
            cidr4=net.cidr4,
            cidr6=net.cidr6,
            mtu=net.mtu,
            encrypted=net.encrypted,
            cloaked=net.cloaked,
            storm_pps=net.storm_pps,
            peers=None,
            routes=[
                RouteInfo(
                    id=r.id,
                    prefix=r.prefix,
                    via_port_id=r.via_port_id,
                    via_node_id=port_node.get(r.via_port_id, ""),
                    via_ipv4=port_ip.get(r.via_port_id, ""),
                    metric=r.metric,
                    masquerade=r.masquerade,
                )
                for r in sorted(routes_by_net[net_id], key=lambda r: (r.prefix, r.metric))
            ],
            cloak_rules=[
                CloakRuleInfo(
                    id=c.id,
                    node_id=c.node_id,
                    protocol=c.protocol,
                    port_from=c.port_from,
                    port_to=c.port_to,
                    source_cidr=c.source_cidr,
                )
                for c in sorted(rules_by_net[net_id], key=lambda c: c.created_at)
            ],
        )
        settings = section.model_dump_json(exclude={"peers"}).encode()
        peers = b"[" + b",".join(p.model_dump_json().encode() for p in peer_list) + b"]"
        out[net_id] = NetworkSection(settings[:-1], peers, {node.id for _, node in members})
    return out


def build_headers(db: Session, node_ids: Iterable[str]) -> dict[str, NodeHeader | None]:
    ids = list(node_ids)
    out: dict[str, NodeHeader | None] = dict.fromkeys(ids)
    if not ids:
        return out
    for node in db.scalars(select(NodeRow).where(NodeRow.id.in_(ids))):
        info = SelfInfo(node_id=node.id, name=node.name, status=node.status)
        out[node.id] = NodeHeader(info.model_dump_json().encode(), node.status == "approved")
    return out


def node_networks(db: Session, node_ids: Iterable[str]) -> dict[str, set[str]]:
    ids = list(node_ids)
    out: dict[str, set[str]] = {i: set() for i in ids}
    if ids:
        for node_id, net_id in db.execute(
            select(PortRow.node_id, PortRow.network_id).where(PortRow.node_id.in_(ids))
        ):
            out[node_id].add(net_id)
    return out


def assemble(version: int, header: NodeHeader, sections: list[bytes]) -> bytes:
    body = b",".join(sections) if header.approved else b""
    return b'{"version":%d,"node":%s,"networks":[%s]}' % (version, header.json, body)

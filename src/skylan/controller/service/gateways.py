"""Gateways to physical LANs: routes through a member, and the members that
could be one.

A route sends the members' traffic for ``prefix`` (an office LAN, say) to the
overlay address of the member ``via``, the gateway, which forwards it onto its
LAN (masquerading it unless told not to). Several gateways for one prefix form
a failover group: the lowest metric among the reachable ones wins.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict

from sqlalchemy.orm import Session

from skylan.controller.service import lookup, networkrows
from skylan.controller.service.errors import Conflict, Invalid
from skylan.controller.state.store import State
from skylan.controller.storage.tables import RouteRow
from skylan.model.api import GatewayCandidate
from skylan.model.requests import RouteCreate


def create(db: Session, state: State, network: str, body: RouteCreate) -> str:
    net = lookup.network(state, network)
    port = lookup.port(state, net, body.via)
    prefix = ipaddress.ip_network(body.prefix)
    if prefix.prefixlen == 0:
        raise Invalid(
            "a default route through a gateway is not supported; name the LAN prefixes",
            field="prefix",
        )
    if prefix.version == 6 and net.cidr6 is None:
        raise Invalid(
            f"{prefix} is IPv6, and {net.name!r} has no IPv6 prefix: the gateway needs an "
            "IPv6 address in the network (skylan net update --cidr6)",
            field="prefix",
        )
    own = [ipaddress.ip_network(c) for c in (net.cidr4, net.cidr6) if c]
    if any(prefix.version == o.version and prefix.overlaps(o) for o in own):
        raise Invalid(
            f"{prefix} overlaps the network's own addresses; members reach those directly",
            field="prefix",
        )
    for route in list(state.routes.get(net.id, {}).values()):
        if route.prefix == str(prefix) and route.via_port_id == port.id:
            raise Conflict(f"{prefix} already goes via that gateway", route_id=route.id)
    row = RouteRow(
        network_id=net.id,
        prefix=str(prefix),
        via_port_id=port.id,
        metric=body.metric,
        masquerade=body.masquerade,
    )
    return networkrows.add(db, row)


def delete(db: Session, state: State, network: str, route_id: str) -> None:
    networkrows.remove(db, state, network, RouteRow, route_id, what="route")


def candidates(state: State, network: str) -> list[GatewayCandidate]:
    """Members with a private LAN the other members do not share (from the
    interfaces their agents report)."""
    net = lookup.network(state, network)
    overlay = ipaddress.ip_network(net.cidr4)
    members = sorted(
        (state.nodes[n] for n in state.members.get(net.id, {}) if n in state.nodes),
        key=lambda n: n.name,
    )
    seen: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
    for node in members:
        live = state.liveness.get(node.id)
        for iface in live.interface_list() if live is not None else []:
            name = str(iface.get("name", ""))
            for cidr in iface.get("addresses", []):
                try:
                    addr = ipaddress.ip_interface(cidr)
                except ValueError:
                    continue
                lan = addr.network
                if not addr.ip.is_private or addr.ip.is_loopback or addr.ip.is_link_local:
                    continue  # public addresses are the internet, not a LAN
                if lan.version == overlay.version and lan.overlaps(overlay):
                    continue
                seen[str(lan)].append((node.id, node.name, name, str(addr.ip)))
    out = []
    for prefix, holders in sorted(seen.items()):
        if len({node_id for node_id, _, _, _ in holders}) < len(members):  # not everyone is on it
            out += [
                GatewayCandidate(node_id=i, node=n, interface=f, prefix=prefix, address=a)
                for i, n, f, a in holders
            ]
    return out

"""``/api/v1/networks/{network}/routes``: gateways to physical LANs.

A route sends the members' traffic for ``prefix`` (an office LAN, say) to the
overlay address of the member ``via``, the gateway, which forwards it onto
its LAN (masquerading it unless told not to). Several gateways for one prefix
form a failover group: the lowest metric among the reachable ones wins.

``/gateway-candidates`` lists members that reach a LAN prefix (from the
interfaces their agents report) that the other members do not.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from skylan.controller.api import lookup, validators
from skylan.controller.api.deps import AdminAccess, Db, ReadAccess
from skylan.controller.api.errors import ApiError, not_found
from skylan.controller.changes import record_change
from skylan.controller.storage.tables import NodeRow, PortRow, RouteRow
from skylan.model.api import GatewayCandidate, RouteOut

router = APIRouter(prefix="/networks/{network}", tags=["gateways"])


class RouteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str
    via: str = Field(description="the gateway: its port id, or its node id or name")
    metric: int = Field(100, ge=0, le=65535, description="lower wins among live gateways")
    masquerade: bool = Field(True, description="hide overlay addresses behind the gateway's")

    _prefix = field_validator("prefix")(validators.any_prefix)


def _out(db: Session, r: RouteRow) -> RouteOut:
    port = db.get(PortRow, r.via_port_id)
    node = db.get(NodeRow, port.node_id) if port else None
    return RouteOut(
        id=r.id,
        network_id=r.network_id,
        prefix=r.prefix,
        via_port_id=r.via_port_id,
        via_node=node.name if node else "",
        metric=r.metric,
        masquerade=r.masquerade,
        created_at=r.created_at,
    )


@router.get("/routes", dependencies=[ReadAccess])
def list_routes(network: str, db: Db) -> list[RouteOut]:
    net = lookup.network(db, network)
    rows = db.scalars(
        select(RouteRow)
        .where(RouteRow.network_id == net.id)
        .order_by(RouteRow.prefix, RouteRow.metric)
    )
    return [_out(db, r) for r in rows]


@router.post("/routes", status_code=201, dependencies=[AdminAccess])
def create_route(network: str, body: RouteCreate, db: Db) -> RouteOut:
    net = lookup.network(db, network)
    port = lookup.port(db, net, body.via)
    prefix = ipaddress.ip_network(body.prefix)
    if prefix.prefixlen == 0:
        raise ApiError(
            422,
            "a default route through a gateway is not supported; name the LAN prefixes",
            field="prefix",
        )
    own = [ipaddress.ip_network(c) for c in (net.cidr4, net.cidr6) if c]
    if any(prefix.version == o.version and prefix.overlaps(o) for o in own):
        raise ApiError(
            422,
            f"{prefix} overlaps the network's own addresses; members reach those directly",
            field="prefix",
        )
    duplicate = db.scalar(
        select(RouteRow.id).where(
            RouteRow.network_id == net.id,
            RouteRow.prefix == str(prefix),
            RouteRow.via_port_id == port.id,
        )
    )
    if duplicate:
        raise ApiError(409, f"{prefix} already goes via that gateway", route_id=duplicate)
    row = RouteRow(
        network_id=net.id,
        prefix=str(prefix),
        via_port_id=port.id,
        metric=body.metric,
        masquerade=body.masquerade,
    )
    db.add(row)
    record_change(db, networks=[net.id])
    db.commit()
    return _out(db, row)


@router.delete("/routes/{route_id}", status_code=204, dependencies=[AdminAccess])
def delete_route(network: str, route_id: str, db: Db) -> Response:
    net = lookup.network(db, network)
    row = db.get(RouteRow, route_id)
    if row is None or row.network_id != net.id:
        raise not_found("route", route_id)
    db.delete(row)
    record_change(db, networks=[net.id])
    db.commit()
    return Response(status_code=204)


@router.get("/gateway-candidates", dependencies=[ReadAccess])
def gateway_candidates(network: str, db: Db) -> list[GatewayCandidate]:
    """Members with a private LAN the other members do not share."""
    net = lookup.network(db, network)
    overlay = ipaddress.ip_network(net.cidr4)
    members = list(
        db.execute(
            select(NodeRow)
            .join(PortRow, PortRow.node_id == NodeRow.id)
            .where(PortRow.network_id == net.id)
            .order_by(NodeRow.name)
        ).scalars()
    )
    seen: dict[str, list[tuple[NodeRow, str, str]]] = defaultdict(list)
    for node in members:
        for iface in node.interfaces:
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
                seen[str(lan)].append((node, name, str(addr.ip)))
    out = []
    for prefix, holders in sorted(seen.items()):
        if len({n.id for n, _, _ in holders}) < len(members):  # not everyone is on it
            out += [
                GatewayCandidate(node_id=n.id, node=n.name, interface=i, prefix=prefix, address=a)
                for n, i, a in holders
            ]
    return out

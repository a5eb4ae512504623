"""``/api/v1/networks/{network}/routes``: prefixes reached through a member.

A route sends traffic for ``prefix`` (an office LAN, say) via the overlay
address of the port ``via``; the agents install it (gateway issue).
"""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from skylan.controller.api import lookup, validators
from skylan.controller.api.deps import AdminAccess, Db, ReadAccess
from skylan.controller.api.errors import ApiError, not_found
from skylan.controller.changes import record_change
from skylan.controller.storage.tables import RouteRow
from skylan.model.api import RouteOut

router = APIRouter(prefix="/networks/{network}/routes", tags=["routes"])


class RouteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prefix: str
    via: str = Field(description="the gateway's port id, or its node id or name")
    metric: int = Field(100, ge=0, le=65535, description="lower wins")

    _prefix = field_validator("prefix")(validators.any_prefix)


def _out(r: RouteRow) -> RouteOut:
    return RouteOut(
        id=r.id,
        network_id=r.network_id,
        prefix=r.prefix,
        via_port_id=r.via_port_id,
        metric=r.metric,
        created_at=r.created_at,
    )


@router.get("", dependencies=[ReadAccess])
def list_routes(network: str, db: Db) -> list[RouteOut]:
    net = lookup.network(db, network)
    rows = db.scalars(
        select(RouteRow)
        .where(RouteRow.network_id == net.id)
        .order_by(RouteRow.prefix, RouteRow.metric)
    )
    return [_out(r) for r in rows]


@router.post("", status_code=201, dependencies=[AdminAccess])
def create_route(network: str, body: RouteCreate, db: Db) -> RouteOut:
    net = lookup.network(db, network)
    port = lookup.port(db, net, body.via)
    prefix = ipaddress.ip_network(body.prefix)
    own = [ipaddress.ip_network(c) for c in (net.cidr4, net.cidr6) if c]
    if any(prefix.version == o.version and prefix.overlaps(o) for o in own):
        raise ApiError(
            422,
            f"{prefix} overlaps the network's own addresses; members reach those directly",
            field="prefix",
        )
    row = RouteRow(network_id=net.id, prefix=str(prefix), via_port_id=port.id, metric=body.metric)
    db.add(row)
    record_change(db, networks=[net.id])
    db.commit()
    return _out(row)


@router.delete("/{route_id}", status_code=204, dependencies=[AdminAccess])
def delete_route(network: str, route_id: str, db: Db) -> Response:
    net = lookup.network(db, network)
    row = db.get(RouteRow, route_id)
    if row is None or row.network_id != net.id:
        raise not_found("route", route_id)
    db.delete(row)
    record_change(db, networks=[net.id])
    db.commit()
    return Response(status_code=204)

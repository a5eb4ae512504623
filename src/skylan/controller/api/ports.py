"""``/api/v1/networks/{network}/ports``: attaching nodes to networks (see
:mod:`skylan.controller.service.ports`)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skylan.controller import ipam
from skylan.controller.api import lookup
from skylan.controller.api.deps import AdminAccess, Db, ReadAccess
from skylan.controller.api.errors import ApiError
from skylan.controller.changes import record_change
from skylan.controller.service import ports
from skylan.controller.storage.tables import NodeRow, PortRow
from skylan.model.api import PortOut

router = APIRouter(prefix="/networks/{network}/ports", tags=["ports"])


def _extra(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    try:
        return list(dict.fromkeys(ipam.check_extra(v) for v in values))
    except ipam.AddressError as exc:
        raise ValueError(str(exc)) from None


class PortCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: str = Field(description="node id or name")
    ipv4: str | None = Field(None, description="static address; omit to take one from the pool")
    extra_ips: list[str] = Field(
        default_factory=list, max_length=64, description="floating addresses this port may also use"
    )

    _extra = field_validator("extra_ips")(_extra)


class PortUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ipv4: str | None = None
    extra_ips: list[str] | None = Field(None, max_length=64)

    _extra = field_validator("extra_ips")(_extra)


def _out(db: Session, port: PortRow) -> PortOut:
    node = db.get(NodeRow, port.node_id)
    return PortOut(
        id=port.id,
        network_id=port.network_id,
        node_id=port.node_id,
        node=node.name if node else "",
        mac=port.mac,
        ipv4=port.ipv4,
        extra_ips=list(port.extra_ips),
        created_at=port.created_at,
    )


@router.get("", dependencies=[ReadAccess])
def list_ports(network: str, db: Db) -> list[PortOut]:
    net = lookup.network(db, network)
    rows = db.scalars(select(PortRow).where(PortRow.network_id == net.id).order_by(PortRow.ipv4))
    return [_out(db, p) for p in rows]


@router.post("", status_code=201, dependencies=[AdminAccess])
def attach_port(network: str, body: PortCreate, db: Db) -> PortOut:
    net = lookup.network(db, network)
    node = lookup.node(db, body.node)
    port = ports.attach(db, net, node, body.ipv4, body.extra_ips)
    db.commit()
    return _out(db, port)


@router.get("/{port}", dependencies=[ReadAccess])
def get_port(network: str, port: str, db: Db) -> PortOut:
    net = lookup.network(db, network)
    return _out(db, lookup.port(db, net, port))


@router.patch("/{port}", dependencies=[AdminAccess])
def update_port(network: str, port: str, body: PortUpdate, db: Db) -> PortOut:
    net = lookup.network(db, network)
    row = lookup.port(db, net, port)
    if body.ipv4 is not None and body.ipv4 != row.ipv4:
        others = [ip for ip in ports.taken(db, net) if ip != row.ipv4]
        row.ipv4 = ports.checked_static(net, body.ipv4, others)
    if body.extra_ips is not None:
        row.extra_ips = body.extra_ips
    record_change(db, networks=[net.id])
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise ApiError(409, f"{body.ipv4} is already taken in {net.cidr4}", field="ipv4") from None
    return _out(db, row)


@router.delete("/{port}", status_code=204, dependencies=[AdminAccess])
def detach_port(network: str, port: str, db: Db) -> Response:
    net = lookup.network(db, network)
    row = lookup.port(db, net, port)
    db.delete(row)
    record_change(db, networks=[net.id], nodes=[row.node_id])
    db.commit()
    return Response(status_code=204)

"""``/api/v1/networks/{network}/ports``: attaching nodes to networks.

A port gets a stable locally administered MAC and an IPv4 address, chosen by
the user (validated) or the lowest free one. The unique constraint on
(network, address) settles races: the loser of a concurrent insert moves on
to the next free address, or gets a 409 if it asked for that address.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skylan.controller import ipam
from skylan.controller.api import lookup
from skylan.controller.api.deps import AdminAccess, Db, ReadAccess
from skylan.controller.api.errors import ApiError, conflict
from skylan.controller.changes import record_change
from skylan.controller.storage.tables import NetworkRow, NodeRow, PortRow, new_id
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


def _taken(db: Session, net: NetworkRow) -> list[str]:
    return list(db.scalars(select(PortRow.ipv4).where(PortRow.network_id == net.id)))


def attach(
    db: Session, net: NetworkRow, node: NodeRow, ipv4: str | None, extra_ips: list[str]
) -> PortRow:
    """Create the port (commit included); used by the API and by enrollment."""
    if db.scalar(
        select(PortRow.id).where(PortRow.network_id == net.id, PortRow.node_id == node.id)
    ):
        raise conflict(f"node {node.name!r} is already attached to {net.name!r}")
    if ipv4 is not None:
        try:
            wanted = [ipam.check_static(net.cidr4, ipv4, _taken(db, net))]
        except ipam.AddressError as exc:
            raise ApiError(409 if "taken" in str(exc) else 422, str(exc), field="ipv4") from None
    else:
        wanted = ipam.candidates(net.cidr4, _taken(db, net))
        if not wanted:
            raise conflict(f"no free addresses left in {net.name!r} ({net.cidr4})")
    for address in wanted:
        port_id = new_id()
        port = PortRow(
            id=port_id,
            network_id=net.id,
            node_id=node.id,
            mac=ipam.port_mac(port_id),
            ipv4=address,
            extra_ips=extra_ips,
        )
        try:
            with db.begin_nested():
                db.add(port)
        except IntegrityError:
            if db.scalar(
                select(PortRow.id).where(PortRow.network_id == net.id, PortRow.node_id == node.id)
            ):
                raise conflict(f"node {node.name!r} is already attached to {net.name!r}") from None
            continue  # someone took this address a moment ago: try the next
        record_change(db, networks=[net.id], nodes=[node.id])
        db.commit()
        return port
    if ipv4 is not None:
        raise ApiError(409, f"{ipv4} is already taken in {net.cidr4}", field="ipv4")
    raise conflict(f"could not find a free address in {net.name!r}; try again")


@router.get("", dependencies=[ReadAccess])
def list_ports(network: str, db: Db) -> list[PortOut]:
    net = lookup.network(db, network)
    rows = db.scalars(select(PortRow).where(PortRow.network_id == net.id).order_by(PortRow.ipv4))
    return [_out(db, p) for p in rows]


@router.post("", status_code=201, dependencies=[AdminAccess])
def attach_port(network: str, body: PortCreate, db: Db) -> PortOut:
    net = lookup.network(db, network)
    node = lookup.node(db, body.node)
    return _out(db, attach(db, net, node, body.ipv4, body.extra_ips))


@router.get("/{port}", dependencies=[ReadAccess])
def get_port(network: str, port: str, db: Db) -> PortOut:
    net = lookup.network(db, network)
    return _out(db, lookup.port(db, net, port))


@router.patch("/{port}", dependencies=[AdminAccess])
def update_port(network: str, port: str, body: PortUpdate, db: Db) -> PortOut:
    net = lookup.network(db, network)
    row = lookup.port(db, net, port)
    if body.ipv4 is not None and body.ipv4 != row.ipv4:
        others = [ip for ip in _taken(db, net) if ip != row.ipv4]
        try:
            row.ipv4 = ipam.check_static(net.cidr4, body.ipv4, others)
        except ipam.AddressError as exc:
            raise ApiError(409 if "taken" in str(exc) else 422, str(exc), field="ipv4") from None
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

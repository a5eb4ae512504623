"""``/api/v1/nodes``: enrolled machines, their approval, names and tags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from skylan.controller.api import lookup, validators
from skylan.controller.api.deps import AdminAccess, Db, ReadAccess
from skylan.controller.api.errors import ApiError, conflict
from skylan.controller.changes import record_change
from skylan.controller.service.ports import join_networks
from skylan.controller.storage.tables import NetworkRow, NodeRow, PortRow, as_utc
from skylan.model.api import Membership, NodeOut, PeerStatus

router = APIRouter(prefix="/nodes", tags=["nodes"])

ONLINE_WINDOW = timedelta(seconds=45)  # three missed 15-second heartbeats


class NodeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    tags: list[str] | None = Field(None, max_length=50)

    _name = field_validator("name")(validators.optional_name)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [validators.tag(t) for t in dict.fromkeys(value)]


def node_out(db: Db, row: NodeRow) -> NodeOut:
    now = datetime.now(UTC)
    last_seen = as_utc(row.last_seen) if row.last_seen else None
    online = last_seen is not None and now - last_seen < ONLINE_WINDOW
    started = as_utc(row.agent_started_at) if row.agent_started_at else None
    seen: dict[str, list[str]] = dict(row.seen_ips or {})
    memberships = [
        Membership(
            network_id=net.id,
            network=net.name,
            port_id=port.id,
            mac=port.mac,
            ipv4=port.ipv4,
            extra_ips=list(port.extra_ips),
            floating_ips=[
                ip for ip in seen.get(net.id, []) if ip != port.ipv4 and ip not in port.extra_ips
            ]
            if online
            else [],
        )
        for port, net in db.execute(
            select(PortRow, NetworkRow)
            .join(NetworkRow, PortRow.network_id == NetworkRow.id)
            .where(PortRow.node_id == row.id)
            .order_by(NetworkRow.name)
        )
    ]
    return NodeOut(
        id=row.id,
        name=row.name,
        public_key=row.public_key,
        status=row.status,
        online=online,
        last_seen=last_seen,
        uptime_s=int((now - started).total_seconds()) if online and started else None,
        agent_version=row.agent_version,
        os=row.os,
        tags=list(row.tags),
        endpoints=list(row.endpoints),
        interfaces=list(row.interfaces),
        enrolled_at=row.enrolled_at,
        networks=memberships,
        peers=_peers(db, row) if online else [],
    )


def _peers(db: Db, row: NodeRow) -> list[PeerStatus]:
    reports = list(row.peer_status or [])
    ids = [p["node_id"] for p in reports]
    names: dict[str, str] = dict(
        db.execute(select(NodeRow.id, NodeRow.name).where(NodeRow.id.in_(ids))).all()
    )
    return sorted(
        (PeerStatus(node=names.get(p["node_id"]), **p) for p in reports),
        key=lambda p: (p.node or "~", p.node_id),
    )


@router.get("", dependencies=[ReadAccess])
def list_nodes(db: Db, status: str | None = None) -> list[NodeOut]:
    query = select(NodeRow).order_by(NodeRow.name)
    if status is not None:
        if status not in ("pending", "approved", "denied"):
            raise ApiError(422, "status: must be pending, approved or denied")
        query = query.where(NodeRow.status == status)
    return [node_out(db, r) for r in db.scalars(query)]


@router.get("/{ident}", dependencies=[ReadAccess])
def get_node(ident: str, db: Db) -> NodeOut:
    return node_out(db, lookup.node(db, ident))


@router.patch("/{ident}", dependencies=[AdminAccess])
def update_node(ident: str, body: NodeUpdate, db: Db) -> NodeOut:
    row = lookup.node(db, ident)
    changes = body.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None:
            raise ApiError(422, f"{key}: may not be null")
        setattr(row, key, value)
    if "name" in changes:
        record_change(db, nodes=[row.id])
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise conflict(f"a node named {body.name!r} already exists", field="name") from None
    return node_out(db, row)


def _set_status(db: Db, ident: str, status: str) -> NodeOut:
    row = lookup.node(db, ident)
    row.status = status
    if status == "approved" and row.join_networks:
        # its join token's networks, with addresses from the pools only now;
        # if one pool is full the approval fails whole (409) and can be retried
        join_networks(db, row, row.join_networks)
        row.join_networks = []
    record_change(db, nodes=[row.id])
    db.commit()
    return node_out(db, row)


@router.post("/{ident}/approve", dependencies=[AdminAccess])
def approve_node(ident: str, db: Db) -> NodeOut:
    """Approve a pending (or denied) node: it joins its join token's networks now."""
    return _set_status(db, ident, "approved")


@router.post("/{ident}/deny", dependencies=[AdminAccess])
def deny_node(ident: str, db: Db) -> NodeOut:
    """A denied node keeps its credential but is in no one's netmap."""
    return _set_status(db, ident, "denied")


@router.delete("/{ident}", status_code=204, dependencies=[AdminAccess])
def delete_node(ident: str, db: Db) -> Response:
    """Delete the node; its credential stops working at once."""
    row = lookup.node(db, ident)
    nets = list(db.scalars(select(PortRow.network_id).where(PortRow.node_id == row.id)))
    db.delete(row)
    record_change(db, networks=nets, nodes=[row.id])
    db.commit()
    return Response(status_code=204)


@router.get("/{ident}/netmap", dependencies=[ReadAccess])
def node_netmap(ident: str, db: Db, request: Request) -> Response:
    """The netmap this node's agent currently receives."""
    row = lookup.node(db, ident)
    body = request.app.state.feed.netmap(row.id)
    if body is None:
        raise ApiError(409, "the netmap of this node is being computed; retry in a moment")
    return Response(body, media_type="application/json")

"""Finding rows by id or by name, with the API's 404 message when absent."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from skylan.controller.api.errors import not_found
from skylan.controller.storage.tables import NetworkRow, NodeRow, PortRow


def network(db: Session, ident: str) -> NetworkRow:
    row = db.get(NetworkRow, ident) or db.scalar(select(NetworkRow).where(NetworkRow.name == ident))
    if row is None:
        raise not_found("network", ident)
    return row


def node(db: Session, ident: str) -> NodeRow:
    row = db.get(NodeRow, ident) or db.scalar(select(NodeRow).where(NodeRow.name == ident))
    if row is None:
        raise not_found("node", ident)
    return row


def port(db: Session, net: NetworkRow, ident: str) -> PortRow:
    """A port by its id, or by the node (id or name) it belongs to."""
    row = db.get(PortRow, ident)
    if row is None or row.network_id != net.id:
        member = db.get(NodeRow, ident) or db.scalar(select(NodeRow).where(NodeRow.name == ident))
        row = None
        if member is not None:
            row = db.scalar(
                select(PortRow).where(PortRow.network_id == net.id, PortRow.node_id == member.id)
            )
    if row is None:
        raise not_found(f"port in network {net.name!r}", ident)
    return row

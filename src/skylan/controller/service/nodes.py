"""Enrolled machines: names, tags, approval and removal."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skylan.controller.changes import record_change
from skylan.controller.service import lookup
from skylan.controller.service.errors import Conflict, Invalid, NotFound
from skylan.controller.service.ports import join_networks
from skylan.controller.state.store import State
from skylan.controller.storage.tables import NodeRow
from skylan.model.requests import NodeUpdate


def _row(db: Session, state: State, ident: str) -> NodeRow:
    node = lookup.node(state, ident)
    row = db.get(NodeRow, node.id)
    if row is None:
        raise NotFound(f"node {ident!r} not found")
    return row


def update(db: Session, state: State, ident: str, body: NodeUpdate) -> str:
    row = _row(db, state, ident)
    changes = body.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None:
            raise Invalid(f"{key}: may not be null")
        setattr(row, key, value)
    try:
        db.flush()
    except IntegrityError:
        raise Conflict(f"a node named {body.name!r} already exists", field="name") from None
    record_change(db, nodes=[row.id])
    return row.id


def set_status(db: Session, state: State, ident: str, status: str) -> str:
    """Approve or deny. Approval attaches a pending node to its join token's
    networks, with addresses from the pools only now; if a pool is full the
    approval fails whole (a conflict) and can be retried."""
    row = _row(db, state, ident)
    row.status = status
    if status == "approved" and row.join_networks:
        join_networks(db, state, row.id, list(row.join_networks))
        row.join_networks = []
    record_change(db, nodes=[row.id])
    return row.id


def delete(db: Session, state: State, ident: str) -> None:
    """The node's credential stops working once the change is applied."""
    row = _row(db, state, ident)
    nets = state.node_networks(row.id)
    db.delete(row)
    record_change(db, networks=nets, nodes=[row.id])

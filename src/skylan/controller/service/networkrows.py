"""Rows that belong to one network (gateway routes, cloak and security
rules, DNS names): adding or removing one is a change to that network's netmaps, and a
row is only ever found through the network it belongs to."""

from __future__ import annotations

from sqlalchemy.orm import Session

from skylan.controller.changes import record_change
from skylan.controller.service import lookup
from skylan.controller.service.errors import NotFound
from skylan.controller.state.store import State
from skylan.controller.storage.tables import (
    CloakRuleRow,
    DnsRecordRow,
    RouteRow,
    SecurityRuleRow,
)

NetworkRow = CloakRuleRow | RouteRow | SecurityRuleRow | DnsRecordRow


def add(db: Session, row: NetworkRow) -> str:
    db.add(row)
    db.flush()
    record_change(db, networks=[row.network_id])
    return row.id


def remove(
    db: Session, state: State, network: str, kind: type[NetworkRow], row_id: str, *, what: str
) -> None:
    net = lookup.network(state, network)
    row = db.get(kind, row_id)
    # another network's is not found here
    if not isinstance(row, NetworkRow) or row.network_id != net.id:
        raise NotFound(f"{what} {row_id!r} not found")
    db.delete(row)
    record_change(db, networks=[net.id])

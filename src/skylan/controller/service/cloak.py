"""Cloak rules: what stays reachable from the internet on a cloaked network.

A rule opens ``protocol`` (and a port range for tcp/udp) from ``source_cidr``
on one member node, or on every member when no node is named.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from skylan.controller.changes import record_change
from skylan.controller.service import lookup
from skylan.controller.service.errors import Invalid, NotFound
from skylan.controller.state.store import State
from skylan.controller.storage.tables import CloakRuleRow
from skylan.model.requests import CloakRuleCreate


def create(db: Session, state: State, network: str, body: CloakRuleCreate) -> str:
    net = lookup.network(state, network)
    node_id = None
    if body.node is not None:
        node = lookup.node(state, body.node)
        if node.id not in state.members.get(net.id, {}):
            raise Invalid(f"node {node.name!r} is not a member of {net.name!r}", field="node")
        node_id = node.id
    row = CloakRuleRow(
        network_id=net.id,
        node_id=node_id,
        protocol=body.protocol,
        port_from=body.port_from,
        port_to=body.port_to,
        source_cidr=body.source_cidr,
        description=body.description,
    )
    db.add(row)
    db.flush()
    record_change(db, networks=[net.id])
    return row.id


def delete(db: Session, state: State, network: str, rule_id: str) -> None:
    net = lookup.network(state, network)
    row = db.get(CloakRuleRow, rule_id)
    if row is None or row.network_id != net.id:
        raise NotFound(f"cloak rule {rule_id!r} not found")
    db.delete(row)
    record_change(db, networks=[net.id])

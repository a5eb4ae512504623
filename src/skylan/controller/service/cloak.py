"""Cloak rules: what stays reachable from the internet on a cloaked network.

A rule opens ``protocol`` (and a port range for tcp/udp) from ``source_cidr``
on one member node, or on every member when no node is named.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from skylan.controller.service import lookup, networkrows
from skylan.controller.service.errors import Invalid
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
    return networkrows.add(db, row)


def delete(db: Session, state: State, network: str, rule_id: str) -> None:
    networkrows.remove(db, state, network, CloakRuleRow, rule_id, what="cloak rule")

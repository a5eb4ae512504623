"""Names in a network's DNS zone for addresses that are not a member's own,
such as floating IPs (members' own names come from their node names)."""

from __future__ import annotations

import ipaddress

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skylan.controller.service import lookup, networkrows
from skylan.controller.service.errors import Conflict, Invalid
from skylan.controller.state.store import State
from skylan.controller.storage.tables import DnsRecordRow
from skylan.model.requests import DnsRecordCreate

MAX_RECORDS = 1000  # per network: every member's agent holds them all


def create(db: Session, state: State, network: str, body: DnsRecordCreate) -> str:
    net = lookup.network(state, network)
    if len(state.dns.get(net.id, {})) >= MAX_RECORDS:
        raise Conflict(f"{net.name!r} has {MAX_RECORDS} DNS names already, the most it may")
    members = state.members.get(net.id, {})
    for node_id in list(members):
        node = state.nodes.get(node_id)
        if node is not None and node.name.lower() == body.name:
            raise Conflict(f"{body.name!r} is the name of a member of {net.name!r}", field="name")
    address = ipaddress.ip_address(body.address)
    if address.version == 4 and address not in ipaddress.IPv4Network(net.cidr4):
        raise Invalid(f"{body.address} is not in {net.name!r}'s {net.cidr4}", field="address")
    if address.version == 6 and (
        net.cidr6 is None or address not in ipaddress.IPv6Network(net.cidr6)
    ):
        raise Invalid(
            f"{body.address} is not in {net.name!r}'s IPv6 prefix ({net.cidr6 or 'none'})",
            field="address",
        )
    if any(r.name == body.name for r in list(state.dns.get(net.id, {}).values())):
        raise Conflict(f"{body.name!r} already names an address in {net.name!r}", field="name")
    try:
        return networkrows.add(
            db, DnsRecordRow(network_id=net.id, name=body.name, address=body.address)
        )
    except IntegrityError:
        raise Conflict(
            f"{body.name!r} already names an address in {net.name!r}", field="name"
        ) from None


def delete(db: Session, state: State, network: str, record_id: str) -> None:
    networkrows.remove(db, state, network, DnsRecordRow, record_id, what="DNS name")

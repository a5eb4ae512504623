"""Names in a network's DNS zone for addresses that are not a member's own,
such as floating IPs (members' own names come from their node names)."""

from __future__ import annotations

import ipaddress

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skylan.controller.changes import record_change
from skylan.controller.service import lookup, networkrows
from skylan.controller.service.errors import Conflict, Invalid, NotFound
from skylan.controller.state.records import DnsRecord, Network
from skylan.controller.state.store import State
from skylan.controller.storage.tables import DnsRecordRow
from skylan.model.requests import DnsRecordCreate, DnsRecordUpdate

MAX_RECORDS = 1000  # per network: every member's agent holds them all


def create(db: Session, state: State, network: str, body: DnsRecordCreate) -> str:
    net = lookup.network(state, network)
    if len(state.dns.get(net.id, {})) >= MAX_RECORDS:
        raise Conflict(f"{net.name!r} has {MAX_RECORDS} DNS names already, the most it may")
    _check(state, net, body.name, body.address)
    try:
        return networkrows.add(
            db, DnsRecordRow(network_id=net.id, name=body.name, address=body.address)
        )
    except IntegrityError:
        raise _taken(body.name, net) from None


def update(db: Session, state: State, network: str, ident: str, body: DnsRecordUpdate) -> str:
    """Rename a record or give it another address; every member's zone follows
    with the netmap, as with any change to the network."""
    net = lookup.network(state, network)
    record = find(state, net, ident)
    name = record.name if body.name is None else body.name
    address = record.address if body.address is None else body.address
    _check(state, net, name, address, keep=record.id)
    row = db.get(DnsRecordRow, record.id)
    if row is None:  # removed by another replica a moment ago
        raise NotFound(f"DNS name {ident!r} not found")
    row.name, row.address = name, address
    try:
        db.flush()
    except IntegrityError:
        raise _taken(name, net) from None
    record_change(db, networks=[net.id])
    return record.id


def delete(db: Session, state: State, network: str, ident: str) -> None:
    net = lookup.network(state, network)
    record = find(state, net, ident)
    networkrows.remove(db, state, network, DnsRecordRow, record.id, what="DNS name")


def find(state: State, net: Network, ident: str) -> DnsRecord:
    """A record of ``net`` by its id or its name (names are not case-sensitive)."""
    records = state.dns.get(net.id, {})
    found = records.get(ident)
    if found is None:
        wanted = ident.lower().rstrip(".")
        found = next((r for r in list(records.values()) if r.name == wanted), None)
    if found is None:
        raise NotFound(f"DNS name {ident!r} not found in {net.name!r}")
    return found


def _check(state: State, net: Network, name: str, address: str, *, keep: str | None = None) -> None:
    """A name that is no member's and no other record's, for an address in the network."""
    for node_id in list(state.members.get(net.id, {})):
        node = state.nodes.get(node_id)
        if node is not None and node.name.lower() == name:
            raise Conflict(f"{name!r} is the name of a member of {net.name!r}", field="name")
    parsed = ipaddress.ip_address(address)
    if parsed.version == 4 and parsed not in ipaddress.IPv4Network(net.cidr4):
        raise Invalid(f"{address} is not in {net.name!r}'s {net.cidr4}", field="address")
    if parsed.version == 6 and (
        net.cidr6 is None or parsed not in ipaddress.IPv6Network(net.cidr6)
    ):
        raise Invalid(
            f"{address} is not in {net.name!r}'s IPv6 prefix ({net.cidr6 or 'none'})",
            field="address",
        )
    if any(r.name == name and r.id != keep for r in list(state.dns.get(net.id, {}).values())):
        raise _taken(name, net)


def _taken(name: str, net: Network) -> Conflict:
    return Conflict(f"{name!r} already names an address in {net.name!r}", field="name")

"""Attaching nodes to networks: a port with a stable locally administered MAC
and an IPv4 address, chosen by the user (validated) or the lowest free one.

The unique constraint on (network, address) settles races: the loser of a
concurrent insert moves on to the next free address, or gets a conflict if it
asked for that address. Free addresses come from the state's address pool, so
finding one costs the same in a network of 10,000 as in one of 10.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skylan.controller import ipam
from skylan.controller.changes import record_change
from skylan.controller.service import lookup
from skylan.controller.service.errors import Conflict, Invalid, NotFound
from skylan.controller.state.records import Network
from skylan.controller.state.store import State
from skylan.controller.storage.tables import PortRow, new_id
from skylan.controller.storage.unique import insert_if_free
from skylan.model.requests import PortCreate, PortUpdate


def _attached(db: Session, net_id: str, node_id: str) -> bool:
    query = select(PortRow.id).where(PortRow.network_id == net_id, PortRow.node_id == node_id)
    return db.scalar(query) is not None


def checked_static(net: Network, ipv4: str, state: State, own: str | None = None) -> str:
    pool = state.pools.get(net.id)
    try:
        address = ipam.check_static(net.cidr4, ipv4, ())
    except ipam.AddressError as exc:
        raise Invalid(str(exc), field="ipv4") from None
    if pool is not None and address in pool and address != own:
        raise Conflict(f"{address} is already taken in {net.cidr4}", field="ipv4")
    return address


def checked_static6(state: State, net: Network, ipv6: str, port_id: str | None = None) -> str:
    """A static IPv6 address for a port: inside the network's IPv6 prefix,
    above the addresses derived from IPv4 ones (so no member's can ever be
    the same), and no other port's."""
    if net.cidr6 is None:
        raise Invalid(f"{net.name!r} has no IPv6 prefix", field="ipv6")
    address = ipaddress.IPv6Address(ipv6)
    prefix = ipaddress.IPv6Network(net.cidr6)
    derived = ipaddress.IPv4Network(net.cidr4).num_addresses
    if address not in prefix:
        raise Invalid(f"{ipv6} is not in {net.cidr6}", field="ipv6")
    if int(address) - int(prefix.network_address) < derived:
        first = prefix.network_address + derived
        raise Invalid(
            f"{ipv6} is among the addresses derived from {net.cidr4}; use {first} or above",
            field="ipv6",
        )
    for other in list(state.members.get(net.id, {}).values()):
        if (
            other.id != port_id
            and other.ipv6 is not None
            and ipaddress.IPv6Address(other.ipv6) == address
        ):
            raise Conflict(f"{ipv6} is already taken in {net.cidr6}", field="ipv6")
    return str(address)


def attach(
    db: Session,
    state: State,
    net: Network,
    node_id: str,
    ipv4: str | None = None,
    *,
    extra_ips: list[str] | None = None,
    ipv6: str | None = None,
    fresh: bool = False,
    record: bool = True,
) -> str:
    """Create the port (the caller commits); its id. ``fresh``: the node was
    created in this transaction, so it is attached nowhere yet. ``record``:
    record the change (a caller recording one change for all does not)."""
    node = state.nodes.get(node_id)
    name = node.name if node is not None else node_id
    if not fresh and _attached(db, net.id, node_id):
        raise Conflict(f"node {name!r} is already attached to {net.name!r}")
    # addresses this transaction handed out already (the state learns of them
    # only when it commits): a batch of enrolments does not try them in turn
    handed = db.info.setdefault(ipam.HANDED_OUT, {}).setdefault(net.id, set())
    if ipv4 is not None:
        wanted = [checked_static(net, ipv4, state)]
    else:
        pool = state.pools.get(net.id)
        found = pool.candidates(64 + len(handed) + len(state.claims)) if pool is not None else []
        wanted = [ip for ip in found if ip not in handed][:64]
        if pool is None:
            wanted = ipam.candidates(net.cidr4, handed)
        if not wanted:
            raise Conflict(f"no free addresses left in {net.name!r} ({net.cidr4})")
    for address in wanted:
        if ipv4 is None:
            if not state.claims.claim(net.id, address):
                continue  # another transaction of ours is trying it
            handed.add(address)  # released when this transaction is over
        port_id = new_id()
        port = {
            "id": port_id,
            "network_id": net.id,
            "node_id": node_id,
            "mac": ipam.port_mac(port_id),
            "ipv4": address,
            "extra_ips": extra_ips or [],
            "ipv6": ipv6,
        }
        if not insert_if_free(db, PortRow, port):
            if _attached(db, net.id, node_id):
                raise Conflict(f"node {name!r} is already attached to {net.name!r}") from None
            continue  # someone took this address a moment ago: try the next
        handed.add(address)
        if record:
            record_change(db, networks=[net.id], nodes=[node_id])
        return port_id
    if ipv4 is not None:
        raise Conflict(f"{ipv4} is already taken in {net.cidr4}", field="ipv4")
    raise Conflict(f"could not find a free address in {net.name!r}; try again")


def join_networks(
    db: Session, state: State, node_id: str, network_ids: Iterable[str], *, fresh: bool = False
) -> None:
    """Attach the node to each of ``network_ids`` that still exists and that it
    is not in yet, with addresses from the pools (a join token's networks).
    ``fresh``: a node created in this transaction (the caller records the change)."""
    for net_id in network_ids:
        net = state.networks.get(net_id)
        if net is not None and (fresh or not _attached(db, net_id, node_id)):
            attach(db, state, net, node_id, fresh=fresh, record=not fresh)


def create(db: Session, state: State, network: str, body: PortCreate) -> str:
    net = lookup.network(state, network)
    node = lookup.node(state, body.node)
    ipv6 = checked_static6(state, net, body.ipv6) if body.ipv6 is not None else None
    return attach(db, state, net, node.id, body.ipv4, extra_ips=list(body.extra_ips), ipv6=ipv6)


def update(db: Session, state: State, network: str, ident: str, body: PortUpdate) -> str:
    net = lookup.network(state, network)
    port = lookup.port(state, net, ident)
    row = db.get(PortRow, port.id)
    if row is None:
        raise NotFound(f"port in network {net.name!r} {ident!r} not found")
    if body.ipv4 is not None and body.ipv4 != row.ipv4:
        row.ipv4 = checked_static(net, body.ipv4, state, own=row.ipv4)
    if body.extra_ips is not None:
        row.extra_ips = list(body.extra_ips)
    if "ipv6" in body.model_fields_set:
        row.ipv6 = None if body.ipv6 is None else checked_static6(state, net, body.ipv6, port.id)
    try:
        db.flush()
    except IntegrityError:
        raise Conflict(f"{body.ipv4} is already taken in {net.cidr4}", field="ipv4") from None
    record_change(db, networks=[net.id], nodes=[port.node_id])
    return port.id


def detach(db: Session, state: State, network: str, ident: str) -> None:
    net = lookup.network(state, network)
    port = lookup.port(state, net, ident)
    row = db.get(PortRow, port.id)
    if row is not None:
        db.delete(row)
    record_change(db, networks=[net.id], nodes=[port.node_id])

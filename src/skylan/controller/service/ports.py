"""Attaching nodes to networks: a port with a stable locally administered MAC
and an IPv4 address, chosen by the user (validated) or the lowest free one.

The unique constraint on (network, address) settles races: the loser of a
concurrent insert moves on to the next free address, or gets a conflict if it
asked for that address. Everything happens in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skylan.controller import ipam
from skylan.controller.changes import record_change
from skylan.controller.service.errors import Conflict, Invalid
from skylan.controller.storage.tables import NetworkRow, NodeRow, PortRow, new_id


def taken(db: Session, net: NetworkRow) -> list[str]:
    return list(db.scalars(select(PortRow.ipv4).where(PortRow.network_id == net.id)))


def _attached(db: Session, net: NetworkRow, node: NodeRow) -> bool:
    return (
        db.scalar(
            select(PortRow.id).where(PortRow.network_id == net.id, PortRow.node_id == node.id)
        )
        is not None
    )


def checked_static(net: NetworkRow, ipv4: str, others: list[str]) -> str:
    try:
        return ipam.check_static(net.cidr4, ipv4, others)
    except ipam.AddressError as exc:
        kind = Conflict if "taken" in str(exc) else Invalid
        raise kind(str(exc), field="ipv4") from None


def attach(
    db: Session, net: NetworkRow, node: NodeRow, ipv4: str | None, extra_ips: list[str]
) -> PortRow:
    """Create the port (the caller commits)."""
    if _attached(db, net, node):
        raise Conflict(f"node {node.name!r} is already attached to {net.name!r}")
    if ipv4 is not None:
        wanted = [checked_static(net, ipv4, taken(db, net))]
    else:
        wanted = ipam.candidates(net.cidr4, taken(db, net))
        if not wanted:
            raise Conflict(f"no free addresses left in {net.name!r} ({net.cidr4})")
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
            if _attached(db, net, node):
                raise Conflict(f"node {node.name!r} is already attached to {net.name!r}") from None
            continue  # someone took this address a moment ago: try the next
        record_change(db, networks=[net.id], nodes=[node.id])
        return port
    if ipv4 is not None:
        raise Conflict(f"{ipv4} is already taken in {net.cidr4}", field="ipv4")
    raise Conflict(f"could not find a free address in {net.name!r}; try again")


def join_networks(db: Session, node: NodeRow, network_ids: Iterable[str]) -> None:
    """Attach ``node`` to each of ``network_ids`` that still exists and that it
    is not in yet, with addresses from the pools (a join token's networks)."""
    for net_id in network_ids:
        net = db.get(NetworkRow, net_id)
        if net is not None and not _attached(db, net, node):
            attach(db, net, node, None, [])

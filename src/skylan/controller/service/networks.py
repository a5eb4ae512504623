"""Virtual networks: one L2 broadcast domain each."""

from __future__ import annotations

import ipaddress

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skylan.controller.changes import record_change
from skylan.controller.service import lookup
from skylan.controller.service.errors import Conflict, Invalid, NotFound
from skylan.controller.state.store import State
from skylan.controller.storage.tables import NetworkRow
from skylan.model import dualstack
from skylan.model.requests import CIDR6_TOO_SMALL, NetworkCreate, NetworkUpdate


def _check_overlap(state: State, own_id: str | None, cidr4: str, cidr6: str | None) -> None:
    mine4 = ipaddress.IPv4Network(cidr4)
    mine6 = ipaddress.IPv6Network(cidr6) if cidr6 else None
    for other in list(state.networks.values()):
        if other.id == own_id:
            continue
        if ipaddress.IPv4Network(other.cidr4).overlaps(mine4):
            raise Conflict(
                f"{cidr4} overlaps network {other.name!r} ({other.cidr4}); a node in both "
                "could not route either",
                field="cidr4",
            )
        if mine6 and other.cidr6 and ipaddress.IPv6Network(other.cidr6).overlaps(mine6):
            raise Conflict(
                f"{cidr6} overlaps network {other.name!r} ({other.cidr6})", field="cidr6"
            )


def _flush(db: Session, name: str) -> None:
    try:
        db.flush()
    except IntegrityError:
        raise Conflict(f"a network named {name!r} already exists", field="name") from None


def create(db: Session, state: State, body: NetworkCreate) -> str:
    if body.name in state.network_by_name:
        raise Conflict(f"a network named {body.name!r} already exists", field="name")
    _check_overlap(state, None, body.cidr4, body.cidr6)
    vni = (db.scalar(select(func.max(NetworkRow.vni))) or 0) + 1
    row = NetworkRow(**body.model_dump(), vni=vni)
    db.add(row)
    _flush(db, body.name)
    record_change(db, networks=[row.id])
    return row.id


NULLABLE = frozenset({"cidr6", "dns_domain"})  # null turns IPv6, or DNS, off


def update(db: Session, state: State, ident: str, body: NetworkUpdate) -> str:
    net = lookup.network(state, ident)
    changes = body.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None and key not in NULLABLE:
            raise Invalid(f"{key}: may not be null")
    cidr6 = changes.get("cidr6", net.cidr6)
    mtu = changes.get("mtu") or net.mtu
    if cidr6 is not None and mtu < 1280:
        raise Invalid("IPv6 needs an MTU of at least 1280")
    if "cidr6" in changes:
        _check_overlap(state, net.id, net.cidr4, cidr6)
        if cidr6 is not None and not dualstack.fits(net.cidr4, cidr6):
            raise Invalid(CIDR6_TOO_SMALL.format(cidr6=cidr6, cidr4=net.cidr4))
    row = db.get(NetworkRow, net.id)
    if row is None:
        raise NotFound(f"network {ident!r} not found")
    for key, value in changes.items():
        setattr(row, key, value)
    _flush(db, changes.get("name", net.name))
    record_change(db, networks=[net.id])
    return net.id


def delete(db: Session, state: State, ident: str, *, force: bool) -> None:
    net = lookup.network(state, ident)
    members = list(state.members.get(net.id, {}))
    if members and not force:
        raise Conflict(
            f"network {net.name!r} still has {len(members)} attached node(s); detach them or "
            "delete with force=true",
            members=len(members),
        )
    row = db.get(NetworkRow, net.id)
    if row is not None:
        db.delete(row)
    record_change(db, networks=[net.id], nodes=members)

"""``/api/v1/networks``: virtual networks (one L2 broadcast domain each)."""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from skylan.controller.api import lookup, validators
from skylan.controller.api.deps import AdminAccess, Db, ReadAccess
from skylan.controller.api.errors import ApiError, conflict
from skylan.controller.changes import record_change
from skylan.controller.storage.tables import NetworkRow, PortRow
from skylan.model.api import NetworkOut

router = APIRouter(prefix="/networks", tags=["networks"])


class NetworkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = Field("", max_length=1000)
    cidr4: str = Field(description="IPv4 network, e.g. 172.16.1.0/24")
    cidr6: str | None = Field(None, description="optional IPv6 network")
    mtu: int = Field(1420, ge=576, le=9000)
    encrypted: bool = True
    cloaked: bool = False
    storm_pps: int = Field(1000, ge=0, le=10_000_000, description="0 disables storm control")

    _name = field_validator("name")(validators.name)
    _cidr4 = field_validator("cidr4")(validators.cidr4)
    _cidr6 = field_validator("cidr6")(validators.cidr6)

    @model_validator(mode="after")
    def _ipv6_mtu(self) -> NetworkCreate:
        if self.cidr6 is not None and self.mtu < 1280:
            raise ValueError("IPv6 needs an MTU of at least 1280")
        return self


class NetworkUpdate(BaseModel):
    """Everything but the IPv4 CIDR can change (addresses are bound to it)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = Field(None, max_length=1000)
    cidr6: str | None = None
    mtu: int | None = Field(None, ge=576, le=9000)
    encrypted: bool | None = None
    cloaked: bool | None = None
    storm_pps: int | None = Field(None, ge=0, le=10_000_000)

    _name = field_validator("name")(validators.optional_name)
    _cidr6 = field_validator("cidr6")(validators.cidr6)


def _out(db: Db, row: NetworkRow) -> NetworkOut:
    out = NetworkOut.model_validate(row)
    out.members = db.scalar(select(func.count()).where(PortRow.network_id == row.id)) or 0
    return out


def _check_overlap(db: Db, row_id: str | None, cidr4: str, cidr6: str | None) -> None:
    mine4 = ipaddress.IPv4Network(cidr4)
    mine6 = ipaddress.IPv6Network(cidr6) if cidr6 else None
    for other in db.scalars(select(NetworkRow).where(NetworkRow.id != (row_id or ""))):
        if ipaddress.IPv4Network(other.cidr4).overlaps(mine4):
            raise conflict(
                f"{cidr4} overlaps network {other.name!r} ({other.cidr4}); a node in both "
                "could not route either",
                field="cidr4",
            )
        if mine6 and other.cidr6 and ipaddress.IPv6Network(other.cidr6).overlaps(mine6):
            raise conflict(
                f"{cidr6} overlaps network {other.name!r} ({other.cidr6})", field="cidr6"
            )


def _commit(db: Db, name: str) -> None:
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise conflict(f"a network named {name!r} already exists", field="name") from None


@router.post("", status_code=201, dependencies=[AdminAccess])
def create_network(body: NetworkCreate, db: Db) -> NetworkOut:
    if db.scalar(select(NetworkRow.id).where(NetworkRow.name == body.name)):
        raise conflict(f"a network named {body.name!r} already exists", field="name")
    _check_overlap(db, None, body.cidr4, body.cidr6)
    vni = (db.scalar(select(func.max(NetworkRow.vni))) or 0) + 1
    row = NetworkRow(**body.model_dump(), vni=vni)
    db.add(row)
    db.flush()
    record_change(db, networks=[row.id])
    _commit(db, body.name)
    return _out(db, row)


@router.get("", dependencies=[ReadAccess])
def list_networks(db: Db) -> list[NetworkOut]:
    return [_out(db, r) for r in db.scalars(select(NetworkRow).order_by(NetworkRow.name))]


@router.get("/{ident}", dependencies=[ReadAccess])
def get_network(ident: str, db: Db) -> NetworkOut:
    return _out(db, lookup.network(db, ident))


@router.patch("/{ident}", dependencies=[AdminAccess])
def update_network(ident: str, body: NetworkUpdate, db: Db) -> NetworkOut:
    row = lookup.network(db, ident)
    changes = body.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None and key != "cidr6":
            raise ApiError(422, f"{key}: may not be null")
    cidr6 = changes.get("cidr6", row.cidr6)
    mtu = changes.get("mtu") or row.mtu
    if cidr6 is not None and mtu < 1280:
        raise ApiError(422, "IPv6 needs an MTU of at least 1280")
    if "cidr6" in changes:
        _check_overlap(db, row.id, row.cidr4, cidr6)
    for key, value in changes.items():
        setattr(row, key, value)
    record_change(db, networks=[row.id])
    _commit(db, row.name)
    return _out(db, row)


@router.delete("/{ident}", status_code=204, dependencies=[AdminAccess])
def delete_network(ident: str, db: Db, force: bool = False) -> Response:
    row = lookup.network(db, ident)
    members = db.scalar(select(func.count()).where(PortRow.network_id == row.id)) or 0
    if members and not force:
        raise conflict(
            f"network {row.name!r} still has {members} attached node(s); detach them or "
            "delete with force=true",
            members=members,
        )
    node_ids = list(db.scalars(select(PortRow.node_id).where(PortRow.network_id == row.id)))
    db.delete(row)
    record_change(db, networks=[row.id], nodes=node_ids)
    db.commit()
    return Response(status_code=204)

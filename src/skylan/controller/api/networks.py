"""``/api/v1/networks``: virtual networks (one L2 broadcast domain each)."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from skylan.controller.api.deps import AdminAccess, Db, ReadAccess
from skylan.controller.api.errors import ApiError, conflict, not_found
from skylan.controller.storage.tables import NetworkRow

router = APIRouter(prefix="/networks", tags=["networks"])

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _check_cidr4(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ipaddress.AddressValueError:
        raise ValueError(f"{value!r} is not an IPv4 network like 172.16.1.0/24") from None
    except ValueError as exc:
        raise ValueError(f"{value!r}: {exc}") from None
    if net.prefixlen > 30:
        raise ValueError("an IPv4 network needs a prefix of /30 or shorter (room for hosts)")
    return str(net)


def _check_cidr6(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        net = ipaddress.IPv6Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv6 network: {exc}") from None
    if net.prefixlen > 120:
        raise ValueError("an IPv6 network needs a prefix of /120 or shorter")
    return str(net)


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

    _name = field_validator("name")(_check_name)
    _cidr4 = field_validator("cidr4")(_check_cidr4)
    _cidr6 = field_validator("cidr6")(_check_cidr6)

    @model_validator(mode="after")
    def _ipv6_mtu(self) -> NetworkCreate:
        if self.cidr6 is not None and self.mtu < 1280:
            raise ValueError("IPv6 needs an MTU of at least 1280")
        return self


class NetworkUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = Field(None, max_length=1000)
    cidr6: str | None = None
    mtu: int | None = Field(None, ge=576, le=9000)
    encrypted: bool | None = None
    cloaked: bool | None = None
    storm_pps: int | None = Field(None, ge=0, le=10_000_000)

    _name = field_validator("name")(lambda v: None if v is None else _check_name(v))
    _cidr6 = field_validator("cidr6")(_check_cidr6)


class NetworkOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str
    cidr4: str
    cidr6: str | None
    mtu: int
    encrypted: bool
    cloaked: bool
    storm_pps: int
    created_at: datetime
    updated_at: datetime


def _get(db: Db, ident: str) -> NetworkRow:
    """Look a network up by id or by name."""
    row = db.get(NetworkRow, ident) or db.scalar(select(NetworkRow).where(NetworkRow.name == ident))
    if row is None:
        raise not_found("network", ident)
    return row


def _commit(db: Db, name: str) -> None:
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise conflict(f"a network named {name!r} already exists", field="name") from None


@router.post("", status_code=201, dependencies=[AdminAccess])
def create_network(body: NetworkCreate, db: Db) -> NetworkOut:
    row = NetworkRow(**body.model_dump())
    db.add(row)
    _commit(db, body.name)
    return NetworkOut.model_validate(row)


@router.get("", dependencies=[ReadAccess])
def list_networks(db: Db) -> list[NetworkOut]:
    rows = db.scalars(select(NetworkRow).order_by(NetworkRow.name))
    return [NetworkOut.model_validate(r) for r in rows]


@router.get("/{ident}", dependencies=[ReadAccess])
def get_network(ident: str, db: Db) -> NetworkOut:
    return NetworkOut.model_validate(_get(db, ident))


@router.patch("/{ident}", dependencies=[AdminAccess])
def update_network(ident: str, body: NetworkUpdate, db: Db) -> NetworkOut:
    row = _get(db, ident)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        raise ApiError(422, "name: may not be null")
    for key, value in changes.items():
        setattr(row, key, value)
    if row.cidr6 is not None and row.mtu < 1280:
        db.rollback()
        raise ApiError(422, "IPv6 needs an MTU of at least 1280")
    _commit(db, row.name)
    return NetworkOut.model_validate(row)


@router.delete("/{ident}", status_code=204, dependencies=[AdminAccess])
def delete_network(ident: str, db: Db) -> Response:
    db.delete(_get(db, ident))
    db.commit()
    return Response(status_code=204)

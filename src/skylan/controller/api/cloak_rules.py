"""``/api/v1/networks/{network}/cloak-rules``: what stays reachable when cloaked.

A rule opens ``protocol`` (and a port range for tcp/udp) from ``source_cidr``
on one member node, or on every member when ``node`` is omitted.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select

from skylan.controller.api import lookup, validators
from skylan.controller.api.deps import AdminAccess, Db, ReadAccess
from skylan.controller.api.errors import ApiError, not_found
from skylan.controller.changes import record_change
from skylan.controller.storage.tables import CloakRuleRow, PortRow
from skylan.model.api import CloakRuleOut

router = APIRouter(prefix="/networks/{network}/cloak-rules", tags=["cloaking"])


class CloakRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: str | None = Field(None, description="node id or name; omit for every member")
    protocol: Literal["tcp", "udp", "icmp", "any"]
    port_from: int | None = Field(None, ge=1, le=65535)
    port_to: int | None = Field(None, ge=1, le=65535)
    source_cidr: str = "0.0.0.0/0"
    description: str = Field("", max_length=500)

    _source = field_validator("source_cidr")(validators.any_prefix)

    @model_validator(mode="after")
    def _ports(self) -> CloakRuleCreate:
        if self.protocol in ("tcp", "udp"):
            if self.port_from is None:
                raise ValueError(f"{self.protocol} rules need port_from (and optionally port_to)")
            self.port_to = self.port_to or self.port_from
            if self.port_to < self.port_from:
                raise ValueError("port_to must not be below port_from")
        elif self.port_from is not None or self.port_to is not None:
            raise ValueError(f"{self.protocol} rules take no ports")
        return self


def _out(r: CloakRuleRow) -> CloakRuleOut:
    return CloakRuleOut(
        id=r.id,
        network_id=r.network_id,
        node_id=r.node_id,
        protocol=r.protocol,
        port_from=r.port_from,
        port_to=r.port_to,
        source_cidr=r.source_cidr,
        description=r.description,
        created_at=r.created_at,
    )


@router.get("", dependencies=[ReadAccess])
def list_rules(network: str, db: Db) -> list[CloakRuleOut]:
    net = lookup.network(db, network)
    rows = db.scalars(
        select(CloakRuleRow)
        .where(CloakRuleRow.network_id == net.id)
        .order_by(CloakRuleRow.created_at)
    )
    return [_out(r) for r in rows]


@router.post("", status_code=201, dependencies=[AdminAccess])
def create_rule(network: str, body: CloakRuleCreate, db: Db) -> CloakRuleOut:
    net = lookup.network(db, network)
    node_id = None
    if body.node is not None:
        node = lookup.node(db, body.node)
        if not db.scalar(
            select(PortRow.id).where(PortRow.network_id == net.id, PortRow.node_id == node.id)
        ):
            raise ApiError(422, f"node {node.name!r} is not a member of {net.name!r}", field="node")
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
    record_change(db, networks=[net.id])
    db.commit()
    return _out(row)


@router.delete("/{rule_id}", status_code=204, dependencies=[AdminAccess])
def delete_rule(network: str, rule_id: str, db: Db) -> Response:
    net = lookup.network(db, network)
    row = db.get(CloakRuleRow, rule_id)
    if row is None or row.network_id != net.id:
        raise not_found("cloak rule", rule_id)
    db.delete(row)
    record_change(db, networks=[net.id])
    db.commit()
    return Response(status_code=204)

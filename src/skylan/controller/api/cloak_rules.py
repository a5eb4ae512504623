"""``/api/v1/networks/{network}/cloak-rules``: what stays reachable when cloaked
(see :mod:`skylan.controller.service.cloak`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from skylan.controller.api.deps import AdminAccess, Ctl, ReadAccess
from skylan.controller.api.views import rule_out
from skylan.controller.service import cloak, lookup
from skylan.model.api import CloakRuleOut
from skylan.model.requests import CloakRuleCreate

router = APIRouter(prefix="/networks/{network}/cloak-rules", tags=["cloaking"])


@router.get("", dependencies=[ReadAccess])
async def list_rules(network: str, ctl: Ctl) -> list[CloakRuleOut]:
    net = lookup.network(ctl.memory, network)
    rules = sorted(ctl.memory.rules.get(net.id, {}).values(), key=lambda r: r.created_at)
    return [rule_out(r) for r in rules]


@router.post("", status_code=201, dependencies=[AdminAccess])
async def create_rule(network: str, body: CloakRuleCreate, ctl: Ctl) -> CloakRuleOut:
    rule_id = await ctl.write(lambda db: cloak.create(db, ctl.memory, network, body))
    net = lookup.network(ctl.memory, network)
    return rule_out(ctl.memory.rules[net.id][rule_id])


@router.delete("/{rule_id}", status_code=204, dependencies=[AdminAccess])
async def delete_rule(network: str, rule_id: str, ctl: Ctl) -> Response:
    await ctl.write(lambda db: cloak.delete(db, ctl.memory, network, rule_id))
    return Response(status_code=204)

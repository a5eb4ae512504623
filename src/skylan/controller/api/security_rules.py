"""``/api/v1/networks/{network}/security-rules``: who may open connections to
whom inside a network (see :mod:`skylan.model.securitygroups`), and the dry
run ``.../security-rules/check``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from skylan.controller.api.deps import AdminAccess, Ctl, ReadAccess
from skylan.controller.api.views import security_rule_out
from skylan.controller.service import lookup, securitygroups
from skylan.model.api import ReachabilityOut, SecurityRuleOut
from skylan.model.requests import SecurityRuleCreate
from skylan.model.securitygroups import Protocol

router = APIRouter(prefix="/networks/{network}/security-rules", tags=["security groups"])


@router.get("", dependencies=[ReadAccess])
async def list_rules(network: str, ctl: Ctl) -> list[SecurityRuleOut]:
    net = lookup.network(ctl.memory, network)
    rules = sorted(ctl.memory.security.get(net.id, {}).values(), key=lambda r: r.created_at)
    return [security_rule_out(ctl.memory, r) for r in rules]


@router.post("", status_code=201, dependencies=[AdminAccess])
async def create_rule(network: str, body: SecurityRuleCreate, ctl: Ctl) -> SecurityRuleOut:
    rule_id = await ctl.write(lambda db: securitygroups.create(db, ctl.memory, network, body))
    net = lookup.network(ctl.memory, network)
    return security_rule_out(ctl.memory, ctl.memory.security[net.id][rule_id])


@router.get("/check", dependencies=[ReadAccess])
async def check(
    network: str,
    ctl: Ctl,
    source: Annotated[
        str, Query(max_length=128, description="a member (name or id) or an IP address")
    ],
    target: Annotated[
        str,
        Query(
            max_length=128,
            description="a member (name, id or address) or an address behind a gateway member",
        ),
    ],
    protocol: Protocol,
    port: Annotated[int | None, Query(ge=1, le=65535, description="for tcp and udp")] = None,
) -> ReachabilityOut:
    """Dry run: would a new connection from ``source`` to ``target`` be let
    in, by the rules the members enforce now?"""
    checked = securitygroups.check(
        ctl.memory, network, source, target, protocol=protocol, port=port
    )
    answer = checked.verdict
    return ReachabilityOut(
        allowed=answer.allowed,
        reason=answer.reason,
        rule_id=answer.rule_id,
        source=checked.source,
        target=checked.target,
        via=checked.via,
        protocol=protocol,
        port=port,
    )


@router.delete("/{rule_id}", status_code=204, dependencies=[AdminAccess])
async def delete_rule(network: str, rule_id: str, ctl: Ctl) -> Response:
    await ctl.write(lambda db: securitygroups.delete(db, ctl.memory, network, rule_id))
    return Response(status_code=204)

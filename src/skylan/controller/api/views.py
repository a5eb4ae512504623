"""The API's answers, made from the in-memory state."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from skylan.controller.state.records import (
    CloakRule,
    DnsRecord,
    Network,
    Node,
    Port,
    Route,
    SecurityRule,
)
from skylan.controller.state.store import State
from skylan.model import dnsnames, dualstack
from skylan.model.api import (
    ApiTokenOut,
    CloakRuleOut,
    DnsRecordOut,
    Membership,
    NetworkOut,
    NodeOut,
    PeerStatus,
    PortOut,
    RouteOut,
    SecurityRuleOut,
)
from skylan.model.securitygroups import Match


def network_out(state: State, net: Network) -> NetworkOut:
    out = NetworkOut.model_validate(net, from_attributes=True)
    out.members = len(state.members.get(net.id, {}))
    out.dns_zone = dnsnames.zone_of(net.name, net.dns_domain)
    return out


def dns_record_out(state: State, record: DnsRecord) -> DnsRecordOut:
    net = state.networks.get(record.network_id)
    zone = dnsnames.zone_of(net.name, net.dns_domain) if net else None
    return DnsRecordOut(
        id=record.id,
        network_id=record.network_id,
        name=record.name,
        fqdn=f"{record.name}.{zone}" if zone else record.name,
        address=record.address,
        created_at=record.created_at,
    )


def port_out(state: State, port: Port) -> PortOut:
    node = state.nodes.get(port.node_id)
    net = state.networks.get(port.network_id)
    return PortOut.model_validate(
        {
            **_fields(port),
            "node": node.name if node else "",
            "ipv6": _ipv6(net, port),
            "ipv6_static": port.ipv6,
        },
    )


def _ipv6(net: Network | None, port: Port) -> str | None:
    if net is None:
        return None
    return dualstack.address_of(net.cidr4, net.cidr6, port.ipv4, port.ipv6)


def route_out(state: State, route: Route) -> RouteOut:
    via = state.ports.get(route.via_port_id)
    node = state.nodes.get(via.node_id) if via else None
    return RouteOut.model_validate({**_fields(route), "via_node": node.name if node else ""})


def rule_out(rule: CloakRule) -> CloakRuleOut:
    return CloakRuleOut.model_validate(rule, from_attributes=True)


def security_rule_out(state: State, rule: SecurityRule) -> SecurityRuleOut:
    info = rule.info
    return SecurityRuleOut(
        id=info.id,
        network_id=rule.network_id,
        protocol=info.protocol,
        port_from=info.port_from,
        port_to=info.port_to,
        source=_side(state, info.source, "any"),
        target=_side(state, info.target, "all"),
        description=rule.description,
        created_at=rule.created_at,
    )


def _side(state: State, match: Match, everyone: str) -> str:
    """A rule's side as people write it (``tag:web``, ``node:db1``, a CIDR)."""
    if match.kind == "any":
        return everyone
    if match.kind == "cidr":
        return match.value or ""
    if match.kind == "node":
        node = state.nodes.get(match.value or "")
        return f"node:{node.name if node else match.value}"
    return f"tag:{match.value}"


def api_token_out(state: State, token_id: str) -> ApiTokenOut:
    return ApiTokenOut.model_validate(state.api_token_ids[token_id], from_attributes=True)


def node_out(
    state: State, node: Node, tunnels: bytes | None = None, now: float | None = None
) -> NodeOut:
    """``tunnels``: the JSON tunnel list its agent last reported (kept in
    the database, not in memory: see :func:`tunnel_lists`)."""
    now = time.time() if now is None else now
    live = state.liveness.get(node.id)
    online = live is not None and live.online(now)
    seen = live.seen_map() if live is not None and online else {}
    memberships = sorted(
        (
            Membership(
                network_id=net.id,
                network=net.name,
                port_id=port.id,
                mac=port.mac,
                ipv4=port.ipv4,
                extra_ips=list(port.extra_ips),
                ipv6=_ipv6(net, port),
                floating_ips=[
                    ip
                    for ip in seen.get(net.id, [])
                    if ip != port.ipv4 and ip not in port.extra_ips
                ],
            )
            for port in state.ports_of(node.id)
            if (net := state.networks.get(port.network_id)) is not None
        ),
        key=lambda m: m.network,
    )
    peers = []
    if live is not None and online and tunnels:
        for report in json.loads(tunnels):
            peer = state.nodes.get(report["node_id"])
            peers.append(PeerStatus(node=peer.name if peer else None, **report))
        peers.sort(key=lambda p: (p.node or "~", p.node_id))
    last_seen = live.last_seen if live is not None else None
    started = live.started_at if live is not None else None
    return NodeOut(
        id=node.id,
        name=node.name,
        public_key=node.public_key,
        status=node.status,
        online=online,
        last_seen=datetime.fromtimestamp(last_seen, UTC) if last_seen is not None else None,
        uptime_s=int(now - started) if online and started is not None else None,
        agent_version=live.agent_version if live is not None else "",
        os=live.os if live is not None else "",
        tags=list(node.tags),
        endpoints=list(node.endpoints),
        interfaces=live.interface_list() if live is not None else [],
        enrolled_at=node.enrolled_at,
        networks=memberships,
        peers=peers,
    )


def _fields(record: object) -> dict[str, object]:
    return {name: getattr(record, name) for name in record.__slots__}  # type: ignore[attr-defined]

"""The console's pages: each reads what it shows from the REST API."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from skylan.controller.console.access import CurrentViewer
from skylan.controller.console.apiclient import segment
from skylan.controller.console.render import render
from skylan.model.api import (
    AuditPage,
    CloakRuleOut,
    DnsRecordOut,
    GatewayCandidate,
    NetworkOut,
    NodeOut,
    NodeStats,
    PortOut,
    RelayOut,
    RouteOut,
    SecurityRuleOut,
    TokenOut,
    TotalStats,
)

router = APIRouter(include_in_schema=False)


def _rate(stats: TotalStats, now: float) -> dict[str, float]:
    """Bytes and packets per second over the last complete minute (buckets are
    sparse: a silent minute has none)."""
    previous = int(now // 60) - 1
    last = next((b for b in stats.buckets if b.minute == previous), None)
    if last is None:
        return {"bytes": 0.0, "packets": 0.0}
    return {"bytes": last.tx_bytes / 60, "packets": last.tx_packets / 60}


def chosen_gateways(routes: list[RouteOut], nodes: dict[str, NodeOut]) -> set[str]:
    """The route each prefix uses now: the lowest metric whose gateway is online
    (the agents make the same choice, so this is what traffic follows)."""
    best: dict[str, RouteOut] = {}
    for r in routes:
        node = nodes.get(r.via_node)
        if node is None or not node.online:
            continue
        if r.prefix not in best or r.metric < best[r.prefix].metric:
            best[r.prefix] = r
    return {r.id for r in best.values()}


@router.get("/")
async def dashboard(request: Request, viewer: CurrentViewer) -> HTMLResponse:
    api = viewer.api
    networks = await api.many(NetworkOut, "/networks")
    nodes = await api.many(NodeOut, "/nodes")
    total = await api.one(TotalStats, "/stats", {"minutes": 5})
    online_by_net: dict[str, int] = {}
    for n in nodes:
        for m in n.networks:
            online_by_net[m.network_id] = online_by_net.get(m.network_id, 0) + int(n.online)
    return render(
        request,
        "dashboard.html",
        {
            "networks": networks,
            "nodes": nodes,
            "online": sum(n.online for n in nodes),
            "pending": sum(n.status == "pending" for n in nodes),
            "online_by_net": online_by_net,
            "rate": _rate(total, time.time()),
        },
        login=viewer.login,
    )


@router.get("/networks/{ident}")
async def network_page(ident: str, request: Request, viewer: CurrentViewer) -> HTMLResponse:
    api = viewer.api
    net = await api.one(NetworkOut, f"/networks/{segment(ident)}")
    base = f"/networks/{net.id}"
    ports = await api.many(PortOut, f"{base}/ports")
    nodes = await api.many(NodeOut, "/nodes")
    by_id = {n.id: n for n in nodes}
    routes = await api.many(RouteOut, f"{base}/routes")
    attached = {p.node_id for p in ports}
    members = []
    for p in ports:
        node = by_id.get(p.node_id)
        membership = (
            next((m for m in node.networks if m.network_id == net.id), None) if node else None
        )
        members.append(
            {"port": p, "node": node, "floating": membership.floating_ips if membership else []}
        )
    return render(
        request,
        "network.html",
        {
            "net": net,
            "members": members,
            "attachable": [n for n in nodes if n.status == "approved" and n.id not in attached],
            "routes": routes,
            "chosen": chosen_gateways(routes, {n.name: n for n in nodes}),
            "candidates": await api.many(GatewayCandidate, f"{base}/gateway-candidates"),
            "rules": await api.many(CloakRuleOut, f"{base}/cloak-rules"),
            "security_rules": await api.many(SecurityRuleOut, f"{base}/security-rules"),
            "dns_records": await api.many(DnsRecordOut, f"{base}/dns-records"),
            "node_names": {n.id: n.name for n in nodes},
        },
        login=viewer.login,
    )


@router.get("/nodes")
async def nodes_page(request: Request, viewer: CurrentViewer) -> HTMLResponse:
    nodes = await viewer.api.many(NodeOut, "/nodes")
    return render(request, "nodes.html", {"nodes": nodes}, login=viewer.login)


@router.get("/approvals")
async def approvals_page(request: Request, viewer: CurrentViewer) -> HTMLResponse:
    pending = await viewer.api.many(NodeOut, "/nodes", {"status": "pending"})
    return render(request, "approvals.html", {"pending": pending}, login=viewer.login)


@router.get("/nodes/{ident}")
async def node_page(ident: str, request: Request, viewer: CurrentViewer) -> HTMLResponse:
    api = viewer.api
    node = await api.one(NodeOut, f"/nodes/{segment(ident)}")
    stats = await api.one(NodeStats, f"/nodes/{node.id}/stats", {"minutes": 60})
    traffic: dict[str, Any] = stats.peers  # peer names come with node.peers
    return render(request, "node.html", {"node": node, "traffic": traffic}, login=viewer.login)


@router.get("/audit")
async def audit_page(
    request: Request,
    viewer: CurrentViewer,
    *,
    action: str = "",
    actor: str = "",
    target: str = "",
    before: int | None = None,
) -> HTMLResponse:
    filters = {"action": action, "actor": actor, "target": target}
    params: dict[str, Any] = {k: v for k, v in filters.items() if v} | {"limit": 100}
    if before is not None:
        params["before"] = before
    page = await viewer.api.one(AuditPage, "/audit", params)
    return render(request, "audit.html", {"page": page, "filters": filters}, login=viewer.login)


@router.get("/relays")
async def relays_page(request: Request, viewer: CurrentViewer) -> HTMLResponse:
    relays = await viewer.api.many(RelayOut, "/relays")
    return render(request, "relays.html", {"relays": relays}, login=viewer.login)


@router.get("/tokens")
async def tokens_page(request: Request, viewer: CurrentViewer) -> HTMLResponse:
    tokens = await viewer.api.many(TokenOut, "/tokens")
    networks = await viewer.api.many(NetworkOut, "/networks")
    return render(
        request,
        "tokens.html",
        {"tokens": tokens, "networks": networks, "net_names": {n.id: n.name for n in networks}},
        login=viewer.login,
    )

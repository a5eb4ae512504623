"""``/api/v1/networks/{network}/routes`` and ``/gateway-candidates``: gateways
to physical LANs (see :mod:`skylan.controller.service.gateways`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from skylan.controller.api.deps import AdminAccess, Ctl, ReadAccess
from skylan.controller.api.views import route_out
from skylan.controller.service import gateways, lookup
from skylan.model.api import GatewayCandidate, RouteOut
from skylan.model.requests import RouteCreate

router = APIRouter(prefix="/networks/{network}", tags=["gateways"])


@router.get("/routes", dependencies=[ReadAccess])
async def list_routes(network: str, ctl: Ctl) -> list[RouteOut]:
    net = lookup.network(ctl.memory, network)
    routes = sorted(ctl.memory.routes.get(net.id, {}).values(), key=lambda r: (r.prefix, r.metric))
    return [route_out(ctl.memory, r) for r in routes]


@router.post("/routes", status_code=201, dependencies=[AdminAccess])
async def create_route(network: str, body: RouteCreate, ctl: Ctl) -> RouteOut:
    route_id = await ctl.write(lambda db: gateways.create(db, ctl.memory, network, body))
    net = lookup.network(ctl.memory, network)
    return route_out(ctl.memory, ctl.memory.routes[net.id][route_id])


@router.delete("/routes/{route_id}", status_code=204, dependencies=[AdminAccess])
async def delete_route(network: str, route_id: str, ctl: Ctl) -> Response:
    await ctl.write(lambda db: gateways.delete(db, ctl.memory, network, route_id))
    return Response(status_code=204)


@router.get("/gateway-candidates", dependencies=[ReadAccess])
async def gateway_candidates(network: str, ctl: Ctl) -> list[GatewayCandidate]:
    """Members with a private LAN the other members do not share."""
    return gateways.candidates(ctl.memory, network)

"""``/api/v1/networks``: virtual networks (one L2 broadcast domain each)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from skylan.controller.api.deps import AdminAccess, Ctl, ReadAccess
from skylan.controller.api.views import network_out
from skylan.controller.service import lookup, networks
from skylan.model.api import NetworkOut
from skylan.model.requests import NetworkCreate, NetworkUpdate

router = APIRouter(prefix="/networks", tags=["networks"])


@router.post("", status_code=201, dependencies=[AdminAccess])
async def create_network(body: NetworkCreate, ctl: Ctl) -> NetworkOut:
    net_id = await ctl.write(lambda db: networks.create(db, ctl.memory, body))
    return network_out(ctl.memory, ctl.memory.networks[net_id])


@router.get("", dependencies=[ReadAccess])
async def list_networks(ctl: Ctl) -> list[NetworkOut]:
    nets = sorted(ctl.memory.networks.values(), key=lambda n: n.name)
    return [network_out(ctl.memory, n) for n in nets]


@router.get("/{ident}", dependencies=[ReadAccess])
async def get_network(ident: str, ctl: Ctl) -> NetworkOut:
    return network_out(ctl.memory, lookup.network(ctl.memory, ident))


@router.patch("/{ident}", dependencies=[AdminAccess])
async def update_network(ident: str, body: NetworkUpdate, ctl: Ctl) -> NetworkOut:
    net_id = await ctl.write(lambda db: networks.update(db, ctl.memory, ident, body))
    return network_out(ctl.memory, ctl.memory.networks[net_id])


@router.delete("/{ident}", status_code=204, dependencies=[AdminAccess])
async def delete_network(ident: str, ctl: Ctl, force: bool = False) -> Response:
    await ctl.write(lambda db: networks.delete(db, ctl.memory, ident, force=force))
    return Response(status_code=204)

"""``/api/v1/networks/{network}/ports``: attaching nodes to networks (see
:mod:`skylan.controller.service.ports`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from skylan.controller.api.deps import AdminAccess, Ctl, ReadAccess
from skylan.controller.api.views import port_out
from skylan.controller.service import lookup, ports
from skylan.model.api import PortOut
from skylan.model.requests import PortCreate, PortUpdate

router = APIRouter(prefix="/networks/{network}/ports", tags=["ports"])


@router.get("", dependencies=[ReadAccess])
async def list_ports(network: str, ctl: Ctl) -> list[PortOut]:
    net = lookup.network(ctl.memory, network)
    members = ctl.memory.members.get(net.id, {}).values()
    return [port_out(ctl.memory, p) for p in sorted(members, key=lambda p: _order(p.ipv4))]


@router.post("", status_code=201, dependencies=[AdminAccess])
async def attach_port(network: str, body: PortCreate, ctl: Ctl) -> PortOut:
    port_id = await ctl.write(lambda db: ports.create(db, ctl.memory, network, body))
    return port_out(ctl.memory, ctl.memory.ports[port_id])


@router.get("/{port}", dependencies=[ReadAccess])
async def get_port(network: str, port: str, ctl: Ctl) -> PortOut:
    net = lookup.network(ctl.memory, network)
    return port_out(ctl.memory, lookup.port(ctl.memory, net, port))


@router.patch("/{port}", dependencies=[AdminAccess])
async def update_port(network: str, port: str, body: PortUpdate, ctl: Ctl) -> PortOut:
    port_id = await ctl.write(lambda db: ports.update(db, ctl.memory, network, port, body))
    return port_out(ctl.memory, ctl.memory.ports[port_id])


@router.delete("/{port}", status_code=204, dependencies=[AdminAccess])
async def detach_port(network: str, port: str, ctl: Ctl) -> Response:
    await ctl.write(lambda db: ports.detach(db, ctl.memory, network, port))
    return Response(status_code=204)


def _order(ipv4: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ipv4.split("."))

"""``/api/v1/networks/{network}/dns-records``: names for addresses in a
network's zone that are not a member's own, such as floating IPs."""

from __future__ import annotations

from fastapi import APIRouter, Response

from skylan.controller.api.deps import AdminAccess, Ctl, ReadAccess
from skylan.controller.api.views import dns_record_out
from skylan.controller.service import dnsrecords, lookup
from skylan.model.api import DnsRecordOut
from skylan.model.requests import DnsRecordCreate

router = APIRouter(prefix="/networks/{network}/dns-records", tags=["dns"])


@router.get("", dependencies=[ReadAccess])
async def list_records(network: str, ctl: Ctl) -> list[DnsRecordOut]:
    net = lookup.network(ctl.memory, network)
    records = sorted(ctl.memory.dns.get(net.id, {}).values(), key=lambda r: r.name)
    return [dns_record_out(ctl.memory, r) for r in records]


@router.post("", status_code=201, dependencies=[AdminAccess])
async def create_record(network: str, body: DnsRecordCreate, ctl: Ctl) -> DnsRecordOut:
    record_id = await ctl.write(lambda db: dnsrecords.create(db, ctl.memory, network, body))
    net = lookup.network(ctl.memory, network)
    return dns_record_out(ctl.memory, ctl.memory.dns[net.id][record_id])


@router.delete("/{record_id}", status_code=204, dependencies=[AdminAccess])
async def delete_record(network: str, record_id: str, ctl: Ctl) -> Response:
    await ctl.write(lambda db: dnsrecords.delete(db, ctl.memory, network, record_id))
    return Response(status_code=204)

"""``/api/v1/networks/{network}/dns-records``: names for addresses in a
network's zone that are not a member's own, such as floating IPs."""

from __future__ import annotations

from fastapi import APIRouter, Response

from skylan.controller.api.deps import AdminAccess, Ctl, ReadAccess
from skylan.controller.api.views import dns_record_out
from skylan.controller.service import dnsrecords, lookup
from skylan.model.api import DnsRecordOut
from skylan.model.requests import DnsRecordCreate, DnsRecordUpdate

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


@router.patch("/{record}", dependencies=[AdminAccess])
async def update_record(network: str, record: str, body: DnsRecordUpdate, ctl: Ctl) -> DnsRecordOut:
    """Rename a name (``record``: its id or its name) or move it to another address."""
    record_id = await ctl.write(lambda db: dnsrecords.update(db, ctl.memory, network, record, body))
    net = lookup.network(ctl.memory, network)
    return dns_record_out(ctl.memory, ctl.memory.dns[net.id][record_id])


@router.delete("/{record}", status_code=204, dependencies=[AdminAccess])
async def delete_record(network: str, record: str, ctl: Ctl) -> Response:
    """Remove a name (``record``: its id or its name)."""
    await ctl.write(lambda db: dnsrecords.delete(db, ctl.memory, network, record))
    return Response(status_code=204)

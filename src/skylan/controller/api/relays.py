"""``/api/v1/relays`` (administrators) and ``/api/v1/relay/sync`` (the
relays themselves)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from skylan.controller.api.deps import AdminAccess, Ctl, ReadAccess, RelayId
from skylan.controller.service import relays
from skylan.model.api import RelayCreated, RelayOut
from skylan.model.relayapi import RelaySync, RelaySyncAnswer
from skylan.model.requests import RelayCreate

router = APIRouter(prefix="/relays", tags=["relays"])
own = APIRouter(prefix="/relay", tags=["relays"])
_allowed = relays.AllowedKeys()


def _read(ctl: Ctl) -> list[RelayOut]:
    with ctl.sessions() as db:
        return relays.listed(db)


@router.get("", dependencies=[ReadAccess])
async def list_relays(ctl: Ctl) -> list[RelayOut]:
    """Every relay, with its key (once started) and what it last reported."""
    return await asyncio.to_thread(_read, ctl)


@router.post("", status_code=201, dependencies=[AdminAccess])
async def create(body: RelayCreate, ctl: Ctl) -> RelayCreated:
    """A relay's entry and its credential (for ``skylan relay serve``), shown once."""
    relay_id, credential = await ctl.write(lambda db: relays.create(db, body))
    found = next(r for r in await asyncio.to_thread(_read, ctl) if r.id == relay_id)
    return RelayCreated(**found.model_dump(), credential=credential)


@router.delete("/{relay}", status_code=204, dependencies=[AdminAccess])
async def delete(relay: str, ctl: Ctl) -> Response:
    """Nodes stop using it at their next netmap; its credential stops working."""
    await ctl.write(lambda db: relays.delete(db, ctl.memory, relay))
    return Response(status_code=204)


@own.post("/sync")
async def sync(body: RelaySync, relay_id: RelayId, ctl: Ctl) -> RelaySyncAnswer:
    """The relay's key and traffic in; the keys that may use it out."""
    await ctl.write(lambda db: relays.report(db, ctl.memory, relay_id, body))
    return _allowed.answer(ctl.memory, ctl.feed.applied, body.keys_version)

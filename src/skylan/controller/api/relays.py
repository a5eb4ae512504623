"""``/api/v1/relays`` (administrators) and ``/api/v1/relay/sync`` (the
relays themselves)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from skylan.controller.api.deps import AdminAccess, Ctl, ReadAccess, RelayId
from skylan.controller.api.errors import ApiError
from skylan.controller.service import relays
from skylan.model.api import RelayCreated, RelayOut
from skylan.model.relayapi import RelaySync, RelaySyncAnswer
from skylan.model.requests import RelayCreate

router = APIRouter(prefix="/relays", tags=["relays"])
own = APIRouter(prefix="/relay", tags=["relays"])
_allowed = relays.AllowedKeys()
MAX_WAIT_S = 30.0


def _read(ctl: Ctl) -> list[RelayOut]:
    with ctl.sessions() as db:
        return relays.listed(db)


@router.get("", dependencies=[ReadAccess])
async def list_relays(ctl: Ctl) -> list[RelayOut]:
    """Every relay, with its key (once started) and what it last reported."""
    return await asyncio.to_thread(_read, ctl)


@router.post("", status_code=201, dependencies=[AdminAccess])
async def create(body: RelayCreate, ctl: Ctl, request: Request) -> RelayCreated:
    """A relay's entry and its credential (for ``skylan relay serve``), shown once."""
    relay_id, credential = await ctl.write(lambda db: relays.create(db, body))
    found = next(r for r in await asyncio.to_thread(_read, ctl) if r.id == relay_id)
    url = ctl.settings.public_url or str(request.base_url).rstrip("/")
    port = body.address.rpartition(":")[2]
    command = f"skylan relay serve {url} {credential} --fingerprint {ctl.fingerprint} --port {port}"
    return RelayCreated(**found.model_dump(), credential=credential, serve_command=command)


@router.delete("/{relay}", status_code=204, dependencies=[AdminAccess])
async def delete(relay: str, ctl: Ctl) -> Response:
    """Nodes stop using it at their next netmap; its credential stops working."""
    await ctl.write(lambda db: relays.delete(db, ctl.memory, relay))
    return Response(status_code=204)


@own.post("/sync")
async def sync(
    body: RelaySync,
    relay_id: RelayId,
    ctl: Ctl,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0.0,
) -> RelaySyncAnswer:
    """The relay's key and traffic in; the keys that may use it out, as
    soon as they differ from the version it holds (within ``wait`` seconds:
    a node that enrols can use the relay a moment later)."""
    await ctl.write(lambda db: relays.report(db, ctl.memory, relay_id, body))
    ctl.relay_reports[relay_id] = body
    deadline = time.monotonic() + wait
    answer = _allowed.answer(ctl.memory, ctl.feed.applied, body.keys_version)
    while (
        answer.keys is None and (left := deadline - time.monotonic()) > 0 and not ctl.feed.closing
    ):
        await ctl.feed.next_change(left)
        if relay_id not in ctl.memory.relays:
            raise ApiError(401, "this relay was deleted")
        answer = _allowed.answer(ctl.memory, ctl.feed.applied, body.keys_version)
    return answer

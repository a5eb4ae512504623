"""``/api/v1/agent/*``: what node agents call.

Enrollment takes a join token; everything else authenticates with the
per-node credential returned at enrollment (checked by the gate, from memory),
and a node can only ever read its own netmap. ``sync`` is what agents use: one
request per heartbeat interval carrying the heartbeat and the statistics not
yet stored, which waits for the next netmap. ``netmap``, ``heartbeat`` and
``stats`` do the same things one at a time.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from skylan.controller.api.deps import Ctl, NodeId
from skylan.controller.service import enrollment
from skylan.model.agentapi import (
    EnrollRequest,
    EnrollResponse,
    Heartbeat,
    HeartbeatAnswer,
    StatsReport,
    SyncAnswer,
    SyncRequest,
)
from skylan.model.netmap import NetMap

router = APIRouter(prefix="/agent", tags=["agent"])

Since = Annotated[int, Query(ge=0, description="the netmap version the agent holds")]
Wait = Annotated[float, Query(ge=0, le=300, description="seconds to wait for a newer netmap")]


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post("/enroll", status_code=201)
async def enroll(body: EnrollRequest, request: Request, ctl: Ctl) -> EnrollResponse:
    caller = enrollment.Caller(ctl.fingerprint, _address(request))
    return await ctl.write(lambda db: enrollment.enroll(db, ctl.memory, body, caller))


@router.get(
    "/netmap",
    responses={
        200: {"model": NetMap, "description": "the node's netmap"},
        304: {"description": "no newer netmap before the timeout"},
    },
)
async def netmap(node_id: NodeId, ctl: Ctl, since: Since = 0, timeout: Wait = 30.0) -> Response:
    """Long-poll: answers at once if a netmap newer than ``since`` exists,
    otherwise when one appears, or with 304 after ``timeout`` seconds.
    (Served by :mod:`.longpoll`; this route describes it and does the same.)"""
    body = await ctl.feed.wait(node_id, since, timeout)
    if body is None:
        return Response(status_code=304)
    return Response(body, media_type="application/json")


@router.post("/heartbeat")
async def heartbeat(
    body: Heartbeat, node_id: NodeId, request: Request, ctl: Ctl
) -> HeartbeatAnswer:
    return await ctl.heartbeat(node_id, body, _address(request))


@router.post("/stats", status_code=204)
async def stats(body: StatsReport, node_id: NodeId, ctl: Ctl) -> Response:
    ctl.stats.ingest(node_id, body)
    return Response(status_code=204)


@router.post(
    "/sync",
    response_class=Response,
    responses={200: {"model": SyncAnswer, "description": "status, stored reports, netmap"}},
)
async def sync(
    body: SyncRequest,
    node_id: NodeId,
    request: Request,
    ctl: Ctl,
    since: Since = 0,
    wait: Wait = 15.0,
) -> Response:
    """The heartbeat (if given) and statistics reports are taken in at once;
    the answer comes when the node's netmap is newer than ``since``, or after
    ``wait`` seconds with ``netmap: null``. ``stats_stored`` says up to which
    report this node's statistics are stored: resend the later ones.

    (Served by :mod:`.longpoll`, which parks the wait outside this framework's
    request handling; this route describes it and does the same.)"""
    await ctl.sync(node_id, body, _address(request))
    found = await ctl.feed.wait(node_id, since, wait)
    return Response(ctl.sync_answer(node_id, found), media_type="application/json")

"""The agents' long-polls, ``POST /api/v1/agent/sync`` and ``GET
/api/v1/agent/netmap``, served as plain ASGI ahead of the framework's routes.

Thousands of these are parked at any time, one per agent, for up to a
heartbeat interval each. Parked inside the framework's request handling, each
kept its parsed JSON body, its raw body and its solved dependencies alive
(25 KiB and more an agent, measured); here the request is taken in
(:func:`take_in`), dropped, and only then does the wait begin, holding a few
integers. Agents' own connections (:mod:`skylan.controller.agentconnection`)
take requests in and finish them with the same two functions; for requests
through the framework, the gate calls :class:`LongPoll` directly, before the
framework's middleware and routing. The framework's routes of the same paths
stay (they document these in the API and do the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from skylan.controller.api.errors import internal_error, known_error, validation_error
from skylan.controller.gate import Principal
from skylan.controller.runtime import Controller
from skylan.model.agentapi import SyncRequest

SYNC = "/api/v1/agent/sync"
NETMAP = "/api/v1/agent/netmap"


class _Invalid(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("invalid query")
        self.errors = errors


def _number(query: QueryParams, name: str, default: float, high: float) -> float:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw) if name != "since" else int(raw)
    except ValueError:
        raise _Invalid([{"loc": ("query", name), "msg": "must be a number"}]) from None
    if not 0 <= value <= high:  # (NaN too: it compares false)
        raise _Invalid([{"loc": ("query", name), "msg": f"must be between 0 and {high:g}"}])
    return value


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Waiting:
    """A long-poll taken in, to be answered when its node's netmap changes."""

    node_id: str
    since: int
    wait: float
    sync: bool


async def take_in(
    ctl: Controller,
    principal: object,
    *,
    sync: bool,
    query_string: bytes,
    body: bytes,
    client: str | None,
) -> Waiting | Response:
    """Check and take in a long-poll whose body is in (a sync's heartbeat and
    reports are stored here): what it waits for, or the answer if it is
    refused. The same whether it came through the framework (:class:`LongPoll`)
    or an agent's lean connection (:mod:`skylan.controller.agentconnection`)."""
    try:
        if not isinstance(principal, Principal) or principal.node_id is None:
            raise _Invalid([])  # the gate lets only nodes through: not reached
        query = QueryParams(query_string.decode("latin-1"))
        since = int(_number(query, "since", 0, 2**63 - 1))
        if sync:
            wait = _number(query, "wait", 15.0, 300)
            request = SyncRequest.model_validate_json(body or b"{}")
            await ctl.sync(principal.node_id, request, client)
        else:
            wait = _number(query, "timeout", 30.0, 300)
        return Waiting(principal.node_id, since, wait, sync)
    except _Invalid as exc:
        return validation_error(exc.errors) if exc.errors else _refused()
    except ValidationError as exc:
        return validation_error([dict(e) for e in exc.errors()])
    except Exception as exc:  # the same answers as everywhere else
        return known_error(exc) or internal_error(exc)


def finish(ctl: Controller, waiting: Waiting, found: bytes | None) -> Response:
    """The answer once the wait is over (``found``: the netmap, or None)."""
    try:
        if waiting.sync:
            answer = ctl.sync_answer(waiting.node_id, found)
            return Response(answer, media_type="application/json")
        if found is None:
            return Response(status_code=304)
        return Response(found, media_type="application/json")
    except Exception as exc:  # the node was deleted meanwhile
        return known_error(exc) or internal_error(exc)


class LongPoll:
    def __init__(self, sync: bool) -> None:
        self.sync = sync
        self.controller: Controller  # set when the app is built

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response: Response
        try:
            body = await _body(receive) if self.sync else b""
        except Exception as exc:  # a body past the limit (413), a client gone
            response = known_error(exc) or internal_error(exc)
        else:
            ctl, client = self.controller, scope.get("client")
            taken = await take_in(
                ctl,
                scope.get("state", {}).get("principal"),
                sync=self.sync,
                query_string=scope.get("query_string", b""),
                body=body,
                client=client[0] if client else None,
            )
            del body  # nothing of the request is kept while it waits
            if isinstance(taken, Waiting):
                found = await ctl.feed.wait(taken.node_id, taken.since, taken.wait)
                taken = finish(ctl, taken, found)
            response = taken
        await response(scope, receive, send)


def _refused() -> JSONResponse:
    return JSONResponse({"error": "agent endpoints take a node credential", "detail": {}}, 403)


def handlers() -> dict[tuple[str, str], LongPoll]:
    """(method, path) -> handler, for the gate to call directly."""
    return {("POST", SYNC): LongPoll(sync=True), ("GET", NETMAP): LongPoll(sync=False)}

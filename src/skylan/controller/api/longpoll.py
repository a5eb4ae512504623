"""The agents' long-polls, ``POST /api/v1/agent/sync`` and ``GET
/api/v1/agent/netmap``, served as plain ASGI ahead of the framework's routes.

Thousands of these are parked at any time, one per agent, for up to a
heartbeat interval each. Parked inside the framework's request handling, each
kept its parsed JSON body, its raw body and its solved dependencies alive
(25 KiB and more an agent, measured); here the request is taken in, dropped,
and only then does the wait begin, holding a future and a few integers. The gate
calls these directly, before the framework's middleware and routing; the
framework's routes of the same paths stay (they document these in the API and
do the same).
"""

from __future__ import annotations

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


class LongPoll:
    def __init__(self, sync: bool) -> None:
        self.sync = sync
        self.controller: Controller  # set when the app is built

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctl: Controller = self.controller
        principal = scope.get("state", {}).get("principal")
        try:
            if not isinstance(principal, Principal) or principal.node_id is None:
                raise _Invalid([])  # the gate lets only nodes through: not reached
            node_id = principal.node_id
            query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
            since = int(_number(query, "since", 0, 2**63 - 1))
            if self.sync:
                wait = _number(query, "wait", 15.0, 300)
                raw = await _body(receive)
                request = SyncRequest.model_validate_json(raw or b"{}")
                del raw
                client = scope.get("client")
                await ctl.sync(node_id, request, client[0] if client else None)
                del request  # nothing of the request is kept while it waits
            else:
                wait = _number(query, "timeout", 30.0, 300)
            found = await ctl.feed.wait(node_id, since, wait)
            if self.sync:
                response = Response(ctl.sync_answer(node_id, found), media_type="application/json")
            elif found is None:
                response = Response(status_code=304)
            else:
                response = Response(found, media_type="application/json")
        except _Invalid as exc:
            response = validation_error(exc.errors) if exc.errors else _refused()
        except ValidationError as exc:
            response = validation_error([dict(e) for e in exc.errors()])
        except Exception as exc:  # the same answers as everywhere else
            response = known_error(exc) or internal_error(exc)
        await response(scope, receive, send)


def _refused() -> JSONResponse:
    return JSONResponse({"error": "agent endpoints take a node credential", "detail": {}}, 403)


def handlers() -> dict[tuple[str, str], LongPoll]:
    """(method, path) -> handler, for the gate to call directly."""
    return {("POST", SYNC): LongPoll(sync=True), ("GET", NETMAP): LongPoll(sync=False)}

"""Request dependencies: the running controller and what the caller may do.

Who the caller is was settled by :mod:`skylan.controller.gate` from the
headers, before the body was read; these only decide what that caller may do.

They are ``async def`` although they never await: FastAPI runs a plain
``def`` dependency in its thread pool, and under load every such hop waits
for a thread, the GIL and another turn of the event loop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from skylan.controller import logins
from skylan.controller.api.errors import ApiError
from skylan.controller.auth import Scope
from skylan.controller.gate import Caller, Principal
from skylan.controller.runtime import Controller


async def controller(request: Request) -> Controller:
    ctl: Controller = request.app.state.controller
    return ctl


Ctl = Annotated[Controller, Depends(controller)]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def principal(request: Request) -> Principal:
    found = getattr(request.state, "principal", None)
    if not isinstance(found, Principal):  # the gate runs first: only a wiring bug gets here
        raise ApiError(401, "missing credentials")
    return found


async def reader(request: Request) -> Scope:
    """An API token in the Authorization header, or a console login cookie.

    With the cookie, a change must also carry the session's CSRF token in the
    ``X-CSRF-Token`` header: another site can make a browser send the cookie,
    but cannot read the token.
    """
    who = principal(request)
    if who.scope is None:
        raise ApiError(403, "this endpoint is for people and scripts, not node agents")
    if (
        who.caller is Caller.CONSOLE
        and request.method not in SAFE_METHODS
        and not (
            who.csrf is not None
            and logins.csrf_ok(who.csrf, request.headers.get(logins.CSRF_HEADER))
        )
    ):
        raise ApiError(403, "missing or wrong X-CSRF-Token for this console session")
    return who.scope


async def admin(scope: Annotated[Scope, Depends(reader)]) -> Scope:
    if scope is not Scope.ADMIN:
        raise ApiError(403, "this action needs an admin token; the token used is read-only")
    return scope


async def node_id(request: Request) -> str:
    """The node an agent's request comes from."""
    who = principal(request)
    if who.node_id is None:
        raise ApiError(403, "agent endpoints take a node credential")
    return who.node_id


async def relay_id(request: Request) -> str:
    """The relay a relay's request comes from."""
    who = principal(request)
    if who.relay_id is None:
        raise ApiError(403, "relay endpoints take a relay credential")
    return who.relay_id


ReadAccess = Depends(reader)
AdminAccess = Depends(admin)
NodeId = Annotated[str, Depends(node_id)]
RelayId = Annotated[str, Depends(relay_id)]

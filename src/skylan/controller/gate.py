"""The controller's front door, in front of every route: who is asking, and
may their request be read at all.

It runs before FastAPI reads a byte of the body, from memory, in this order:

1. a source locked out for failed authentication (:mod:`.lockout`) gets 429;
2. a route that needs credentials gets them checked from the headers alone
   (an API token or console cookie for ``/api/v1``, a node credential for
   ``/api/v1/agent``, a read-scoped token for ``/metrics``): a request without
   valid ones is answered 401 without its body being read or parsed;
3. a body larger than the limit is refused with 413, from ``Content-Length``
   before reading, or as soon as a streamed body passes the limit;
4. past ``max_busy`` requests in progress, more are answered 503 with
   ``Retry-After`` at once: a burst gets quick answers, not a 30 s queue.

The caller found in step 2 rides on the request (``request.state.principal``);
the routes' dependencies only decide what it may do.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skylan.controller import audit, logins
from skylan.controller.auth import Scope as AccessScope
from skylan.controller.auth import hash_secret
from skylan.controller.lockout import Lockout
from skylan.controller.settings import DEFAULT_MAX_BODY
from skylan.controller.state.store import State

log = logging.getLogger("skylan.controller")

API = "/api/v1"
PUBLIC = frozenset(
    {
        f"{API}/health",
        f"{API}/openapi.json",
        f"{API}/docs",
        f"{API}/docs/oauth2-redirect",
        f"{API}/agent/enroll",  # the join token is in the body
    }
)


# the long-polls: parked for up to minutes, so not counted as work in progress
LONG_POLLS = frozenset({f"{API}/agent/netmap", f"{API}/agent/sync"})
RETRY = {"Retry-After": "1"}
CHUNK = 8192  # bytes of a response body handed to the server at once


class Caller(StrEnum):
    TOKEN = "token"  # an API token in the Authorization header
    CONSOLE = "console"  # a browser's login cookie
    NODE = "node"  # an agent's node credential
    RELAY = "relay"  # a relay's credential


@dataclass(frozen=True)
class Principal:
    caller: Caller
    scope: AccessScope | None = None  # TOKEN and CONSOLE
    name: str = ""  # the API token's name, or the node's id
    csrf: str | None = None  # CONSOLE: the token changes must echo
    node_id: str | None = None  # NODE
    relay_id: str | None = None  # RELAY


class Needs(StrEnum):
    NOTHING = "nothing"
    USER = "user"  # API token or console cookie
    NODE = "node"
    RELAY = "relay"
    READER = "reader"  # API token (for scrapers); /metrics


def needs(path: str) -> Needs:
    if path in PUBLIC or not (path.startswith(API + "/") or path == "/metrics"):
        return Needs.NOTHING
    if path == "/metrics":  # scrapers without a token: `--metrics-listen` (its own port)
        return Needs.READER
    if path.startswith(f"{API}/agent/"):
        return Needs.NODE
    if path.startswith(f"{API}/relay/"):
        return Needs.RELAY
    return Needs.USER


class Refused(Exception):
    """No valid credentials; ``presented`` if some were offered (a guess)."""

    def __init__(self, message: str, *, presented: bool) -> None:
        super().__init__(message)
        self.presented = presented


def _bearer(authorization: str, what: str) -> str:
    kind, _, secret = authorization.partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        raise Refused(f"missing {what}: send 'Authorization: Bearer <token>'", presented=False)
    return secret.strip()


def authenticate(
    state: State, logins_seen: logins.LoginCache, request: Request, need: Needs, now: float
) -> Principal | str:
    """Who sent ``request`` (headers only, from memory); :class:`Refused` if
    nobody valid, or the console cookie to look up in the database."""
    if need is Needs.NODE:
        return node_principal(state, request.headers.get("authorization", ""))
    if need is Needs.RELAY:
        secret = _bearer(request.headers.get("authorization", ""), "relay credential")
        relay_id = state.relay_by_credential.get(hash_secret(secret))
        if relay_id is None:
            raise Refused("unknown or deleted relay credential", presented=True)
        return Principal(Caller.RELAY, name=relay_id, relay_id=relay_id)
    cookie = request.cookies.get(logins.COOKIE)
    if need is Needs.USER and "authorization" not in request.headers and cookie:
        login = logins_seen.get(cookie, now)
        if login is None:
            return cookie  # not seen lately: the database must say
        return console_principal(state, login)
    bearer = _bearer(request.headers.get("authorization", ""), "API token")
    token = state.api_tokens.get(hash_secret(bearer))
    if token is None or token.revoked:
        raise Refused("invalid or revoked API token", presented=True)
    return Principal(Caller.TOKEN, AccessScope(token.scope), token.name)


def node_principal(state: State, authorization: str) -> Principal:
    """The node whose credential ``authorization`` carries; :class:`Refused` if none."""
    secret = _bearer(authorization, "node credential")
    node_id = state.node_by_credential.get(hash_secret(secret))
    if node_id is None:
        raise Refused(
            "unknown or revoked node credential; re-enroll with a join token", presented=True
        )
    return Principal(Caller.NODE, name=node_id, node_id=node_id)


def console_principal(state: State, login: logins.Login) -> Principal:
    token = state.api_token_ids.get(login.token_id)
    if token is None or token.revoked:  # revoking the token ends its consoles at once
        raise Refused("the console session has ended; log in again", presented=True)
    return Principal(Caller.CONSOLE, login.scope, login.token_name, login.csrf)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "detail": {}}, status_code=status, headers=headers)


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        state: State,
        sessions: sessionmaker[Session],
        lockout: Lockout,
        max_body: int = DEFAULT_MAX_BODY,
        max_busy: int = 512,
        login_cache: logins.LoginCache | None = None,
        long_polls: Mapping[tuple[str, str], ASGIApp] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.state = state
        self.sessions = sessions
        self.lockout = lockout
        self.max_body = max_body
        self.max_busy = max_busy  # requests being worked on (long-polls parked apart)
        self.busy = 0
        self.clock = clock
        self.logins = login_cache or logins.LoginCache()
        # (method, path) -> app: parked requests go there straight from here, so
        # while they wait they hold no frames of the framework's handling
        self.long_polls = long_polls or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        source = request.client.host if request.client else ""
        path: str = scope["path"]
        wait = self.lockout.retry_after(source, self.clock())
        if wait is not None and path != f"{API}/health":
            response = error(
                429,
                f"too many failed authentication attempts from {source}; retry in {wait} s",
                {"Retry-After": str(wait)},
            )
            await response(scope, receive, send)
            return
        need = needs(path)
        if need is not Needs.NOTHING:
            try:
                principal = await self._authenticate(request, need)
            except Refused as exc:
                if exc.presented:
                    self.lockout.failed(source, self.clock())
                await error(401, str(exc))(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal
            # (a context variable: it follows the request into the writer)
            audit.current.set(
                audit.Actor(
                    principal.caller.value,
                    principal.name,
                    source,
                    f"{scope['method']} {path}"[:200],
                )
            )
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            await self._too_large()(scope, receive, send)
            return
        parks = path in LONG_POLLS
        if parks and (direct := self.long_polls.get((scope["method"], path))) is not None:
            await direct(scope, self._bounded(receive), self._watch(source, send))
            return
        if not parks and self.busy >= self.max_busy:
            await error(503, "the controller is overloaded; retry in a moment", RETRY)(
                scope, receive, send
            )
            return
        self.busy += not parks
        try:
            await self.app(scope, self._bounded(receive), self._watch(source, send))
        finally:
            self.busy -= not parks

    async def _authenticate(self, request: Request, need: Needs) -> Principal:
        now = time.time()
        found = authenticate(self.state, self.logins, request, need, now)
        if isinstance(found, Principal):
            return found
        login = await run_in_threadpool(self._lookup_login, found)
        if login is None:
            raise Refused("the console session has ended; log in again", presented=True)
        self.logins.put(found, login, now)
        return console_principal(self.state, login)

    def _lookup_login(self, cookie: str) -> logins.Login | None:
        with self.sessions() as db:
            return logins.lookup(db, cookie)

    def _too_large(self) -> JSONResponse:
        return error(413, f"request body larger than {self.max_body} bytes")

    def _bounded(self, receive: Receive) -> Receive:
        """``receive`` that stops a streamed body at the limit (413)."""
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise HTTPException(413, f"request body larger than {self.max_body} bytes")
            return message

        return bounded

    def _watch(self, source: str, send: Send) -> Send:
        """``send`` that counts a route's own 401 (a wrong join token, a failed
        console login) as a failed authentication of ``source``, and hands
        large bodies to the server in pieces (:data:`CHUNK`)."""

        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.lockout.failed(source, self.clock())
            await send_in_chunks(send, message)

        return watched


async def send_in_chunks(send: Send, message: Message) -> None:
    """Large bodies go to the server in pieces of ``CHUNK``, each after the
    last has drained (uvicorn's flow control), so a slow reader's connection
    queues one piece, not a copy of the whole answer. (Under the event
    loop's TLS the pieces also mattered for what stayed behind: its buffers
    kept the largest write for the connection's life, 4.3 MB after one 4 MB
    netmap. The controller's own TLS connections keep nothing.)"""
    body = message.get("body", b"") if message["type"] == "http.response.body" else b""
    if len(body) <= CHUNK:
        await send(message)
        return
    more = message.get("more_body", False)
    view = memoryview(body)
    for start in range(0, len(body), CHUNK):
        end = start + CHUNK
        await send(
            {
                "type": "http.response.body",
                "body": bytes(view[start:end]),
                "more_body": more or end < len(body),
            }
        )

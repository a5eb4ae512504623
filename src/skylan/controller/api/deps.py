"""Request dependencies: a database session and the caller's scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from skylan.controller import logins
from skylan.controller.api.errors import ApiError
from skylan.controller.auth import Scope, scope_of


def db_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as db:
        yield db


Db = Annotated[Session, Depends(db_session)]


def bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    kind, _, secret = header.partition(" ")
    if kind.lower() != "bearer" or not secret:
        raise ApiError(401, "missing API token: send 'Authorization: Bearer <token>'")
    return secret.strip()


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def reader(request: Request, db: Db) -> Scope:
    """An API token in the Authorization header, or a console login cookie.

    With the cookie, a change must also carry the session's CSRF token in the
    ``X-CSRF-Token`` header: another site can make a browser send the cookie,
    but cannot read the token.
    """
    cookie = request.cookies.get(logins.COOKIE)
    if "authorization" not in request.headers and cookie:
        login = logins.lookup(db, cookie)
        if login is None:
            raise ApiError(401, "the console session has ended; log in again")
        if request.method not in SAFE_METHODS and not logins.csrf_ok(
            login, request.headers.get(logins.CSRF_HEADER)
        ):
            raise ApiError(403, "missing or wrong X-CSRF-Token for this console session")
        return login.scope
    scope = scope_of(db, bearer(request))
    if scope is None:
        raise ApiError(401, "invalid or revoked API token")
    return scope


def admin(scope: Annotated[Scope, Depends(reader)]) -> Scope:
    if scope is not Scope.ADMIN:
        raise ApiError(403, "this action needs an admin token; the token used is read-only")
    return scope


ReadAccess = Depends(reader)
AdminAccess = Depends(admin)

"""Request dependencies: a database session and the caller's scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

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


def reader(request: Request, db: Db) -> Scope:
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

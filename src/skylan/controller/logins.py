"""Browser logins for the web console.

A person logs in with an API token; the browser then holds only a random
session secret in an HttpOnly cookie (the row stores its hash), plus a CSRF
token the pages echo in a header or form field on every change. The REST API
accepts the same cookie, so the console's pages and charts use the very API
the CLI uses, with the same scope as the token that logged in.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from skylan.controller.auth import Scope, hash_secret
from skylan.controller.storage.tables import ApiTokenRow, ConsoleSessionRow, as_utc

COOKIE = "skylan_session"
CSRF_HEADER = "x-csrf-token"
LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class Login:
    scope: Scope
    token_name: str
    csrf: str


def create(db: Session, api_secret: str) -> tuple[str, Login] | None:
    """Start a session for the holder of ``api_secret``; None if it is not valid."""
    token = db.scalar(select(ApiTokenRow).where(ApiTokenRow.secret_hash == hash_secret(api_secret)))
    if token is None or token.revoked:
        return None
    now = datetime.now(UTC)
    db.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at < now))
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    db.add(
        ConsoleSessionRow(
            id_hash=hash_secret(secret),
            api_token_id=token.id,
            csrf=csrf,
            created_at=now,
            expires_at=now + LIFETIME,
        )
    )
    db.commit()
    return secret, Login(Scope(token.scope), token.name, csrf)


def lookup(db: Session, secret: str) -> Login | None:
    """The live session for a cookie value: not expired, its token not revoked."""
    row = db.execute(
        select(ConsoleSessionRow, ApiTokenRow)
        .join(ApiTokenRow, ConsoleSessionRow.api_token_id == ApiTokenRow.id)
        .where(ConsoleSessionRow.id_hash == hash_secret(secret))
    ).first()
    if row is None:
        return None
    session, token = row
    if token.revoked or as_utc(session.expires_at) < datetime.now(UTC):
        return None
    return Login(Scope(token.scope), token.name, session.csrf)


def end(db: Session, secret: str) -> None:
    db.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.id_hash == hash_secret(secret)))
    db.commit()


def csrf_ok(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected, presented)

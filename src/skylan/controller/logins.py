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
    token_id: str = ""
    expires: float = 0.0  # unix time


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
    expires = (now + LIFETIME).timestamp()
    return secret, Login(Scope(token.scope), token.name, csrf, token.id, expires)


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
    expires = as_utc(session.expires_at)
    if token.revoked or expires < datetime.now(UTC):
        return None
    return Login(Scope(token.scope), token.name, session.csrf, token.id, expires.timestamp())


def end(db: Session, secret: str) -> None:
    db.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.id_hash == hash_secret(secret)))
    db.commit()


def csrf_ok(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected, presented)


class LoginCache:
    """Console sessions seen recently, so a page's dozen API calls do not each
    read the database. An entry lives ``ttl`` seconds (a logout on another
    replica takes that long to be noticed there); a revoked API token ends its
    sessions at once, because the gate checks the token in the state too."""

    def __init__(self, ttl: float = 30.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[str, tuple[float, Login]] = {}

    def get(self, secret: str, now: float) -> Login | None:
        entry = self._entries.get(hash_secret(secret))
        if entry is None or now - entry[0] > self.ttl or now > entry[1].expires:
            return None
        return entry[1]

    def put(self, secret: str, login: Login, now: float) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()  # rare: a cache, not the truth
        self._entries[hash_secret(secret)] = (now, login)

    def forget(self, secret: str) -> None:
        self._entries.pop(hash_secret(secret), None)

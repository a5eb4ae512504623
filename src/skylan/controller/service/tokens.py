"""Join tokens that enroll agents, and API tokens for people and scripts.

The secret of either is returned once, at creation, and only its SHA-256 is
stored. A join token's string carries the controller certificate's fingerprint
(``sky1.<fingerprint>.<secret>``), which the agent pins.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from skylan.controller.auth import Scope, create_api_token, hash_secret
from skylan.controller.changes import record_change
from skylan.controller.service import lookup
from skylan.controller.service.errors import NotFound
from skylan.controller.state.store import State
from skylan.controller.storage.tables import ApiTokenRow, JoinTokenRow, as_utc
from skylan.model.api import TokenOut
from skylan.model.jointoken import JoinToken
from skylan.model.requests import ApiTokenCreate, TokenCreate


def token_state(row: JoinTokenRow, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    if row.revoked:
        return "revoked"
    if row.expires_at is not None and as_utc(row.expires_at) <= now:
        return "expired"
    if row.max_uses is not None and row.uses >= row.max_uses:
        return "used up"
    return "active"


def token_out(row: JoinTokenRow) -> TokenOut:
    return TokenOut(
        id=row.id,
        description=row.description,
        max_uses=row.max_uses,
        uses=row.uses,
        expires_at=row.expires_at,
        networks=list(row.network_ids),
        needs_approval=row.needs_approval,
        revoked=row.revoked,
        created_at=row.created_at,
        state=token_state(row),
    )


def create_join_token(
    db: Session, state: State, body: TokenCreate, fingerprint: str
) -> tuple[TokenOut, JoinToken]:
    network_ids = [lookup.network(state, n).id for n in dict.fromkeys(body.networks)]
    token = JoinToken.new(fingerprint)
    expires = (
        datetime.now(UTC) + timedelta(seconds=body.expires_in_s)
        if body.expires_in_s is not None
        else None
    )
    row = JoinTokenRow(
        description=body.description,
        secret_hash=hash_secret(token.secret),
        max_uses=body.max_uses,
        expires_at=expires,
        network_ids=network_ids,
        needs_approval=body.needs_approval,
    )
    db.add(row)
    db.flush()
    return token_out(row), token


def join_tokens(db: Session) -> list[TokenOut]:
    return [
        token_out(r) for r in db.scalars(select(JoinTokenRow).order_by(JoinTokenRow.created_at))
    ]


def join_token(db: Session, token_id: str) -> TokenOut:
    row = db.get(JoinTokenRow, token_id)
    if row is None:
        raise NotFound(f"join token {token_id!r} not found")
    return token_out(row)


def revoke_join_token(db: Session, token_id: str) -> None:
    """The token enrolls no more nodes (those it enrolled stay)."""
    row = db.get(JoinTokenRow, token_id)
    if row is None:
        raise NotFound(f"join token {token_id!r} not found")
    row.revoked = True


def create_api(db: Session, body: ApiTokenCreate) -> tuple[str, str]:
    """A new API token: its id and its secret (shown this once)."""
    row, secret = create_api_token(db, body.name, Scope(body.scope), commit=False)
    return row.id, secret


def revoke_api(db: Session, state: State, token_id: str) -> None:
    """Refused everywhere once the change is applied, consoles it logged in included."""
    row = db.get(ApiTokenRow, token_id)
    if row is None:
        raise NotFound(f"API token {token_id!r} not found")
    row.revoked = True
    record_change(db, api_tokens=[row.id])

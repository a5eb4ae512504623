"""``/api/v1/tokens``: join tokens that enroll agents.

The secret is returned once, at creation, inside the token string the user
copies (``sky1.<controller cert fingerprint>.<secret>``); only its hash is
stored.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from skylan.controller.api import lookup
from skylan.controller.api.deps import AdminAccess, Db, ReadAccess
from skylan.controller.api.errors import not_found
from skylan.controller.auth import hash_secret
from skylan.controller.storage.tables import JoinTokenRow, as_utc
from skylan.model.api import TokenCreated, TokenOut
from skylan.model.jointoken import JoinToken

router = APIRouter(prefix="/tokens", tags=["join tokens"])


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field("", max_length=500)
    max_uses: int | None = Field(1, ge=1, le=1_000_000, description="null: unlimited")
    expires_in_s: int | None = Field(
        86_400, ge=60, le=10 * 365 * 86_400, description="null: never expires"
    )
    networks: list[str] = Field(default_factory=list, description="ids or names to auto-join")
    needs_approval: bool = False


def token_state(row: JoinTokenRow, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    if row.revoked:
        return "revoked"
    if row.expires_at is not None and as_utc(row.expires_at) <= now:
        return "expired"
    if row.max_uses is not None and row.uses >= row.max_uses:
        return "used up"
    return "active"


def _out(row: JoinTokenRow) -> TokenOut:
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


@router.post("", status_code=201, dependencies=[AdminAccess])
def create_token(body: TokenCreate, db: Db, request: Request) -> TokenCreated:
    network_ids = [lookup.network(db, n).id for n in dict.fromkeys(body.networks)]
    token = JoinToken.new(request.app.state.cert_fingerprint)
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
    db.commit()
    url = request.app.state.public_url or str(request.base_url).rstrip("/")
    return TokenCreated(
        **_out(row).model_dump(),
        token=str(token),
        join_command=f"skylan agent join {url} {token}",
    )


@router.get("", dependencies=[ReadAccess])
def list_tokens(db: Db) -> list[TokenOut]:
    return [_out(r) for r in db.scalars(select(JoinTokenRow).order_by(JoinTokenRow.created_at))]


@router.get("/{token_id}", dependencies=[ReadAccess])
def get_token(token_id: str, db: Db) -> TokenOut:
    row = db.get(JoinTokenRow, token_id)
    if row is None:
        raise not_found("join token", token_id)
    return _out(row)


@router.delete("/{token_id}", status_code=204, dependencies=[AdminAccess])
def revoke_token(token_id: str, db: Db) -> Response:
    """Revoke: the token can enroll no more nodes (enrolled nodes stay)."""
    row = db.get(JoinTokenRow, token_id)
    if row is None:
        raise not_found("join token", token_id)
    row.revoked = True
    db.commit()
    return Response(status_code=204)

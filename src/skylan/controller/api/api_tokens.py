"""``/api/v1/api-tokens``: tokens for people and scripts (admin or read-only)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import select

from skylan.controller.api import validators
from skylan.controller.api.deps import AdminAccess, Db
from skylan.controller.api.errors import not_found
from skylan.controller.auth import Scope, create_api_token
from skylan.controller.storage.tables import ApiTokenRow
from skylan.model.api import ApiTokenCreated, ApiTokenOut

router = APIRouter(prefix="/api-tokens", tags=["api tokens"], dependencies=[AdminAccess])


class ApiTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    scope: Scope = Scope.READ

    _name = field_validator("name")(validators.name)


def _out(r: ApiTokenRow) -> ApiTokenOut:
    return ApiTokenOut(
        id=r.id, name=r.name, scope=r.scope, created_at=r.created_at, revoked=r.revoked
    )


@router.get("")
def list_api_tokens(db: Db) -> list[ApiTokenOut]:
    return [_out(r) for r in db.scalars(select(ApiTokenRow).order_by(ApiTokenRow.created_at))]


@router.post("", status_code=201)
def create(body: ApiTokenCreate, db: Db) -> ApiTokenCreated:
    row, secret = create_api_token(db, body.name, body.scope)
    return ApiTokenCreated(**_out(row).model_dump(), secret=secret)


@router.delete("/{token_id}", status_code=204)
def revoke(token_id: str, db: Db) -> Response:
    row = db.get(ApiTokenRow, token_id)
    if row is None:
        raise not_found("API token", token_id)
    row.revoked = True
    db.commit()
    return Response(status_code=204)

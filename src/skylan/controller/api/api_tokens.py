"""``/api/v1/api-tokens``: tokens for people and scripts (admin or read-only)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from skylan.controller.api.deps import AdminAccess, Ctl
from skylan.controller.api.views import api_token_out
from skylan.controller.service import tokens
from skylan.model.api import ApiTokenCreated, ApiTokenOut
from skylan.model.requests import ApiTokenCreate

router = APIRouter(prefix="/api-tokens", tags=["api tokens"], dependencies=[AdminAccess])


@router.get("")
async def list_api_tokens(ctl: Ctl) -> list[ApiTokenOut]:
    ids = sorted(ctl.memory.api_token_ids.values(), key=lambda t: t.created_at)
    return [api_token_out(ctl.memory, t.id) for t in ids]


@router.post("", status_code=201)
async def create(body: ApiTokenCreate, ctl: Ctl) -> ApiTokenCreated:
    token_id, secret = await ctl.write(lambda db: tokens.create_api(db, body))
    return ApiTokenCreated(**api_token_out(ctl.memory, token_id).model_dump(), secret=secret)


@router.delete("/{token_id}", status_code=204)
async def revoke(token_id: str, ctl: Ctl) -> Response:
    await ctl.write(lambda db: tokens.revoke_api(db, ctl.memory, token_id))
    return Response(status_code=204)

"""``/api/v1/tokens``: join tokens that enroll agents (see
:mod:`skylan.controller.service.tokens`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from skylan.controller.api.deps import AdminAccess, Ctl, ReadAccess
from skylan.controller.service import tokens
from skylan.model.api import TokenCreated, TokenOut
from skylan.model.requests import TokenCreate

router = APIRouter(prefix="/tokens", tags=["join tokens"])


@router.post("", status_code=201, dependencies=[AdminAccess])
async def create_token(body: TokenCreate, ctl: Ctl, request: Request) -> TokenCreated:
    out, token = await ctl.write(
        lambda db: tokens.create_join_token(db, ctl.memory, body, ctl.fingerprint)
    )
    url = ctl.settings.public_url or str(request.base_url).rstrip("/")
    return TokenCreated(
        **out.model_dump(), token=str(token), join_command=f"skylan agent join {url} {token}"
    )


@router.get("", dependencies=[ReadAccess])
async def list_tokens(ctl: Ctl) -> list[TokenOut]:
    return await ctl.read(tokens.join_tokens)


@router.get("/{token_id}", dependencies=[ReadAccess])
async def get_token(token_id: str, ctl: Ctl) -> TokenOut:
    return await ctl.read(lambda db: tokens.join_token(db, token_id))


@router.delete("/{token_id}", status_code=204, dependencies=[AdminAccess])
async def revoke_token(token_id: str, ctl: Ctl) -> Response:
    """Revoke: the token can enroll no more nodes (enrolled nodes stay)."""
    await ctl.write(lambda db: tokens.revoke_join_token(db, token_id))
    return Response(status_code=204)

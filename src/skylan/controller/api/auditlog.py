"""``/api/v1/audit``: the audit log, read-only (it is append-only through the
API: nothing here or elsewhere changes or deletes an event; old ones are
pruned after the controller's ``--audit-days``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from skylan.controller.api.deps import Ctl, ReadAccess
from skylan.controller.service import auditlog
from skylan.model.api import AuditPage

router = APIRouter(prefix="/audit", tags=["audit log"], dependencies=[ReadAccess])


@router.get("")
async def read_audit(
    ctl: Ctl,
    limit: Annotated[int, Query(ge=1, le=auditlog.MAX_PAGE)] = 100,
    before: Annotated[int | None, Query(ge=1, description="events older than this id")] = None,
    action: Annotated[
        str | None, Query(max_length=64, description="exact, or a prefix like `network.`")
    ] = None,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    target: Annotated[str | None, Query(max_length=128, description="its id or name")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditPage:
    """Who changed what, when, from where, before and after; newest first."""
    return await ctl.read(
        lambda db: auditlog.page(
            db,
            limit=limit,
            before=before,
            action=action,
            actor=actor,
            target=target,
            since=since,
            until=until,
        )
    )

"""``/api/v1/audit``: the audit log, read-only (it is append-only through the
API: nothing here or elsewhere changes or deletes an event; old ones are
pruned after the controller's ``--audit-days``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from skylan.controller.api.deps import Ctl, ReadAccess
from skylan.controller.api.errors import ApiError
from skylan.controller.service import auditlog
from skylan.model.api import AuditPage

ISO_TIME = r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?(Z|[+-]\d{2}:?\d{2})?$"
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
    since: Annotated[str | None, Query(pattern=ISO_TIME, description="ISO 8601 time")] = None,
    until: Annotated[str | None, Query(pattern=ISO_TIME, description="ISO 8601 time")] = None,
) -> AuditPage:
    """Who changed what, when, from where, before and after; newest first."""
    since_at, until_at = _time("since", since), _time("until", until)
    return await ctl.read(
        lambda db: auditlog.page(
            db,
            limit=limit,
            before=before,
            action=action,
            actor=actor,
            target=target,
            since=since_at,
            until=until_at,
        )
    )


def _time(name: str, text: str | None) -> datetime | None:
    """An ISO 8601 time (UTC unless it says otherwise); 422 if it is none."""
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(422, f"{name}: {text!r} is not an ISO 8601 time") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)

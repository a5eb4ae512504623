"""Reading the audit log (newest first, filtered, a page at a time) and
keeping it only as long as configured. Nothing else touches its rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from skylan.controller.storage.tables import AuditRow
from skylan.model.api import AuditEvent, AuditPage

MAX_PAGE = 500


def page(
    db: Session,
    *,
    limit: int = 100,
    before: int | None = None,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditPage:
    """``action``: exact, or a prefix ending in a dot (``network.``);
    ``target``: its id or its name."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(min(limit, MAX_PAGE) + 1)
    if before is not None:
        query = query.where(AuditRow.id < before)
    if action:
        query = query.where(
            AuditRow.action.startswith(action, autoescape=True)
            if action.endswith(".")
            else AuditRow.action == action
        )
    if actor:
        query = query.where(AuditRow.actor == actor)
    if target:
        query = query.where((AuditRow.target_id == target) | (AuditRow.target == target))
    if since is not None:
        query = query.where(AuditRow.at >= since)
    if until is not None:
        query = query.where(AuditRow.at < until)
    rows = list(db.scalars(query))
    more = len(rows) > min(limit, MAX_PAGE)
    rows = rows[: min(limit, MAX_PAGE)]
    events = [
        AuditEvent(
            id=r.id,
            at=r.at.replace(tzinfo=UTC) if r.at.tzinfo is None else r.at,
            actor_kind=r.actor_kind,
            actor=r.actor,
            source=r.source,
            action=r.action,
            target_id=r.target_id,
            target=r.target,
            before=r.before,
            after=r.after,
            request=r.request,
        )
        for r in rows
    ]
    return AuditPage(events=events, next_before=rows[-1].id if more and rows else None)


def prune(db: Session, keep_days: float) -> int:
    """Forget events older than ``keep_days``; how many went."""
    cutoff = datetime.now(UTC) - timedelta(days=keep_days)
    result = db.execute(delete(AuditRow).where(AuditRow.at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

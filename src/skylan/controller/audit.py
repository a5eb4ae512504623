"""The audit log: who changed what, when, from where, and what it looked like
before and after.

Who is known at the gate (an API token, a console login, a node, a relay) and
travels with the request in a context variable into the writer, which hands
it to the transaction that runs that request's write (and flushes each
request's write before the next of its batch). There, every row an
administrator's write adds, changes or deletes is recorded by a flush hook,
with the columns that changed, before and after: nothing needs remembering
at each place that writes, and nothing an administrator does escapes it.
What nodes and relays send about themselves (addresses, counters) is their
own business and not recorded row by row; their enrolment is, explicitly.

Secrets never enter it: columns that hold one (hashes of tokens and
credentials) are left out by name, and secrets themselves are never stored.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction

from skylan.controller.storage.tables import (
    ApiTokenRow,
    AuditRow,
    Base,
    CloakRuleRow,
    DnsRecordRow,
    JoinTokenRow,
    NetworkRow,
    NodeRow,
    PortRow,
    RelayRow,
    RouteRow,
    SecurityRuleRow,
)

ACTOR = "skylan_audit_actor"  # Session.info: whose write the session runs now
PEOPLE = frozenset({"token", "console"})  # whose row changes are recorded

# what each kind of row is called in the log, and which of its columns never
# appear (secrets' hashes) or are not a person's change (liveness, counters)
_TABLES: dict[type[Base], str] = {
    NetworkRow: "network",
    PortRow: "port",
    RouteRow: "route",
    CloakRuleRow: "cloak_rule",
    SecurityRuleRow: "security_rule",
    DnsRecordRow: "dns_record",
    JoinTokenRow: "join_token",
    NodeRow: "node",
    ApiTokenRow: "api_token",
    RelayRow: "relay",
}
_LEFT_OUT = frozenset(
    {
        "secret_hash",
        "credential_hash",
        "token_hash",
        "enroll_request_hash",
        "last_seen",
        "agent_started_at",
        "details_at",
        "interfaces",
        "peer_status",
        "seen_ips",
        "stats_seq",
        "forwarded_bytes",
        "forwarded_packets",
        "dropped",
        "nodes",
        "uses",
    }
)


@dataclass(frozen=True)
class Actor:
    kind: str  # token, console, node, relay, join-token
    name: str
    source: str = ""
    request: str = ""


current: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("audit_actor", default=None)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _columns(row: Base) -> dict[str, Any]:
    mapper = inspect(row).mapper
    return {
        c.key: _plain(getattr(row, c.key)) for c in mapper.column_attrs if c.key not in _LEFT_OUT
    }


def _changed(row: Base) -> tuple[dict[str, Any], dict[str, Any]]:
    state = inspect(row)
    before, after = {}, {}
    for attr in state.mapper.column_attrs:
        if attr.key in _LEFT_OUT:
            continue
        history = state.attrs[attr.key].history
        if history.has_changes():
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            if old != new:
                before[attr.key], after[attr.key] = _plain(old), _plain(new)
    return before, after


def _label(row: Base) -> tuple[str, str]:
    ident = getattr(row, "id", "")
    name = getattr(row, "name", None) or getattr(row, "prefix", None) or ""
    return str(ident), str(name)


def _entry(actor: Actor, action: str, row: Base, before: Any, after: Any) -> AuditRow:
    ident, name = _label(row)
    return _row(actor, action, ident, name, before=before, after=after)


def _row(
    actor: Actor, action: str, target_id: str, target: str, *, before: Any, after: Any
) -> AuditRow:
    return AuditRow(
        actor_kind=actor.kind,
        actor=actor.name[:128],
        source=actor.source[:64],
        action=action,
        target_id=target_id[:64],
        target=target[:128],
        before=before,
        after=after,
        request=actor.request[:200],
    )


@event.listens_for(Session, "after_flush")
def _record(session: Session, flush_context: UOWTransaction) -> None:
    """After the flush (new rows have their ids) but with the session's lists
    and attribute histories still as before it; the entries go in with the
    next flush, at the latest the commit's."""
    actor = session.info.get(ACTOR)
    if not isinstance(actor, Actor) or actor.kind not in PEOPLE:
        return
    entries = []
    for row in session.new:
        if (kind := _TABLES.get(type(row))) is not None:
            entries.append(_entry(actor, f"{kind}.create", row, None, _columns(row)))
    for row in session.dirty:
        if (kind := _TABLES.get(type(row))) is not None and session.is_modified(row):
            before, after = _changed(row)
            if after:
                entries.append(_entry(actor, f"{kind}.update", row, before, after))
    for row in session.deleted:
        if (kind := _TABLES.get(type(row))) is not None:
            entries.append(_entry(actor, f"{kind}.delete", row, _columns(row), None))
    session.add_all(entries)


def record(
    db: Session,
    actor: Actor,
    action: str,
    *,
    target_id: str = "",
    target: str = "",
    after: dict[str, Any] | None = None,
) -> None:
    """An event no row change tells by itself (a node's enrolment)."""
    shown = None if after is None else _plain(after)
    db.add(_row(actor, action, target_id, target, before=None, after=shown))

"""``skylan audit``: who changed what, when, from where."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from skylan.cli.context import client
from skylan.cli.output import JsonFlag, emit
from skylan.model.api import AuditEvent

AGO = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    found = AGO.match(text)
    if found:
        return datetime.now(UTC) - timedelta(**{UNITS[found.group(2)]: int(found.group(1))})
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        message = f"--since {text!r}: expected e.g. 30m, 2h, 7d or an ISO time"
        raise typer.BadParameter(message) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _changes(e: AuditEvent) -> str:
    """What changed, in a line: `mtu 1420 -> 1300`, or the new object's fields."""
    if e.before and e.after:
        return ", ".join(
            f"{k} {_short(e.before.get(k))} -> {_short(v)}" for k, v in e.after.items()
        )
    shown = e.after or e.before or {}
    keys = [k for k in ("name", "cidr4", "prefix", "ipv4", "status", "scope") if k in shown]
    return ", ".join(f"{k}={_short(shown[k])}" for k in keys)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


COLUMNS = [
    ("id", lambda e: e.id),
    ("when (UTC)", lambda e: e.at.strftime("%Y-%m-%d %H:%M:%S")),
    ("who", lambda e: f"{e.actor} ({e.actor_kind})"),
    ("from", lambda e: e.source or "-"),
    ("action", lambda e: e.action),
    ("target", lambda e: e.target or e.target_id[:8]),
    ("changes", _changes),
]


def audit(
    action: Annotated[
        str | None, typer.Option(help="An action (node.update) or a prefix (network.)")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="An API token's name")] = None,
    target: Annotated[str | None, typer.Option(help="The target's id or name")] = None,
    since: Annotated[str | None, typer.Option(help="30m, 2h, 7d or an ISO time")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    before: Annotated[int | None, typer.Option(help="Events older than this id")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The audit log, newest first: who changed what, when, from where."""
    with client() as sky:
        page = sky.audit(
            limit=limit,
            before=before,
            action=action,
            actor=actor,
            target=target,
            since=_since(since),
        )
    if as_json:
        emit(page, True)
        return
    emit(page.events, False, COLUMNS)
    if page.next_before is not None:
        typer.echo(f"(older: --before {page.next_before})")

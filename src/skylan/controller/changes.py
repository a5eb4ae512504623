"""Recording changes: every write that alters the state records one.

The change row is written in the same transaction as the change itself, so a
change is visible to the feed exactly when its data is. On PostgreSQL a NOTIFY
in that transaction wakes the other controller replicas at commit, and an
advisory lock held to commit makes change ids increase in commit order (the
feed reads "ids above the last one seen", which needs exactly that).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from skylan.controller.storage.tables import ChangeRow

NOTIFY_CHANNEL = "skylan_changes"
CHANGE_LOCK = 0x736B796C  # "skyl": the advisory lock that orders change ids
LOCKED = "skylan_change_lock"  # Session.info: the transaction holding the change lock
CHANGE_ID = "skylan_change"  # Session.info: the newest change this transaction recorded


def take_change_lock(db: Session) -> None:
    """Before a transaction's first statement, outside any savepoint: held to
    commit, and the changes it records then need neither the lock nor the
    NOTIFY again (two round trips each). PostgreSQL only: SQLite serialises
    every write anyway."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHANGE_LOCK})
        db.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
        db.info[LOCKED] = db.get_transaction()


def record_change(
    db: Session,
    *,
    networks: Iterable[str] = (),
    nodes: Iterable[str] = (),
    api_tokens: Iterable[str] = (),
    relays: Iterable[str] = (),
) -> int:
    """Record what this transaction changes; returns the change's id."""
    locked = db.info.get(LOCKED)  # by take_change_lock, in this very transaction?
    held = locked is not None and locked is db.get_transaction()
    if not held and db.get_bind().dialect.name == "postgresql":
        # no autoflush: constraint errors must surface at the caller's commit
        with db.no_autoflush:
            # Serialise change ids with commit order: without this a change
            # could commit after a higher id was already read and be skipped.
            db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHANGE_LOCK})
            db.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})
    db.flush()  # what the ORM holds goes first: the change comes after its data
    change_id: int = db.execute(
        insert(ChangeRow)
        .values(
            network_ids=sorted(set(networks)),
            node_ids=sorted(set(nodes)),
            api_token_ids=sorted(set(api_tokens)),
            relay_ids=sorted(set(relays)),
        )
        .returning(ChangeRow.id)
    ).scalar_one()
    db.info["skylan_changed"] = True  # the feed kicks itself after commit
    db.info[CHANGE_ID] = max(db.info.get(CHANGE_ID, 0), change_id)
    return change_id

"""Recording changes: every write that alters some node's netmap records one.

The change row is written in the same transaction as the change itself, so a
change is visible to the netmap feed exactly when its data is. On PostgreSQL
a NOTIFY in that transaction wakes the other controller replicas at commit.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from skylan.controller.storage.tables import ChangeRow

NOTIFY_CHANNEL = "skylan_changes"


def record_change(db: Session, *, networks: Iterable[str] = (), nodes: Iterable[str] = ()) -> None:
    db.add(ChangeRow(network_ids=sorted(set(networks)), node_ids=sorted(set(nodes))))
    db.info["skylan_changed"] = True  # the feed kicks itself after commit
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})

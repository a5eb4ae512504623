"""Work a transaction does last, just before it commits.

Some bookkeeping is cheaper once per transaction than once per write: a
batch of enrolments with one join token counts the token's uses with one
statement instead of one each. A write registers a hook under a key (a
second registration under the same key is the same hook), and the hooks run
when the outermost transaction commits, after every write of the batch. A
hook reads what the transaction holds rather than trusting what the writes
noted: a write rolled back (in its savepoint, or with a whole transaction
before the session went on) registered the hook all the same.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

BEFORE_COMMIT = "skylan_before_commit"  # Session.info: key -> hook


def at_commit(db: Session, key: str, hook: Callable[[Session], None]) -> None:
    db.info.setdefault(BEFORE_COMMIT, {}).setdefault(key, hook)


@event.listens_for(Session, "before_commit")
def _run_hooks(db: Session) -> None:
    hooks: dict[str, Callable[[Session], None]] | None = db.info.pop(BEFORE_COMMIT, None)
    for hook in (hooks or {}).values():
        hook(db)

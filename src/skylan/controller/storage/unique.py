"""Insert a row unless a unique constraint says its value is taken.

The alternative, a savepoint around a plain INSERT that may fail, costs two
more round trips (SAVEPOINT, RELEASE) on every insert that succeeds; an
enrolment makes two such inserts (its node, its port) inside the group
commit's own savepoint, so this is a third of its statements.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from skylan.controller.storage.tables import Base


def insert_if_free(db: Session, table: type[Base], row: dict[str, Any]) -> bool:
    """True if inserted; False if a unique constraint already holds one of its
    values (the caller finds out which, and tries another or refuses)."""
    dialect = db.get_bind().dialect.name
    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # the Core table, not the ORM entity: an ORM insert reports the rows it
    # was given, not the rows the database took
    core: Table = table.__table__  # type: ignore[assignment]
    # RETURNING says what the database took (rowcount is -1 with psycopg here)
    statement = make(core).values(**row).on_conflict_do_nothing()
    return db.execute(statement.returning(*core.primary_key.columns)).first() is not None

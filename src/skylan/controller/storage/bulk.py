"""Batch writes at the driver's own pace: one prepared statement, executed for
thousands of rows by the database driver, without SQLAlchemy's per-row work.

The heartbeat and statistics batches write tens of thousands of plain rows a
minute at 10,000 agents; through the ORM (or even SQLAlchemy Core's executemany)
each row cost tens of microseconds of Python, seconds a batch, measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

STATS_COLUMNS = (
    "node_id",
    "peer_id",
    "minute",
    "rx_bytes",
    "tx_bytes",
    "rx_packets",
    "tx_packets",
    "drops",
    "rtt_ms",
)
SUMMED = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "drops")


def _marks(db: Session, count: int) -> str:
    mark = "?" if db.get_bind().dialect.paramstyle == "qmark" else "%s"
    return ", ".join([mark] * count)


def upsert_stats(db: Session, rows: Sequence[tuple[Any, ...]]) -> None:
    """Add ``rows`` (in :data:`STATS_COLUMNS` order) to their minute buckets."""
    if not rows:
        return
    summed = ", ".join(f"{c} = stats.{c} + excluded.{c}" for c in SUMMED)
    sql = (
        f"INSERT INTO stats ({', '.join(STATS_COLUMNS)}) VALUES ({_marks(db, len(STATS_COLUMNS))}) "
        f"ON CONFLICT (node_id, peer_id, minute) DO UPDATE SET {summed}, "
        "rtt_ms = COALESCE(excluded.rtt_ms, stats.rtt_ms)"
    )
    db.connection().exec_driver_sql(sql, list(rows))


def update_by_id(
    db: Session,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    json: Sequence[str] = (),
) -> None:
    """``UPDATE table SET columns... WHERE id = ?`` for each row (values in
    ``columns`` order, then the id). ``json``: columns whose values are JSON
    text (PostgreSQL's json columns take them cast; SQLite stores the text)."""
    if not rows:
        return
    postgres = db.get_bind().dialect.name == "postgresql"
    mark = "?" if db.get_bind().dialect.paramstyle == "qmark" else "%s"
    assignments = ", ".join(
        f"{c} = CAST({mark} AS json)" if postgres and c in json else f"{c} = {mark}"
        for c in columns
    )
    db.connection().exec_driver_sql(
        f"UPDATE {table} SET {assignments} WHERE id = {mark}", list(rows)
    )

"""Traffic statistics: agents report counter deltas, the controller sums them
into one-minute buckets per node and per peer and keeps 24 hours of them."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from skylan.controller.storage.tables import StatsRow
from skylan.model.api import Bucket

RETENTION_MINUTES = 24 * 60
MAX_RTT_MS = 1e7  # bounds on what a node may report, so none can overflow a column
MAX_UNIX_TIME = 2**35  # the year 3058
TOTAL = ""  # peer_id of a node's own totals
PORT_PREFIX = "port:"  # peer_id of a node's traffic in one network


def port_key(network_id: str) -> str:
    return PORT_PREFIX + network_id


MAX_COUNT = 2**63 - 1  # what a BIGINT column holds

Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]


class Counters(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rx_bytes: Count = 0
    tx_bytes: Count = 0
    rx_packets: Count = 0
    tx_packets: Count = 0
    drops: Count = 0


class PeerCounters(Counters):
    peer_id: str = Field(max_length=36)
    rtt_ms: float | None = Field(None, ge=0, le=MAX_RTT_MS)


class PortCounters(Counters):
    """A node's traffic in one network: what crossed its TAP for that network."""

    network_id: str = Field(max_length=36)


class StatsReport(BaseModel):
    """Deltas since the agent's previous report."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    at: float | None = Field(
        None, ge=0, le=MAX_UNIX_TIME, description="unix time of the sample; default: now"
    )
    total: Counters = Field(default_factory=Counters)
    peers: list[PeerCounters] = Field(default_factory=list, max_length=10_000)
    ports: list[PortCounters] = Field(default_factory=list, max_length=1_000)
    drops_by_reason: dict[Annotated[str, Field(max_length=64)], Count] = Field(
        default_factory=dict, max_length=100
    )


_FIELDS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "drops")


class CounterOverflow(ValueError):
    """A report would take a stored total past what it can hold: refused whole."""


def ingest(db: Session, node_id: str, report: StatsReport) -> None:
    now = time.time()
    minute = int((report.at if report.at is not None else now) // 60)
    if minute < now // 60 - RETENTION_MINUTES or minute > now // 60 + 1:
        return  # outside the window we keep: nothing to add it to
    rows: list[tuple[str, Counters, float | None]] = [(TOTAL, report.total, None)]
    rows += [(p.peer_id, p, p.rtt_ms) for p in report.peers]
    rows += [(port_key(p.network_id), p, None) for p in report.ports]
    for attempt in range(3):
        try:
            for peer_id, counters, rtt in rows:
                row = db.get(StatsRow, (node_id, peer_id, minute))
                for f in _FIELDS:
                    if row is not None and getattr(row, f) + getattr(counters, f) > MAX_COUNT:
                        db.rollback()
                        raise CounterOverflow(
                            f"{f}: the minute's total for {peer_id or 'the node'} would pass "
                            f"{MAX_COUNT}; counters are deltas since the last report"
                        )
                if row is None:
                    row = StatsRow(
                        node_id=node_id,
                        peer_id=peer_id,
                        minute=minute,
                        rtt_ms=rtt,
                        **dict.fromkeys(_FIELDS, 0),
                    )
                    db.add(row)
                for f in _FIELDS:
                    setattr(row, f, getattr(row, f) + getattr(counters, f))
                if rtt is not None:
                    row.rtt_ms = rtt
            db.execute(
                delete(StatsRow).where(
                    StatsRow.node_id == node_id, StatsRow.minute < minute - RETENTION_MINUTES
                )
            )
            db.commit()
            return
        except IntegrityError:  # a concurrent report created the bucket first
            db.rollback()
            if attempt == 2:
                raise


def history(db: Session, node_ids: list[str], minutes: int, peer_id: str = TOTAL) -> list[Bucket]:
    """Per-minute sums over ``node_ids`` for the last ``minutes`` minutes."""
    since = int(time.time() // 60) - minutes
    sums: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_FIELDS, 0))
    rtts: dict[int, float] = {}
    if not node_ids:
        return []
    for row in db.scalars(
        select(StatsRow).where(
            StatsRow.node_id.in_(node_ids), StatsRow.peer_id == peer_id, StatsRow.minute > since
        )
    ):
        bucket = sums[row.minute]
        for f in _FIELDS:
            bucket[f] += getattr(row, f)
        if row.rtt_ms is not None:
            rtts[row.minute] = row.rtt_ms
    return [Bucket(minute=m, rtt_ms=rtts.get(m), **sums[m]) for m in sorted(sums)]


def peer_summary(db: Session, node_id: str, minutes: int) -> dict[str, Bucket]:
    since = int(time.time() // 60) - minutes
    out: dict[str, Bucket] = {}
    for row in db.scalars(
        select(StatsRow)
        .where(
            StatsRow.node_id == node_id,
            StatsRow.peer_id != TOTAL,
            StatsRow.peer_id.not_like(PORT_PREFIX + "%"),
            StatsRow.minute > since,
        )
        .order_by(StatsRow.minute)
    ):
        prev = out.get(row.peer_id)
        values = {f: getattr(row, f) + (getattr(prev, f) if prev else 0) for f in _FIELDS}
        out[row.peer_id] = Bucket(
            minute=row.minute, rtt_ms=row.rtt_ms or (prev.rtt_ms if prev else None), **values
        )
    return out

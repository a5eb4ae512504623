"""Traffic statistics: agents report counter deltas; the controller sums them
into one-minute buckets per node and per network (the charts), and
five-minute buckets per peer (only ever summed over a window), and keeps 24
hours of them.

Reports are added up in memory and written once a minute in one transaction
(an upsert per bucket, a minute's reports of a node in one row). A report
numbered ``seq`` counts once:
each node's highest stored seq is written with its buckets, and a report at or
below the highest accepted one is ignored, so an agent can send a report again
until it is told it is stored (to another replica after a failover, say)
without counting it twice. A report may add at most ``MAX_REPORTED`` to any
counter and a node may send at most ``REPORTS_PER_MINUTE``, so no stored total
can overflow its column.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from skylan.controller.service.batches import BatchLoop
from skylan.controller.service.errors import ServiceError
from skylan.controller.service.statrows import PendingRows
from skylan.controller.state import loader
from skylan.controller.state.store import State
from skylan.controller.storage import bulk
from skylan.controller.storage.tables import NodeRow, StatsRow
from skylan.controller.writes import Writer
from skylan.model.agentapi import REPORTS_PER_MINUTE, Counters, StatsReport
from skylan.model.api import Bucket

log = logging.getLogger("skylan.controller")

RETENTION_MINUTES = 24 * 60
TOTAL = ""  # peer_id of a node's own totals
PORT_PREFIX = "port:"  # peer_id of a node's traffic in one network
FIELDS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "drops")


def port_key(network_id: str) -> str:
    return PORT_PREFIX + network_id


class TooManyReports(ServiceError):
    status = 429


PEER_MINUTES = 5  # a peer's traffic is kept in buckets this long
ROWS_AT_ONCE = 5000  # rows prepared between two turns of the event loop


@dataclass(slots=True)
class NodeReports:
    """What the book knows of one node's reports (one record a node: these
    were four dictionaries)."""

    accepted: int = 0  # the highest seq taken in (stored or pending)
    stored: int = 0  # the highest seq stored
    minute: int = 0  # the minute ``reports`` counts
    reports: int = 0
    rx: int = 0  # bytes reported since this process started
    tx: int = 0


class StatsBook:
    def __init__(
        self,
        state: State,
        writer: Writer,
        sessions: sessionmaker[Session],
        *,
        flush_interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.writer = writer
        self.sessions = sessions
        self.clock = clock
        self._pending = PendingRows()
        self._pending_seq: dict[str, int] = {}
        self._nodes: dict[str, NodeReports] = {}
        self._loop = BatchLoop("statistics", flush_interval, self._batch, self.flush)
        self.last_flush_s = 0.0  # how long the last batch took, end to end
        self.last_flush_rows = 0
        self._flushing = asyncio.Lock()
        self._purged = 0.0
        # this process's identity: an agent whose reports went to another (a
        # replica, or this controller before a restart) sends the unstored ones again
        self.epoch = secrets.token_hex(4)

    async def start(self) -> None:
        def read() -> dict[str, int]:
            with self.sessions() as db:
                return loader.stats_seqs(db)

        for node_id, seq in (await asyncio.to_thread(read)).items():
            self._nodes[node_id] = NodeReports(accepted=seq, stored=seq)
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()  # and writes what is still summed in memory

    # -- reports (event loop) -----------------------------------------------------

    def ingest(self, node_id: str, report: StatsReport) -> None:
        book = self._nodes.get(node_id)
        if book is None:
            book = self._nodes[node_id] = NodeReports()
        if report.seq is not None and report.seq <= book.accepted:
            return  # taken in already (a resend)
        now = self.clock()
        this_minute = int(now // 60)
        if book.minute != this_minute:
            book.minute, book.reports = this_minute, 0
        if book.reports >= REPORTS_PER_MINUTE:
            raise TooManyReports(
                f"at most {REPORTS_PER_MINUTE} statistics reports a minute; slow down"
            )
        book.reports += 1
        if report.seq is not None:
            book.accepted = report.seq
            self._pending_seq[node_id] = report.seq
        minute = int((report.at if report.at is not None else now) // 60)
        if minute < this_minute - RETENTION_MINUTES or minute > this_minute + 1:
            return  # outside the window we keep: nothing to add it to
        peers_minute = minute - minute % PEER_MINUTES
        rows: list[tuple[str, int, Counters, float | None]] = [(TOTAL, minute, report.total, None)]
        rows += [(p.peer_id, peers_minute, p, p.rtt_ms) for p in report.peers]
        rows += [(port_key(p.network_id), minute, p, None) for p in report.ports]
        pending = self._pending
        for peer_id, at, c, rtt in rows:
            counts = (c.rx_bytes, c.tx_bytes, c.rx_packets, c.tx_packets, c.drops)
            pending.add((node_id, peer_id, at), counts, rtt)
        book.rx += report.total.rx_bytes
        book.tx += report.total.tx_bytes

    def stored_seq(self, node_id: str) -> int:
        book = self._nodes.get(node_id)
        return book.stored if book is not None else 0

    def totals(self) -> list[tuple[str, int, int]]:
        """Each node's bytes received and sent, reported since this process started."""
        return [(node_id, b.rx, b.tx) for node_id, b in list(self._nodes.items()) if b.reports]

    # -- batches --------------------------------------------------------------------

    async def _batch(self) -> None:
        await self.flush()
        if self.clock() - self._purged > 600:
            await self.purge()

    async def flush(self) -> None:
        started = time.perf_counter()
        async with self._flushing:
            pending, self._pending = self._pending, PendingRows()
            seqs, self._pending_seq = self._pending_seq, {}
            live = self.state.nodes
            rows: list[tuple[Any, ...]] = []
            for row in pending.rows():
                if row[0] in live:
                    rows.append(row)
                    if len(rows) % ROWS_AT_ONCE == 0:
                        await asyncio.sleep(0)  # requests are served meanwhile
            marks = [(seq, node) for node, seq in seqs.items() if node in live]
            if not rows and not marks:
                return

            def write(db: Session) -> None:
                # the rows are ready: the thread only hands them to the driver
                # (Python work here would hold the GIL from the event loop).
                # A node deleted since this batch began fails the whole write;
                # then the rows of the nodes still there are written.
                try:
                    with db.begin_nested():
                        bulk.upsert_stats(db, rows)
                        bulk.update_by_id(db, "nodes", ["stats_seq"], marks)
                except IntegrityError:
                    ids = sorted({r[0] for r in rows} | {node for _, node in marks})
                    alive = set(db.scalars(select(NodeRow.id).where(NodeRow.id.in_(ids))))
                    bulk.upsert_stats(db, [r for r in rows if r[0] in alive])
                    alive_marks = [m for m in marks if m[1] in alive]
                    bulk.update_by_id(db, "nodes", ["stats_seq"], alive_marks)

            try:
                await self.writer(write, patient=True)
            except Exception:
                self._pending.take_back(pending)  # again with the next batch
                for node, seq in seqs.items():
                    self._pending_seq[node] = max(seq, self._pending_seq.get(node, 0))
                raise
            for node, seq in seqs.items():
                if (book := self._nodes.get(node)) is not None:
                    book.stored = max(seq, book.stored)
            self.last_flush_s = time.perf_counter() - started
            self.last_flush_rows = len(rows)
            if self.last_flush_s > 1.0:
                log.warning("writing statistics: %.1f s, %d rows", self.last_flush_s, len(rows))

    async def purge(self) -> None:
        cutoff = int(self.clock() // 60) - RETENTION_MINUTES
        await self.writer(
            lambda db: db.execute(delete(StatsRow).where(StatsRow.minute < cutoff)), patient=True
        )
        self._purged = self.clock()

    # -- reading --------------------------------------------------------------------

    async def history(
        self, node_ids: list[str] | None, minutes: int, peer_id: str = TOTAL
    ) -> list[Bucket]:
        """Per-minute sums over ``node_ids`` (None: every node) for the last
        ``minutes`` minutes, with what is not written yet."""
        await self.flush()
        since = int(self.clock() // 60) - minutes

        def read() -> list[Bucket]:
            with self.sessions() as db:
                return _history(db, node_ids, since, peer_id)

        return await asyncio.to_thread(read)

    async def peer_summary(self, node_id: str, minutes: int) -> dict[str, Bucket]:
        await self.flush()
        since = int(self.clock() // 60) - minutes

        def read() -> dict[str, Bucket]:
            with self.sessions() as db:
                return _peer_summary(db, node_id, since)

        return await asyncio.to_thread(read)


def _history(db: Session, node_ids: list[str] | None, since: int, peer_id: str) -> list[Bucket]:
    if node_ids is not None and not node_ids:
        return []
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    rtts: dict[int, float] = {}
    query = select(StatsRow).where(StatsRow.peer_id == peer_id, StatsRow.minute > since)
    if node_ids is not None:
        query = query.where(StatsRow.node_id.in_(node_ids))
    for row in db.scalars(query):
        bucket = sums[row.minute]
        for i, name in enumerate(FIELDS):
            bucket[i] += getattr(row, name)
        if row.rtt_ms is not None:
            rtts[row.minute] = row.rtt_ms
    return [
        Bucket(minute=m, rtt_ms=rtts.get(m), **dict(zip(FIELDS, sums[m], strict=True)))
        for m in sorted(sums)
    ]


def _peer_summary(db: Session, node_id: str, since: int) -> dict[str, Bucket]:
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
        values = {f: getattr(row, f) + (getattr(prev, f) if prev else 0) for f in FIELDS}
        out[row.peer_id] = Bucket(
            minute=row.minute, rtt_ms=row.rtt_ms or (prev.rtt_ms if prev else None), **values
        )
    return out

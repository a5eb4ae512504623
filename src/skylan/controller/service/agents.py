"""What agents report: heartbeats into the state's liveness, in memory, and
written to the database in batches.

A heartbeat costs a dictionary update; every few seconds the nodes seen since
are written in one transaction (their last-seen times, and the reports that
changed). Only what changes other nodes' netmaps (endpoints, the address a node
is seen from, lane keys) is written at once, through the writer, as a change.
With several replicas each also reads, every few seconds, the heartbeats the
others received, so any replica shows every node's liveness.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from skylan.controller import audit
from skylan.controller.changes import record_change
from skylan.controller.service.batches import BatchLoop
from skylan.controller.service.errors import Conflict, NotFound
from skylan.controller.state import loader
from skylan.controller.state.liveness import Liveness, digest, pack, pack_shared, shared, unpack
from skylan.controller.state.store import State
from skylan.controller.storage import bulk
from skylan.controller.storage.tables import NodeRow
from skylan.controller.writes import Writer
from skylan.model.agentapi import Heartbeat, HeartbeatAnswer, InterfaceReport, PeerStatusReport

log = logging.getLogger("skylan.controller")

_INTERFACES = TypeAdapter(list[InterfaceReport])
_PEERS = TypeAdapter(list[PeerStatusReport])
_SEEN = TypeAdapter(dict[str, list[str]])


def _stamp(unix: float | None) -> datetime | None:
    return datetime.fromtimestamp(unix, UTC) if unix is not None else None


_NEVER = Liveness()


class Liveliness:
    """Heartbeats in, liveness out (and to the database, in batches)."""

    def __init__(
        self,
        state: State,
        writer: Writer,
        sessions: sessionmaker[Session],
        *,
        flush_interval: float = 5.0,
        refresh: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.writer = writer
        self.sessions = sessions
        self.flush_interval = flush_interval
        self.refresh = refresh  # read other replicas' heartbeats (PostgreSQL)
        self.clock = clock
        self.seen: set[str] = set()  # nodes heard from since the last flush
        self.detailed: set[str] = set()  # ... whose reports changed
        # tunnel lists received since the last batch (their home is the
        # database: memory keeps only a digest of each node's)
        self._tunnels: dict[str, bytes] = {}
        self._loop = BatchLoop("heartbeats", flush_interval, self._batch, self.flush)
        self.last_flush_s = 0.0  # how long the last batch took, end to end
        self.last_flush_rows = 0
        self._watermark = 0.0
        # first contacts: seen here since start (so each is noted once), and
        # not yet written; the database says which are really first
        self._contacted: set[str] = set()
        self._first_contacts: set[str] = set()

    # -- heartbeats (event loop) ------------------------------------------------

    def heartbeat(self, node_id: str, body: Heartbeat) -> HeartbeatAnswer:
        node = self.state.nodes.get(node_id)
        if node is None:
            raise NotFound("this node was deleted")
        live = self.state.liveness.setdefault(node_id, Liveness())
        now = self.clock()
        live.last_seen = now
        self.seen.add(node_id)
        if not node.contacted and node_id not in self._contacted:
            self._contacted.add(node_id)  # (written with the next batch, once)
            self._first_contacts.add(node_id)
        if body.uptime_s is not None:
            live.started_at = now - body.uptime_s
        changed = False
        if body.agent_version is not None and body.agent_version != live.agent_version:
            live.agent_version, changed = shared(body.agent_version), True
        if body.os is not None and body.os != live.os:
            live.os, changed = shared(body.os), True
        reports = (
            (
                "interfaces",
                None if body.interfaces is None else _INTERFACES.dump_json(body.interfaces),
                pack,
            ),
            (
                "seen_ips",
                None if body.seen_ips is None else _SEEN.dump_json(body.seen_ips),
                pack_shared,
            ),
        )
        for field, raw, packer in reports:
            if raw is not None and (packed := packer(raw)) != getattr(live, field):
                setattr(live, field, packed)
                changed = True
        if body.peers is not None:
            raw = _PEERS.dump_json(body.peers)
            if (mark := digest(raw)) != live.tunnels:
                live.tunnels = mark
                self._tunnels[node_id] = raw
                changed = True
        if changed:
            self.detailed.add(node_id)
        return HeartbeatAnswer(status=node.status, server_time=datetime.now(UTC).isoformat())

    def identity_changes(
        self, node_id: str, body: Heartbeat, address: str | None
    ) -> dict[str, Any]:
        """What of the heartbeat changes other nodes' netmaps: to be written
        now, as a change (usually nothing)."""
        node = self.state.nodes[node_id]
        out: dict[str, Any] = {}
        if address != node.observed_ip:
            out["observed_ip"] = address  # cloaked peers must let it in
        if body.endpoints is not None and tuple(body.endpoints) != node.endpoints:
            out["endpoints"] = list(body.endpoints)
        if body.lane_keys is not None and tuple(body.lane_keys) != node.lane_keys:
            out["lane_keys"] = list(body.lane_keys)
        if body.candidates is not None and tuple(body.candidates) != node.candidates:
            out["candidates"] = [c.model_dump() for c in body.candidates]
        return out

    def write_identity(self, db: Session, node_id: str, changes: dict[str, Any]) -> None:
        row = db.get(NodeRow, node_id)
        if row is None:
            raise NotFound("this node was deleted")
        if "lane_keys" in changes:
            self._check_lane_keys(node_id, row.public_key, changes["lane_keys"])
        for key, value in changes.items():
            setattr(row, key, value)
        record_change(db, nodes=[node_id])

    def _check_lane_keys(self, node_id: str, own: str, keys: list[str]) -> None:
        """A lane key names the node to its peers' data planes, so it must be no
        other node's key: one node claiming another's would have peers
        attribute that node's traffic to it (and its own tunnels break)."""
        for key in keys:
            owner = self.state.lane_key_owner.get(key)
            holder = self.state.node_by_key.get(key)
            if key == own or (owner not in (None, node_id)) or holder is not None:
                raise Conflict(f"lane key {key} is already a node's key")

    # -- batches ------------------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()  # and writes what was heard since the last batch

    async def _batch(self) -> None:
        await self.flush()
        if self.refresh:
            await self.read_others()

    async def flush(self) -> None:
        started = time.perf_counter()
        seen, self.seen = self.seen, set()
        detailed, self.detailed = self.detailed, set()
        firsts, self._first_contacts = self._first_contacts, set()
        tunnels, self._tunnels = self._tunnels, {}
        rows, details = [], []
        now = datetime.now(UTC)
        for node_id in seen | detailed:
            live = self.state.liveness.get(node_id)
            if live is None or node_id not in self.state.nodes:
                continue
            rows.append((_stamp(live.last_seen), _stamp(live.started_at), node_id))
            if node_id in detailed:  # as stored: the JSON the agent sent
                details.append(
                    (
                        live.os,
                        live.agent_version,
                        unpack(live.interfaces).decode(),
                        unpack(live.seen_ips).decode(),
                        now,
                        node_id,
                    )
                )
        lists = [(raw.decode(), n) for n, raw in tunnels.items() if n in self.state.nodes]
        if not rows:
            return

        def write(db: Session) -> None:
            bulk.update_by_id(db, "nodes", ["last_seen", "agent_started_at"], rows)
            bulk.update_by_id(
                db,
                "nodes",
                ["os", "agent_version", "interfaces", "seen_ips", "details_at"],
                details,
                json=("interfaces", "seen_ips"),
            )
            bulk.update_by_id(db, "nodes", ["peer_status"], lists, json=("peer_status",))
            _first_contacts(db, sorted(firsts))

        try:
            await self.writer(write, patient=True)
        except Exception:
            self._first_contacts |= firsts
            self.seen |= seen  # try again with the next batch
            self.detailed |= detailed
            for node_id, raw in tunnels.items():
                self._tunnels.setdefault(node_id, raw)  # (one received since is newer)
            raise
        self.last_flush_s = time.perf_counter() - started
        self.last_flush_rows = len(rows)
        if self.last_flush_s > 1.0:
            log.warning("writing heartbeats took %.1f s (%d rows)", self.last_flush_s, len(rows))

    async def tunnel_lists(self, node_ids: list[str]) -> dict[str, bytes]:
        """The tunnel lists the nodes' agents last reported (JSON; a node
        that never reported one is absent): those not yet written from
        memory, the rest from the database."""
        found = {n: raw for n in node_ids if (raw := self._tunnels.get(n)) is not None}
        rest = [n for n in node_ids if n not in found]
        if rest:

            def read() -> dict[str, bytes]:
                with self.sessions() as db:
                    return loader.load_tunnels(db, rest)

            for node_id, raw in (await asyncio.to_thread(read)).items():
                found.setdefault(node_id, raw)  # (one received meanwhile is newer)
        return found

    async def read_others(self) -> None:
        """Heartbeats other replicas received (and wrote) since the last read:
        when each node was last seen, for every node; its details only where
        another replica heard it last and the details changed."""
        since = max(self._watermark - 2 * self.flush_interval, 0.0)
        started = self.clock()

        def seen_since() -> list[tuple[str, float | None, float | None, float | None]]:
            with self.sessions() as db:
                return loader.load_seen_since(db, since)

        def details_of(node_ids: list[str]) -> dict[str, Liveness]:
            with self.sessions() as db:
                return loader.load_details(db, node_ids)

        seen = await asyncio.to_thread(seen_since)
        newer = [
            (node_id, last_seen, started_at, details_at)
            for node_id, last_seen, started_at, details_at in seen
            if node_id in self.state.nodes
            and (last_seen or 0.0) > (self._mine(node_id).last_seen or 0.0)
        ]
        changed = [n for n, _, _, at in newer if at is not None and at > since]
        details = await asyncio.to_thread(details_of, changed) if changed else {}
        self._watermark = started
        for node_id, last_seen, started_at, _ in newer:
            mine = self._mine(node_id)
            if node_id not in self.state.nodes or (last_seen or 0.0) <= (mine.last_seen or 0.0):
                continue  # deleted, or heard here since
            theirs = details.get(node_id) or replace(mine)
            theirs.last_seen, theirs.started_at = last_seen, started_at
            self.state.liveness[node_id] = theirs

    def _mine(self, node_id: str) -> Liveness:
        return self.state.liveness.get(node_id) or _NEVER


def _first_contacts(db: Session, node_ids: list[str]) -> None:
    """Nodes heard from for the first time (as far as this replica knows):
    those the database has no first contact for get one, and an audit event.
    Guarded in SQL, so a node that another replica, or this one before a
    restart, already recorded is not recorded again."""
    now = datetime.now(UTC)
    for at in range(0, len(node_ids), 500):
        chunk = node_ids[at : at + 500]
        found = db.execute(
            update(NodeRow)
            .where(NodeRow.id.in_(chunk), NodeRow.first_contact_at.is_(None))
            .values(first_contact_at=now)
            .returning(NodeRow.id, NodeRow.name, NodeRow.observed_ip, NodeRow.endpoints)
            .execution_options(synchronize_session=False)
        ).all()
        for node_id, name, seen_from, endpoints in found:
            audit.record(
                db,
                audit.Actor("node", node_id, seen_from or ""),
                "node.first_contact",
                target_id=node_id,
                target=name,
                after={"observed_ip": seen_from, "endpoints": endpoints},
            )

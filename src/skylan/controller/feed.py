"""The netmap change feed: versions, cached netmaps and long-poll waiters.

Every controller process keeps an in-memory picture of the netmaps, driven
by the ``changes`` table: it reads new change rows (woken by its own commits,
by PostgreSQL NOTIFY from other replicas, and by a periodic poll as a
fallback), coalesces a burst of them for a moment, rebuilds only the affected
networks' sections and nodes' headers, and wakes the long-polls of the nodes
whose netmap changed. A node's version is the id of the last change that
affected it: monotonic, and the same number on every replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from skylan.controller import netmaps
from skylan.controller.changes import NOTIFY_CHANNEL
from skylan.controller.storage.tables import ChangeRow, NetworkRow, NodeRow

log = logging.getLogger("skylan.controller.feed")


@dataclass
class _Update:
    """What one batch of changes did, computed off the event loop."""

    last_change: int
    sections: dict[str, netmaps.NetworkSection | None] = field(default_factory=dict)
    headers: dict[str, netmaps.NodeHeader | None] = field(default_factory=dict)
    memberships: dict[str, set[str]] = field(default_factory=dict)
    affected_nodes: set[str] = field(default_factory=set)


class NetmapFeed:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        coalesce: float = 0.2,
        poll_interval: float = 2.0,
        listen_url: str | None = None,
    ) -> None:
        self._sessions = sessions
        self.coalesce = coalesce
        self.poll_interval = poll_interval
        self._listen_url = listen_url
        self.last_change = 0
        self._versions: dict[str, int] = {}
        self._headers: dict[str, netmaps.NodeHeader] = {}
        self._sections: dict[str, netmaps.NetworkSection] = {}
        self._node_networks: dict[str, set[str]] = defaultdict(set)
        self._waiters: dict[str, list[asyncio.Future[None]]] = defaultdict(list)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kicked: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        event.listen(sessions, "after_commit", self._after_commit)

    # -- lifetime -------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._kicked = asyncio.Event()
        update = await asyncio.to_thread(self._load_everything)
        self._apply(update, wake=False)
        self._task = asyncio.create_task(self._run(), name="netmap-feed")
        if self._listen_url is not None:
            self._listener = threading.Thread(target=self._listen, name="pg-listen", daemon=True)
            self._listener.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._kicked is not None:
            self._kicked.set()  # wake the loop so it sees the stop flag
        if self._task is not None:
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=5)
            if not done:
                log.warning("netmap feed did not stop within 5 s; abandoning it")
        for futures in self._waiters.values():
            for fut in futures:
                if not fut.done():
                    fut.cancel()
        if self._listener is not None:
            await asyncio.to_thread(self._listener.join, 5)

    def kick(self) -> None:
        """Thread-safe: there may be new change rows to read."""
        if self._loop is not None and self._kicked is not None:
            self._loop.call_soon_threadsafe(self._kicked.set)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop("skylan_changed", False):
            self.kick()

    # -- reading --------------------------------------------------------------

    def version(self, node_id: str) -> int:
        return self._versions.get(node_id, 0)

    def netmap(self, node_id: str, since: int = 0) -> bytes | None:
        """The node's netmap; peer lists it already has (per ``since``) are null."""
        header = self._headers.get(node_id)
        if header is None:
            return None
        sections = [
            self._sections[n].render(since)
            for n in sorted(self._node_networks.get(node_id, ()))
            if n in self._sections
        ]
        return netmaps.assemble(self.version(node_id), header, sections)

    async def wait(self, node_id: str, since: int, timeout: float) -> bytes | None:
        """The node's netmap once its version exceeds ``since``; None on timeout."""
        if self.version(node_id) > since and node_id in self._headers:
            return self.netmap(node_id, since)
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters[node_id].append(fut)
        try:
            async with asyncio.timeout(timeout):
                await fut
        except TimeoutError:
            return None
        finally:
            waiters = self._waiters.get(node_id)
            if waiters is not None:
                with contextlib.suppress(ValueError):
                    waiters.remove(fut)
                if not waiters:
                    del self._waiters[node_id]
        if self.version(node_id) > since:
            return self.netmap(node_id, since)
        return None

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    # -- the loop -------------------------------------------------------------

    async def _run(self) -> None:
        assert self._kicked is not None
        while not self._stop.is_set():
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow
            # a cancellation that races with the event, and stop() would hang
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._kicked.wait()
            if self._stop.is_set():
                return
            if self._kicked.is_set():
                await asyncio.sleep(self.coalesce)  # let a burst of changes land
            self._kicked.clear()
            try:
                update = await asyncio.to_thread(self._read_changes, self.last_change)
            except Exception:  # the database may be briefly unreachable
                log.exception("reading changes failed; retrying")
                continue
            if update is not None:
                self._apply(update, wake=True)

    def _load_everything(self) -> _Update:
        with self._sessions() as db:
            self._snapshot(db)
            last = db.scalar(select(func.max(ChangeRow.id))) or 0
            net_ids = list(db.scalars(select(NetworkRow.id)))
            node_ids = list(db.scalars(select(NodeRow.id)))
            return _Update(
                last_change=last,
                sections=netmaps.build_sections(db, net_ids),
                headers=netmaps.build_headers(db, node_ids),
                memberships=netmaps.node_networks(db, node_ids),
                affected_nodes=set(node_ids),
            )

    def _snapshot(self, db: Session) -> None:
        """Read change rows and data from one snapshot, so a version names
        exactly the data it was built from (PostgreSQL; SQLite serialises)."""
        if db.get_bind().dialect.name == "postgresql":
            db.connection(execution_options={"isolation_level": "REPEATABLE READ"})

    def _read_changes(self, after: int) -> _Update | None:
        with self._sessions() as db:
            self._snapshot(db)
            rows = list(
                db.scalars(select(ChangeRow).where(ChangeRow.id > after).order_by(ChangeRow.id))
            )
            if not rows:
                return None
            nets: set[str] = set()
            nodes: set[str] = set()
            for row in rows:
                nets.update(row.network_ids)
                nodes.update(row.node_ids)
            # a node's change shows in every network it was or is now in
            new_memberships = netmaps.node_networks(db, nodes)
            for node in nodes:
                nets |= self._node_networks.get(node, set()) | new_memberships[node]
            sections = netmaps.build_sections(db, nets)
            affected = set(nodes)
            for net_id, section in sections.items():
                old = self._sections.get(net_id)
                if old is not None:
                    affected |= old.members
                if section is not None:
                    affected |= section.members
            headers = netmaps.build_headers(db, affected)
            memberships = netmaps.node_networks(db, affected)
            return _Update(rows[-1].id, sections, headers, memberships, affected)

    def _apply(self, update: _Update, *, wake: bool) -> None:
        for net_id, section in update.sections.items():
            if section is None:
                self._sections.pop(net_id, None)
                continue
            old = self._sections.get(net_id)
            if old is not None and old.peers == section.peers:
                section.peers_version = old.peers_version
            else:
                section.peers_version = update.last_change
            self._sections[net_id] = section
        for node_id, header in update.headers.items():
            if header is None:
                self._headers.pop(node_id, None)
                self._node_networks.pop(node_id, None)
                self._versions.pop(node_id, None)
            else:
                self._headers[node_id] = header
        for node_id, nets in update.memberships.items():
            if node_id in self._headers:
                self._node_networks[node_id] = nets
        for node_id in update.affected_nodes:
            if node_id in self._headers:
                self._versions[node_id] = update.last_change
        self.last_change = update.last_change
        if wake:
            for node_id in update.affected_nodes:
                for fut in self._waiters.get(node_id, ()):
                    if not fut.done():
                        fut.set_result(None)

    # -- PostgreSQL LISTEN ------------------------------------------------------

    def _listen(self) -> None:
        import psycopg  # noqa: PLC0415 - only deployments on PostgreSQL need it

        assert self._listen_url is not None
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._listen_url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.kick()  # catch up on anything missed while disconnected
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            self.kick()
            except Exception:
                log.exception("LISTEN connection lost; reconnecting")
                self._stop.wait(1.0)


def listen_url_for(sqlalchemy_url: str) -> str | None:
    """A libpq URL for LISTEN, or None when the database is not PostgreSQL."""
    if not sqlalchemy_url.startswith("postgresql"):
        return None
    _, sep, rest = sqlalchemy_url.partition("://")
    return "postgresql://" + rest if sep else None

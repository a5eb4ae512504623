"""One running controller: its in-memory state and the parts that keep it
(the feed, the writer, heartbeats and statistics), as the API sees them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from skylan.controller.feed import NetmapFeed
from skylan.controller.looplag import LoopLag
from skylan.controller.service.agents import Liveliness
from skylan.controller.service.errors import Refused
from skylan.controller.service.stats import StatsBook
from skylan.controller.settings import ControllerSettings
from skylan.controller.state.store import State
from skylan.controller.writes import Busy, Writer
from skylan.model.agentapi import Heartbeat, HeartbeatAnswer, SyncRequest
from skylan.model.relayapi import RelaySync

T = TypeVar("T")


@dataclass
class Controller:
    settings: ControllerSettings
    memory: State
    feed: NetmapFeed
    writer: Writer
    liveliness: Liveliness
    stats: StatsBook
    sessions: sessionmaker[Session]
    fingerprint: str  # of the TLS certificate agents pin
    readers: asyncio.Semaphore
    lag: LoopLag
    # what each relay said last, to this replica (for /metrics; the list reads the DB)
    relay_reports: dict[str, RelaySync] = field(default_factory=dict)

    async def write(self, work: Callable[[Session], T]) -> T:
        return await self.writer(work)

    async def heartbeat(
        self, node_id: str, body: Heartbeat, address: str | None
    ) -> HeartbeatAnswer:
        """Liveness in memory; what peers' netmaps show (endpoints, the address
        the node is seen from, lane keys) written at once, as a change."""
        identity = self.liveliness.identity_changes(node_id, body, address)
        if identity:
            await self.write(lambda db: self.liveliness.write_identity(db, node_id, identity))
        return self.liveliness.heartbeat(node_id, body)

    async def sync(self, node_id: str, body: SyncRequest, address: str | None) -> None:
        """Take in what an agent's sync carries (the wait for its netmap is the
        caller's)."""
        if body.heartbeat is not None:
            await self.heartbeat(node_id, body.heartbeat, address)
        if body.held_by is not None and body.held_by != self.stats.epoch:
            return  # another process held some of its reports: all again, in order
        for report in body.stats:
            self.stats.ingest(node_id, report)

    def sync_answer(self, node_id: str, netmap: bytes | None) -> bytes:
        """The answer to a sync, as it goes on the wire (the netmap as the
        book made it, not parsed and serialised again)."""
        node = self.memory.nodes.get(node_id)
        if node is None:
            raise Refused("unknown or revoked node credential; re-enroll with a join token")
        head = b'{"status":"%s","stats_stored":%d,"epoch":"%s","netmap":' % (
            node.status.encode(),
            self.stats.stored_seq(node_id),
            self.stats.epoch.encode(),
        )
        return head + (netmap or b"null") + b"}"

    async def read(self, work: Callable[[Session], T]) -> T:
        """A database read that memory cannot answer (join tokens, history),
        in a worker thread, a few at a time; Busy rather than a queue."""
        try:
            async with asyncio.timeout(self.writer.queue_s):
                await self.readers.acquire()
        except TimeoutError:
            raise Busy("the controller is busy reading; retry in a moment") from None
        try:
            return await asyncio.to_thread(self._read, work)
        finally:
            self.readers.release()

    def _read(self, work: Callable[[Session], T]) -> T:
        with self.sessions() as db:
            return work(db)

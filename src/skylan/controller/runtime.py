"""One running controller: its in-memory state and the parts that keep it
(the feed, the writer, heartbeats and statistics), as the API sees them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from skylan.controller.feed import NetmapFeed
from skylan.controller.service.agents import Liveliness
from skylan.controller.service.stats import StatsBook
from skylan.controller.settings import ControllerSettings
from skylan.controller.state.store import State
from skylan.controller.writes import Busy, Writer

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

    async def write(self, work: Callable[[Session], T]) -> T:
        return await self.writer(work)

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

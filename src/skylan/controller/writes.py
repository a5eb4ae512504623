"""Every write, one way: a short transaction in a worker thread, at most a few
at a time, and the answer once the feed has applied the change.

Writes queue for a slot (one on SQLite, whose writes serialise anyway; a few on
PostgreSQL). A write that cannot get a slot within ``queue_s`` is refused with
:class:`Busy` (503 with ``Retry-After``) instead of waiting behind a backlog:
under overload the controller says so at once, it does not hang for 30 s and
then fail. Reads never queue here; they are answered from memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from skylan.controller.changes import CHANGE_ID
from skylan.controller.feed import NetmapFeed

T = TypeVar("T")


class Busy(Exception):
    """Too much is happening to do this now; try again after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Writer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        feed: NetmapFeed,
        *,
        slots: int,
        queue_s: float = 2.0,
    ) -> None:
        self._sessions = sessions
        self._feed = feed
        self._slots = asyncio.Semaphore(slots)
        self.queue_s = queue_s
        self.waiting = 0

    async def __call__(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a transaction and commit it; its result, once the
        state shows what it changed."""
        self.waiting += 1
        try:
            async with asyncio.timeout(self.queue_s):
                await self._slots.acquire()
        except TimeoutError:
            raise Busy("the controller is busy writing; retry in a moment") from None
        finally:
            self.waiting -= 1
        try:
            result, change = await run_in_threadpool(self._transaction, work)
        finally:
            self._slots.release()
        if change:
            await self._feed.until_applied(change)
        return result

    def _transaction(self, work: Callable[[Session], T]) -> tuple[T, int]:
        with self._sessions() as db:
            result = work(db)
            db.commit()
            return result, int(db.info.get(CHANGE_ID, 0))

"""Every write, one way: short transactions in a worker thread, a few at a
time, committed together, and the answer once the feed has applied them.

Writes queue for a slot. A slot takes every write waiting (up to ``batch``) and
runs them in one transaction, all or nothing; if one fails, the batch runs
again with each write inside a savepoint of its own: the one that fails is
rolled back alone and gets its own error, the others commit together with one
fsync. (Writes rarely fail
once they reach the database, since requests are checked against memory
first; savepoints for every write would cost two round trips each.)
Under load that turns a queue of writes into a few commits instead of a commit
each (group commit). A write that cannot be started within ``queue_s`` is
refused with :class:`Busy` (503 with ``Retry-After``) instead of waiting behind
a backlog: under overload the controller says so at once. Reads never queue
here; they are answered from memory.

On PostgreSQL a batch that may record changes takes the change lock (see
:mod:`.changes`) before its first statement, not at its first change: taken
midway, the lock is held while the batch waits for rows another batch holds
(the same join token, a node name), and that batch waits for the lock, which
PostgreSQL resolves by aborting one write a second, batch after batch. Taken
first, the batches that change things run one after another, across replicas
too, and never wait for each other's rows. So one slot for them is enough:
with four per replica, eight batches of five enrolments queued for the lock
(140 ms each) and committed one by one; with one, batches of twenty-five
commit at 1.4 times the rate (measured with two replicas). The background
flushes (heartbeats, statistics) record no change and, on PostgreSQL, run
beside them in slots of their own; on SQLite every write takes the one write
lock, so they share the one slot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from skylan.controller import audit
from skylan.controller.changes import CHANGE_ID, take_change_lock
from skylan.controller.feed import NetmapFeed
from skylan.controller.ipam import HANDED_OUT

T = TypeVar("T")
log = logging.getLogger("skylan.controller")


class Busy(Exception):
    """Too much is happening to do this now; try again after ``retry_after`` s."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Job:
    work: Callable[[Session], Any]
    done: asyncio.Future[tuple[Any, int]]
    patient: bool = False  # a background flush: records no change
    actor: audit.Actor | None = None  # whose write it is (the audit log's "who")
    result: Any = None
    error: BaseException | None = None
    change: int = 0


class Writer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        feed: NetmapFeed,
        *,
        slots: int,
        background_slots: int = 0,
        queue_s: float = 2.0,
        batch: int = 64,
    ) -> None:
        """``slots``: transactions at once for writes that change the state;
        ``background_slots``: for the patient background flushes, in slots of
        their own (0: they share ``slots``, as on SQLite, where every write
        takes the one write lock anyway)."""
        self._sessions = sessions
        self._feed = feed
        changing = asyncio.Semaphore(slots)
        background = asyncio.Semaphore(background_slots) if background_slots else changing
        self._slots = {False: changing, True: background}
        self._queues: dict[bool, list[_Job]] = {False: [], True: []}  # by patience
        self.queue_s = queue_s
        self.batch = batch
        self.waiting = 0
        self.commits = 0
        self.written = 0

    async def __call__(self, work: Callable[[Session], T], *, patient: bool = False) -> T:
        """Run ``work`` in a transaction and commit it; its result, once the
        state shows what it changed. ``patient``: the controller's own
        background writes (heartbeats, statistics) wait for a slot however
        long it takes rather than give up."""
        job = _Job(work, asyncio.get_running_loop().create_future(), patient, audit.current.get())
        queue = self._queues[patient]
        queue.append(job)
        self.waiting += 1
        acquired = False
        slots = self._slots[patient]
        try:
            async with asyncio.timeout(None if patient else self.queue_s):
                await slots.acquire()
            acquired = True
        except TimeoutError:
            if job in queue:  # nobody started it: it never ran
                queue.remove(job)
                raise Busy("the controller is busy writing; retry in a moment") from None
            # another write's batch took it meanwhile: its result is coming
        finally:
            self.waiting -= 1
        if acquired:
            try:
                while job in queue:  # run batches until ours has run
                    jobs = queue[: self.batch]
                    del queue[: len(jobs)]
                    await self._run(jobs)
            finally:
                slots.release()
        result, change = await job.done
        if change:
            await self._feed.until_applied(change)
        return result  # type: ignore[no-any-return]

    async def _run(self, jobs: list[_Job]) -> None:
        handed: dict[str, set[str]] = {}  # addresses this batch claimed, per network
        try:
            await asyncio.to_thread(self._transaction, jobs, handed)
        except BaseException as exc:  # the commit itself failed: every job did
            for job in jobs:
                if job.error is None:
                    job.error = exc
        # the next batch starts from a state that shows this one (its free
        # addresses, its names): otherwise it would try what this one took
        latest = max((j.change for j in jobs if j.error is None), default=0)
        try:
            if latest:
                await self._feed.until_applied(latest)
        finally:
            self._feed.state.claims.release(handed)
        self.commits += 1
        self.written += len(jobs)
        for job in jobs:
            if job.done.done():
                continue
            if job.error is not None:
                job.done.set_exception(job.error)
            else:
                job.done.set_result((job.result, job.change))

    def _transaction(self, jobs: list[_Job], handed: dict[str, set[str]]) -> None:
        failed = self._all_or_nothing(jobs, handed)
        if failed is None:
            return
        if len(jobs) == 1:
            jobs[0].error = failed
            return
        self._each_alone(jobs, handed)

    def _all_or_nothing(self, jobs: list[_Job], handed: dict[str, set[str]]) -> Exception | None:
        """The batch without savepoints (two round trips fewer per write),
        committed if every write succeeds; else nothing is, and the error."""
        done: list[tuple[Any, int]] = []
        with self._sessions() as db:
            db.info[HANDED_OUT] = handed
            if not all(job.patient for job in jobs):
                take_change_lock(db)
            for job in jobs:
                try:
                    done.append((_as(job, db), int(db.info.get(CHANGE_ID, 0))))
                except Exception as exc:
                    db.rollback()
                    return exc
            db.commit()
        for job, (result, change) in zip(jobs, done, strict=True):
            job.result, job.change = result, change
        return None

    def _each_alone(self, jobs: list[_Job], handed: dict[str, set[str]]) -> None:
        """The batch again, each write in a savepoint: one that fails is rolled
        back alone."""
        with self._sessions() as db:
            db.info[HANDED_OUT] = handed
            if not all(job.patient for job in jobs):
                take_change_lock(db)
            for job in jobs:
                before = db.info.get(CHANGE_ID, 0)
                try:
                    with db.begin_nested():
                        job.result = _as(job, db)
                    job.change = int(db.info.get(CHANGE_ID, 0))
                except Exception as exc:  # this job alone is rolled back
                    job.error = exc
                    db.info[CHANGE_ID] = before
            db.commit()


def _as(job: _Job, db: Session) -> Any:
    """Run the job's work as its actor: what it changes is flushed before the
    next job of the batch starts, so the audit log names the right one."""
    db.info[audit.ACTOR] = job.actor
    try:
        result = job.work(db)
        db.flush()
    finally:
        db.info.pop(audit.ACTOR, None)
    return result

"""The change feed: the one way the in-memory state changes, and the long-polls
it wakes.

Every write records a change row in its transaction. Each controller process
reads the new rows as soon as it hears of them (its own commits, PostgreSQL
NOTIFY from other replicas, or a periodic poll as a fallback), reloads what
they name from the database, applies that to the state and the netmap book in
change-id order, and tells the writer waiting for its change (so a client reads
its own write). Waking the long-polls is deferred by a short coalescing window,
so a burst of changes wakes each agent once; and the wake-ups go out in slices
of ``WAKE_SLICE`` per loop iteration, because 10,000 answers (and the 10,000
re-polls they cause) queued at once would hold every other request for seconds.
A node's version is the id of the
last change to its netmap: the same number on every replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from skylan.controller.changes import NOTIFY_CHANNEL
from skylan.controller.netmaps import Affected, NetmapBook
from skylan.controller.parking import Parking
from skylan.controller.state import loader
from skylan.controller.state.store import State

log = logging.getLogger("skylan.controller.feed")

BATCH = 5000  # change rows read at once
WAKE_SLICE = 100  # long-polls woken per event-loop iteration


class NetmapFeed:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        state: State,
        *,
        coalesce: float = 0.2,
        poll_interval: float = 2.0,
        listen_url: str | None = None,
        watch: list[sessionmaker[Session]] | None = None,
    ) -> None:
        """``watch``: the session factories whose commits may record changes
        (besides ``sessions``, which the feed reads with)."""
        self._sessions = sessions
        self.state = state
        self.book = NetmapBook()
        self.coalesce = coalesce
        self.poll_interval = poll_interval
        self._listen_url = listen_url
        self.applied = 0  # the last change applied to the state and the book
        self.published = 0  # the last change whose long-polls have been woken
        self.parking = Parking(self._ready, self.netmap, lambda node: node in self.book.headers)
        self._writers: list[tuple[int, asyncio.Future[None]]] = []
        self._watchers: list[asyncio.Future[None]] = []  # see next_change
        self.closing = False  # the server is stopping: nobody waits for changes now
        self._to_wake = Affected()
        self._waking: deque[str] = deque()
        self._pacing: asyncio.Handle | None = None
        self._wake: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kicked: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        for factory in [sessions, *(watch or [])]:
            event.listen(factory, "after_commit", self._after_commit)

    # -- lifetime -------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._kicked = asyncio.Event()
        everything = await asyncio.to_thread(self._read_everything)
        self.state.apply(everything.loaded)
        self.book.rebuild(self.state, everything.last)
        self.applied = self.published = everything.last
        self._task = asyncio.create_task(self._run(), name="netmap-feed")
        if self._listen_url is not None:
            self._listener = threading.Thread(target=self._listen, name="pg-listen", daemon=True)
            self._listener.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._kicked is not None:
            self._kicked.set()  # wake the loop so it sees the stop flag
        if self._wake is not None:
            self._wake.cancel()
        if self._pacing is not None:
            self._pacing.cancel()
        if self._task is not None:
            self._task.cancel()
            done, _ = await asyncio.wait({self._task}, timeout=5)
            if not done:
                log.warning("netmap feed did not stop within 5 s; abandoning it")
        self.parking.stop()
        for _, fut in self._writers:
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

    @property
    def last_change(self) -> int:
        return self.applied

    def version(self, node_id: str) -> int:
        return self.book.version(node_id)

    def netmap(self, node_id: str, since: int = 0) -> bytes | None:
        """The node's netmap for an agent holding ``since`` (0: nothing)."""
        return self.book.netmap(node_id, since)

    def _ready(self, node_id: str, since: int) -> bool:
        version = self.book.version(node_id)
        if version == 0:
            return False
        # an agent with nothing gets its netmap at once; otherwise only changes
        # already announced count, so a burst wakes it once
        return version > since if since == 0 else min(version, self.published) > since

    def stop_waits(self) -> None:
        """The server is stopping: release whoever waits in :meth:`next_change`
        (a graceful shutdown waits for requests in flight)."""
        self.closing = True
        self._release_watchers()

    def _release_watchers(self) -> None:
        for watcher in self._watchers:
            if not watcher.done():
                watcher.set_result(None)
        self._watchers = []

    async def next_change(self, timeout: float) -> None:
        """Return when the next batch of changes is applied, or after ``timeout``."""
        if self.closing:
            return
        watcher = asyncio.get_running_loop().create_future()
        self._watchers.append(watcher)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(watcher), timeout)

    async def wait(self, node_id: str, since: int, timeout: float) -> bytes | None:
        """The node's netmap once it has changed after ``since``; None on timeout."""
        assert self._loop is not None
        fut: asyncio.Future[bytes | None] = self._loop.create_future()

        def answer(found: bytes | None) -> None:
            if not fut.done():
                fut.set_result(found)

        parked = self.parking.park(node_id, since, timeout, answer)
        try:
            return await fut
        finally:
            if parked is not None:
                self.parking.cancel(parked)

    async def until_applied(self, change: int, timeout: float = 10.0) -> bool:
        """Wait until ``change`` is in the state (a writer reading its write)."""
        if change <= self.applied:
            return True
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._writers.append((change, fut))
        self.kick()
        try:
            async with asyncio.timeout(timeout):
                await fut
        except TimeoutError:
            log.warning("change %d was not applied within %.0f s", change, timeout)
            return False
        return True

    @property
    def waiting(self) -> int:
        return self.parking.count

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
            self._kicked.clear()
            try:
                changes = await asyncio.to_thread(self._read_changes, self.applied)
            except Exception:  # the database may be briefly unreachable
                log.exception("reading changes failed; retrying")
                await asyncio.sleep(min(self.poll_interval, 1.0))
                self._kicked.set()
                continue
            if changes.ids:
                self.apply(changes)
                if len(changes.ids) == BATCH:
                    self._kicked.set()  # more are waiting

    def apply(self, changes: loader.Changes) -> None:
        """Apply one batch of changes (event loop only)."""
        self.state.apply(changes.loaded)
        affected = self.book.update(self.state, changes.networks, changes.nodes, changes.last)
        if changes.relays:
            affected.add(self.book.update_relays(self.state, changes.last))
        self.applied = changes.last
        still = []
        for change, fut in self._writers:
            if change <= self.applied:
                if not fut.done():
                    fut.set_result(None)
            else:
                still.append((change, fut))
        self._writers = still
        self._release_watchers()
        self._to_wake.add(affected)
        if self._wake is None and self._loop is not None:
            self._wake = self._loop.call_later(self.coalesce, self._publish)

    def _publish(self) -> None:
        self._wake = None
        self.published = self.applied
        # only polls parked now: one that comes later is answered as it parks
        waking = self.parking.waiting_among(self._to_wake.nodes)
        for net_id in self._to_wake.sections:
            waking |= self.parking.waiting_among(self.book.receivers(net_id))
        self._waking.extend(waking)
        self._to_wake = Affected()
        if self._pacing is None:
            self._wake_some()

    def _wake_some(self) -> None:
        """Wake the next slice, then let the loop poll its sockets before the
        next one: call_soon lands behind the woken tasks, and the loop polls its
        sockets (the admin request waiting there) before it runs again."""
        self._pacing = None
        for _ in range(min(WAKE_SLICE, len(self._waking))):
            self.parking.wake(self._waking.popleft())
        if self._waking and self._loop is not None:
            self._pacing = self._loop.call_soon(self._wake_some)

    def _read_everything(self) -> loader.Changes:
        with self._sessions() as db:
            return loader.load_everything(db)

    def _read_changes(self, after: int) -> loader.Changes:
        with self._sessions() as db:
            return loader.load_changes(db, after, BATCH)

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

"""Agents waiting for their netmap: a small record each, no task, no timer.

Nearly every agent has a long-poll parked at any moment. As a coroutine
awaiting a future with its own timer, each cost a task, its frames and a timer
handle (about 2 KiB, measured at 2,000 agents). Here a parked poll is one
record: the feed's wake-ups and one shared timer over a heap of deadlines call
its ``answer`` once, with the netmap or with None (its time ran out, the node
is gone, or the controller stops).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable

log = logging.getLogger("skylan.controller")
CLOCK_SLACK_S = 0.001  # a timer may fire this much before its time

Answer = Callable[[bytes | None], None]


class Parked:
    __slots__ = ("answer", "deadline", "done", "node_id", "since")

    def __init__(self, node_id: str, since: int, deadline: float, answer: Answer) -> None:
        self.node_id = node_id
        self.since = since
        self.deadline = deadline
        self.answer = answer
        self.done = False


class Parking:
    def __init__(
        self,
        ready: Callable[[str, int], bool],
        fetch: Callable[[str, int], bytes | None],
        exists: Callable[[str], bool],
    ) -> None:
        """``ready(node, since)``: has its netmap changed after ``since``;
        ``fetch(node, since)``: the netmap for it; ``exists(node)``."""
        self._ready = ready
        self._fetch = fetch
        self._exists = exists
        self._by_node: dict[str, list[Parked]] = {}
        self._deadlines: list[tuple[float, int, Parked]] = []  # done ones linger until due
        self._order = itertools.count()  # ties in a deadline: first parked, first out
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.count = 0  # parked now

    def park(self, node_id: str, since: int, timeout: float, answer: Answer) -> Parked | None:
        """Answer once the node's netmap changed after ``since`` (at once if
        it has), or with None after ``timeout``; the handle to cancel it, or
        None if it was answered at once."""
        if self._ready(node_id, since):
            answer(self._fetch(node_id, since))
            return None
        if timeout <= 0:
            answer(None)
            return None
        loop = self._loop = self._loop or asyncio.get_running_loop()
        parked = Parked(node_id, since, loop.time() + timeout, answer)
        self._by_node.setdefault(node_id, []).append(parked)
        self.count += 1
        heap = self._deadlines
        if len(heap) > 2 * self.count + 1024:  # mostly answered already: start again
            heap[:] = [entry for entry in heap if not entry[2].done]
            heapq.heapify(heap)
        heapq.heappush(heap, (parked.deadline, next(self._order), parked))
        if heap[0][2] is parked:
            self._arm()
        return parked

    def cancel(self, parked: Parked) -> None:
        """Its client is gone: nobody to answer."""
        if not parked.done:
            self._remove(parked)

    def waiting_among(self, nodes: set[str]) -> set[str]:
        """The nodes of ``nodes`` with a poll parked (at the cost of the
        smaller of the two)."""
        return self._by_node.keys() & nodes

    def wake(self, node_id: str) -> None:
        """The node's netmap may have changed: answer whoever now has news."""
        for parked in list(self._by_node.get(node_id, ())):
            if not self._exists(node_id):
                self._finish(parked, None)  # deleted while it waited
            elif self._ready(node_id, parked.since):
                self._finish(parked, self._fetch(node_id, parked.since))

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for waiting in list(self._by_node.values()):
            for parked in waiting:
                self._finish(parked, None)

    # -- inside -------------------------------------------------------------------

    def _finish(self, parked: Parked, found: bytes | None) -> None:
        if parked.done:
            return
        self._remove(parked)
        try:
            parked.answer(found)
        except Exception:  # one answer failing must not stop the others
            log.exception("answering a long-poll failed")

    def _remove(self, parked: Parked) -> None:
        parked.done = True
        self.count -= 1
        waiting = self._by_node.get(parked.node_id)
        if waiting is not None:
            waiting.remove(parked)
            if not waiting:
                del self._by_node[parked.node_id]

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._deadlines and self._loop is not None:
            self._timer = self._loop.call_at(self._deadlines[0][0], self._expire)

    def _expire(self) -> None:
        self._timer = None
        assert self._loop is not None
        now = self._loop.time() + CLOCK_SLACK_S
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, _, parked = heapq.heappop(heap)
            self._finish(parked, None)
        while heap and heap[0][2].done:
            heapq.heappop(heap)
        self._arm()

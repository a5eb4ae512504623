"""Free heap pages go back to the kernel every few seconds.

The controller's memory is mostly long-lived (a node's state, an agent's
connection), but its batches are not: writing 10,000 agents' heartbeats or a
minute of their statistics builds tens of megabytes of rows, freed a moment
later. glibc keeps freed memory inside the heap, where the long-lived
allocations made meanwhile pin it, so without help the process stays at the
high-water mark of its largest batch. ``malloc_trim`` hands back every whole
free page, wherever it lies in the heap (``madvise``), without moving
anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable

log = logging.getLogger("skylan.controller")

SLOW_TRIM_S = 0.05  # a trim that took longer is logged


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


class HeapTrim:
    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self.last_s = 0.0  # how long the last trim took
        self._trim = _malloc_trim()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._trim is not None:
            self._task = asyncio.create_task(self._run(), name="heap-trim")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def trim(self) -> None:
        if self._trim is None:
            return
        started = time.perf_counter()
        self._trim(0)
        self.last_s = time.perf_counter() - started
        if self.last_s > SLOW_TRIM_S:
            log.warning("returning free heap pages took %.0f ms", self.last_s * 1000)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            # (ctypes lets go of the GIL for the call: the loop runs meanwhile)
            await asyncio.to_thread(self.trim)

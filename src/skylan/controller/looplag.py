"""How late the event loop runs: every request waits behind whatever holds
it, so its lag is the controller's health in one number. Exposed as a metric;
and when the loop has not come round for ``warn_s``, a watchdog thread logs
what it is doing (its Python stack), once per stall."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback

log = logging.getLogger("skylan.controller")

TICK_S = 0.05
MAX_SNAPSHOTS = 6


class LoopLag:
    def __init__(self, warn_s: float = 1.0) -> None:
        self.warn_s = warn_s
        self.worst_s = 0.0  # the largest lag since the last read
        self._ticked = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._loop_thread = 0
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._ticked = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="loop-lag")
        self._watchdog = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._watchdog.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._watchdog is not None:
            self._watchdog.join(2)

    def take_worst(self) -> float:
        worst, self.worst_s = self.worst_s, 0.0
        return worst

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(TICK_S)
            self._ticked = time.monotonic()
            lag = time.perf_counter() - started - TICK_S
            self.worst_s = max(self.worst_s, lag)
            if lag > self.warn_s:
                log.warning("event loop blocked for %.2f s", lag)

    def _watch(self) -> None:
        """Log the loop thread's stack (and the other threads', which may hold
        the GIL it waits for) a few times during a stall: one snapshot shows
        where it is, several show whether it is stuck there."""
        stall = 0.0
        shown = 0
        while not self._stop.wait(self.warn_s / 4):
            stalled = time.monotonic() - self._ticked
            if stalled <= self.warn_s:
                continue
            if self._ticked != stall:
                stall, shown = self._ticked, 0
            if shown >= MAX_SNAPSHOTS:
                continue
            shown += 1
            me = threading.get_ident()
            frames = sys._current_frames()
            parts = []
            for ident, frame in frames.items():
                if ident == me:
                    continue
                depth = 12 if ident == self._loop_thread else 4
                inner = traceback.extract_stack(frame)[-depth:]
                name = "event loop" if ident == self._loop_thread else _thread_name(ident)
                parts.append(f"[{name}]\n" + "".join(traceback.format_list(inner)))
            log.warning("event loop stalled %.1f s so far; threads:\n%s", stalled, "".join(parts))


def _thread_name(ident: int) -> str:
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread.name
    return str(ident)

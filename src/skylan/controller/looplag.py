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
        reported = 0.0
        while not self._stop.wait(self.warn_s / 2):
            stalled = time.monotonic() - self._ticked
            if stalled > self.warn_s and self._ticked != reported:
                reported = self._ticked
                frame = sys._current_frames().get(self._loop_thread)
                inner = traceback.extract_stack(frame)[-12:] if frame else []
                stack = "".join(traceback.format_list(inner)) or "?"
                log.warning("event loop stalled %.1f s so far, in:\n%s", stalled, stack)

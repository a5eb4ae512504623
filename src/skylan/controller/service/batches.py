"""Work kept in memory and written in batches on a timer (heartbeats,
statistics): one loop that runs the batch, survives its failures, and writes
what is left when the controller stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("skylan.controller.batches")


class BatchLoop:
    def __init__(
        self,
        name: str,
        interval: float,
        batch: Callable[[], Awaitable[None]],
        final: Callable[[], Awaitable[None]],
    ) -> None:
        """``batch`` every ``interval`` s; ``final`` (what is still pending)
        once on stop."""
        self.name = name
        self.interval = interval
        self._batch = batch
        self._final = final
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self._final()
        except Exception:
            log.exception("the last %s batch failed", self.name)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._batch()
            except Exception:
                log.exception("writing %s failed; retrying", self.name)

"""Heap trimming (controller/heaptrim.py) gives freed heap pages back: what a
batch allocated and freed, pinned in the heap by a long-lived allocation made
after it, leaves the process's RSS when trimmed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from skylan.controller.heaptrim import HeapTrim


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_freed_batch_memory_leaves_the_process() -> None:
    trim = HeapTrim()
    if trim._trim is None:
        pytest.skip("not glibc: nothing to trim")
    trim.trim()
    batch = [bytes([i % 251]) * 3000 for i in range(20_000)]  # 60 MB from the heap
    keeper = bytes(3000)  # allocated after: the heap cannot shrink from its top
    before = rss_kib()
    del batch
    freed = rss_kib()
    trim.trim()
    after = rss_kib()
    assert before - freed < 10_000, (before, freed)  # free() alone kept it
    assert before - after > 40_000, (before, freed, after)
    assert keeper  # (alive until here)


def test_the_loop_trims_every_interval() -> None:
    async def run() -> float:
        trim = HeapTrim(every_s=0.05)
        trim.start()
        await asyncio.sleep(0.3)
        await trim.stop()
        return trim.last_s

    assert asyncio.run(run()) > 0

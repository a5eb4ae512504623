"""Parked long-polls (controller/parking.py): each is answered exactly once,
with news when its node's netmap changes, with None when its time runs out,
never after its client left."""

from __future__ import annotations

import asyncio
from typing import Any

from skylan.controller.parking import Parking


class Book:
    """The feed's side: a version per node, a netmap per version."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {"a": 1, "b": 1}

    def ready(self, node: str, since: int) -> bool:
        return self.versions.get(node, 0) > since

    def fetch(self, node: str, since: int) -> bytes:
        return f"{node}@{self.versions[node]}".encode()

    def parking(self) -> Parking:
        return Parking(self.ready, self.fetch, self.versions.__contains__)


def run(test: Any) -> None:
    asyncio.run(test())


def test_news_already_there_is_answered_at_once() -> None:
    async def test() -> None:
        book, got = Book(), []
        assert book.parking().park("a", 0, 10, got.append) is None
        assert got == [b"a@1"]

    run(test)


def test_a_change_wakes_only_whom_it_concerns() -> None:
    async def test() -> None:
        book, got = Book(), []
        parking = book.parking()
        parking.park("a", 1, 10, lambda found: got.append(("a", found)))
        parking.park("b", 1, 10, lambda found: got.append(("b", found)))
        assert parking.count == 2
        parking.wake("a")  # nothing new yet: it keeps waiting
        assert got == []
        book.versions["a"] = 2
        parking.wake("a")
        parking.wake("a")
        assert got == [("a", b"a@2")]
        assert parking.count == 1

    run(test)


def test_time_runs_out_in_deadline_order() -> None:
    async def test() -> None:
        book, got = Book(), []
        parking = book.parking()
        parking.park("a", 1, 0.2, lambda found: got.append(("slow", found)))
        parking.park("b", 1, 0.05, lambda found: got.append(("quick", found)))
        await asyncio.sleep(0.1)
        assert got == [("quick", None)]
        await asyncio.sleep(0.2)
        assert got == [("quick", None), ("slow", None)]
        assert parking.count == 0

    run(test)


def test_a_cancelled_poll_is_never_answered() -> None:
    async def test() -> None:
        book, got = Book(), []
        parking = book.parking()
        parked = parking.park("a", 1, 0.05, got.append)
        assert parked is not None
        parking.cancel(parked)
        book.versions["a"] = 2
        parking.wake("a")
        await asyncio.sleep(0.1)
        assert got == []
        assert parking.count == 0

    run(test)


def test_a_deleted_node_and_a_stop_answer_none() -> None:
    async def test() -> None:
        book, got = Book(), []
        parking = book.parking()
        parking.park("a", 1, 10, got.append)
        parking.park("b", 1, 10, got.append)
        del book.versions["a"]
        parking.wake("a")
        assert got == [None]
        parking.stop()
        assert got == [None, None]
        assert parking.count == 0

    run(test)


def test_one_failing_answer_does_not_stop_the_others() -> None:
    async def test() -> None:
        book, got = Book(), []
        parking = book.parking()

        def broken(found: bytes | None) -> None:
            raise RuntimeError("a connection's bug")

        parking.park("a", 1, 0.05, broken)
        parking.park("b", 1, 0.05, got.append)
        await asyncio.sleep(0.1)
        assert got == [None]

    run(test)


def test_many_polls_each_answered_once_and_the_heap_stays_small() -> None:
    async def test() -> None:
        book, got = Book(), []
        parking = book.parking()
        for round_ in range(5):
            for i in range(2000):
                parking.park("a", round_ + 1, 30, lambda found, i=i: got.append(i))
            book.versions["a"] += 1
            parking.wake("a")
        assert len(got) == 10_000
        assert parking.count == 0
        assert len(parking._deadlines) <= 2 * 2000 + 1024

    run(test)

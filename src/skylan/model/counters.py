"""Drop counters by reason: every packet the tunnel refuses is counted here,
so "where did my packets go" has an answer in ``skylan status`` and metrics."""

from __future__ import annotations

from collections import Counter


class DropCounters:
    def __init__(self) -> None:
        self.by_reason: Counter[str] = Counter()

    def add(self, reason: str, n: int = 1) -> None:
        self.by_reason[reason] += n

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())

    def __getitem__(self, reason: str) -> int:
        return self.by_reason[reason]

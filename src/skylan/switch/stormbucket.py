"""Storm control: a token bucket of flooded frames per second per port."""

from __future__ import annotations


class StormBucket:
    def __init__(self, pps: int, now: float) -> None:
        self.pps = pps
        self.tokens = float(max(pps, 1))
        self.last = now

    def allow(self, now: float) -> bool:
        return self.take(1, now) == 1

    def take(self, count: int, now: float) -> int:
        """How many of ``count`` frames arriving at ``now`` may pass (the
        first ones: the bucket does not refill within one instant)."""
        if self.pps <= 0:
            return count  # storm control off
        self.tokens = min(float(self.pps), self.tokens + (now - self.last) * self.pps)
        self.last = now
        granted = min(count, int(self.tokens))
        self.tokens -= granted
        return granted

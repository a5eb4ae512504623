"""Storm control: a token bucket of flooded frames per second per port."""

from __future__ import annotations


class StormBucket:
    def __init__(self, pps: int, now: float) -> None:
        self.pps = pps
        self.tokens = float(max(pps, 1))
        self.last = now

    def allow(self, now: float) -> bool:
        if self.pps <= 0:
            return True  # storm control off
        self.tokens = min(float(self.pps), self.tokens + (now - self.last) * self.pps)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

"""Sliding replay window over 64-bit message counters.

Counters arrive out of order over UDP (more so with many worker processes
and chunked super-frames), so the window is wide: 8192 counters, four times
WireGuard's. The bitmap is a Python int, whose shifts are fast enough at
super-frame rates.
"""

from __future__ import annotations

WINDOW = 8192
_MASK = (1 << WINDOW) - 1


class ReplayWindow:
    def __init__(self) -> None:
        self.top = -1  # highest counter accepted so far
        self._bits = 0  # bit i set: counter (top - i) was accepted

    def check(self, counter: int) -> bool:
        """Whether ``counter`` would be accepted (new and not too old)."""
        if counter > self.top:
            return True
        age = self.top - counter
        return age < WINDOW and not (self._bits >> age) & 1

    def accept(self, counter: int) -> bool:
        """Mark ``counter`` as seen; False if it is a replay or too old.

        Call only after the packet authenticated, or a forger could burn
        counters that legitimate packets still need.
        """
        if counter > self.top:
            shift = counter - self.top
            self._bits = ((self._bits << shift) | 1) & _MASK if shift < WINDOW else 1
            self.top = counter
            return True
        age = self.top - counter
        if age >= WINDOW or (self._bits >> age) & 1:
            return False
        self._bits |= 1 << age
        return True

    def snapshot(self) -> tuple[int, bytes]:
        """The window as another implementation takes it over: the top (-1
        while empty) and the bitmap, little-endian, bit i for ``top - i``."""
        return self.top, self._bits.to_bytes(WINDOW // 8, "little")

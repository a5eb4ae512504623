"""Bounded reassembly of chunked messages.

A sealed super-frame is split into UDP-sized chunks under one AEAD tag, so the
receiver must hold chunks until a set is complete. An attacker (or a lossy
path) can send endless partial sets; the bounds here keep memory fixed: a
few sets per session, a byte budget, and a short timeout, with the oldest set
evicted first. Every discarded set is counted.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from skylan.model.counters import DropCounters


@dataclass
class _Partial:
    count: int
    created: float
    chunks: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class Reassembler:
    def __init__(
        self,
        drops: DropCounters,
        *,
        max_sets: int = 8,
        max_bytes: int = 1 << 20,
        timeout: float = 0.5,
    ) -> None:
        self._sets: OrderedDict[int, _Partial] = OrderedDict()
        self._drops = drops
        self.max_sets = max_sets
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.bytes_held = 0

    def __len__(self) -> int:
        return len(self._sets)

    def add(
        self, key: int, index: int, count: int, chunk: bytes | memoryview, now: float
    ) -> bytes | None:
        """Store one chunk; return the whole message once every chunk is in."""
        partial = self._sets.get(key)
        if partial is None:
            self.expire(now)  # only when a set starts: keeps the per-chunk path short
            while len(self._sets) >= self.max_sets:
                self._evict_oldest("reassembly_evicted")
            partial = self._sets[key] = _Partial(count, now)
        elif partial.count != count:
            self._drops.add("reassembly_mismatch")
            return None
        if index in partial.chunks:
            self._drops.add("reassembly_duplicate")
            return None
        while self.bytes_held + len(chunk) > self.max_bytes and len(self._sets) > 1:
            self._evict_oldest("reassembly_evicted", keep=key)
        if self.bytes_held + len(chunk) > self.max_bytes:
            self._drop(key, "reassembly_evicted")
            return None
        partial.chunks[index] = bytes(chunk)
        partial.size += len(chunk)
        self.bytes_held += len(chunk)
        if len(partial.chunks) < count:
            return None
        self._remove(key)
        parts = [partial.chunks[i] for i in range(count)]
        if any(len(p) != len(parts[0]) for p in parts[:-1]) or len(parts[-1]) > len(parts[0]):
            self._drops.add("reassembly_bad_sizes")
            return None
        return b"".join(parts)

    def expire(self, now: float) -> None:
        while self._sets:
            key, partial = next(iter(self._sets.items()))
            if now - partial.created < self.timeout:
                break
            self._drop(key, "reassembly_timeout")

    def next_deadline(self) -> float | None:
        if not self._sets:
            return None
        return next(iter(self._sets.values())).created + self.timeout

    def _evict_oldest(self, reason: str, keep: int | None = None) -> None:
        for key in self._sets:
            if key != keep:
                self._drop(key, reason)
                return

    def _drop(self, key: int, reason: str) -> None:
        self._remove(key)
        self._drops.add(reason)

    def _remove(self, key: int) -> None:
        partial = self._sets.pop(key)
        self.bytes_held -= partial.size

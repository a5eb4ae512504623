"""Bounded reassembly of chunked messages.

A sealed super-frame is split into UDP-sized chunks under one AEAD tag, so the
receiver must hold chunks until a set is complete. An attacker (or a lossy
path) can send endless partial sets; the bounds here keep memory fixed: a
few sets per session, a byte budget, and a short timeout, with the oldest set
evicted first. Every discarded set is counted.

Chunks are copied once, straight to their place in one buffer per set (every
chunk but the last has the same size, so chunk ``i`` starts at ``i * size``);
the completed message is handed out as a view of that buffer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from skylan.model.counters import DropCounters
from skylan.tunnel import segments


class _Partial:
    __slots__ = ("buf", "count", "created", "last", "last_len", "seen", "size", "stored")

    def __init__(self, count: int, created: float) -> None:
        self.count = count
        self.created = created
        self.size = 0  # length of every chunk but the last; 0 until one arrives
        self.buf: bytearray | None = None
        self.last: bytes | None = None  # the last chunk, if it came before the size
        self.last_len = 0
        self.seen = 0  # bit i set: chunk i is in
        self.stored = 0  # bytes received, for the budget


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
    ) -> memoryview | None:
        """Store one chunk; return the whole message once every chunk is in."""
        return self.add_many(key, count, ((index, chunk),), now)[0]

    def add_many(
        self,
        key: int,
        count: int,
        chunks: Sequence[tuple[int, bytes | memoryview]],
        now: float,
    ) -> tuple[memoryview | None, int]:
        """Store chunks of one message (a GRO batch brings many at once).

        Returns the whole message once every chunk is in (else None) and how
        many of ``chunks`` were used: storing stops when the message is
        complete, so what follows is handled as if it came later, exactly as
        chunk-by-chunk delivery would. The set's bookkeeping (lookup, budget)
        is done once per call, so a batch costs little more per chunk than the
        copy itself.
        """
        n = 0
        for _, chunk in chunks:
            n += len(chunk)
        partial = self._admit(key, count, len(chunks), n, now)
        if partial is None:
            return None, len(chunks)
        last_index = count - 1
        complete = (1 << count) - 1
        stored = 0
        used = 0
        for index, chunk in chunks:
            used += 1
            bit = 1 << index
            if partial.seen & bit:
                self._drops.add("reassembly_duplicate")
                continue
            size = partial.size
            length = len(chunk)
            if size and index != last_index and length == size:  # the common case, inline
                assert partial.buf is not None
                start = index * size
                partial.buf[start : start + size] = chunk
            elif not self._place(partial, index, chunk):
                self.bytes_held += stored
                partial.stored += stored
                self._drop(key, "reassembly_bad_sizes")
                return None, used
            partial.seen |= bit
            stored += length
            if partial.seen == complete:
                break
        partial.stored += stored
        self.bytes_held += stored
        if partial.seen != complete:
            return None, used
        return self._finish(key, partial), used

    def add_block(
        self, key: int, count: int, first: int, block: segments.Bytes, now: float
    ) -> tuple[memoryview | None, int] | None:
        """Store chunks ``first``, ``first + 1``, … of one message, one per row
        of ``block`` (a GRO batch's payloads, headers stripped) with one copy.

        Only the plain case is taken, where :meth:`add_many` would store every
        row in turn: none of them seen yet, none the (possibly shorter) last
        chunk, all of the set's chunk size. Otherwise None: the caller goes
        chunk by chunk instead, so the outcome is always the same.
        """
        rows, size = block.shape
        partial = self._sets.get(key)
        mask = ((1 << rows) - 1) << first
        if first + rows >= count:
            return None
        if partial is not None and (
            partial.count != count
            or partial.seen & mask
            or (partial.size or size) != size
            or (partial.last is not None and partial.last_len > size)
        ):
            return None
        partial = self._admit(key, count, rows, rows * size, now)
        if partial is None:
            return None, rows
        if partial.buf is None:
            partial.size = size
            partial.buf = bytearray(count * size)
        target: segments.Bytes = np.frombuffer(partial.buf, np.uint8, rows * size, first * size)
        target.reshape(rows, size)[:] = block
        partial.seen |= mask
        partial.stored += rows * size
        self.bytes_held += rows * size
        if partial.seen != (1 << count) - 1:
            return None, rows
        return self._finish(key, partial), rows

    def _admit(self, key: int, count: int, chunks: int, nbytes: int, now: float) -> _Partial | None:
        """The set ``key`` belongs to, opened if new and made room for;
        None (counted) if the chunks must be dropped."""
        partial = self._sets.get(key)
        if partial is None:
            self.expire(now)  # only when a set starts: keeps the per-chunk path short
            while len(self._sets) >= self.max_sets:
                self._evict_oldest("reassembly_evicted")
            partial = self._sets[key] = _Partial(count, now)
        elif partial.count != count:
            for _ in range(chunks):
                self._drops.add("reassembly_mismatch")
            return None
        while self.bytes_held + nbytes > self.max_bytes and len(self._sets) > 1:
            self._evict_oldest("reassembly_evicted", keep=key)
        if self.bytes_held + nbytes > self.max_bytes:
            self._drop(key, "reassembly_evicted")
            return None
        return partial

    def _finish(self, key: int, partial: _Partial) -> memoryview:
        """The complete message of set ``key``, which is closed."""
        self._remove(key)
        if partial.buf is None:  # a single-chunk "set" (count 1 is never chunked)
            return memoryview(partial.last or b"")
        if partial.last is not None:
            start = (partial.count - 1) * partial.size
            partial.buf[start : start + partial.last_len] = partial.last
        total = (partial.count - 1) * partial.size + partial.last_len
        return memoryview(partial.buf)[:total]

    @staticmethod
    def _place(partial: _Partial, index: int, chunk: bytes | memoryview) -> bool:
        n = len(chunk)
        if index == partial.count - 1:  # the last chunk may be shorter
            if partial.size and n > partial.size:
                return False
            partial.last_len = n
            if partial.buf is None:
                partial.last = bytes(chunk)
            else:
                start = index * partial.size
                partial.buf[start : start + n] = chunk
            return True
        if not partial.size:
            if partial.last is not None and partial.last_len > n:
                return False
            partial.size = n
            partial.buf = bytearray(partial.count * n)
        elif n != partial.size:
            return False
        assert partial.buf is not None
        partial.buf[index * n : index * n + n] = chunk
        return True

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
        self.bytes_held -= partial.stored

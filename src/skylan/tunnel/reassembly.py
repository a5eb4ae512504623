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

import functools
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from skylan.model.counters import DropCounters
from skylan.tunnel import segments
from skylan.tunnel.wire import fec_groups

RESCUED_KEPT = 64


class _Partial:
    __slots__ = (
        "buf",
        "count",
        "created",
        "last",
        "last_len",
        "parity",
        "redundant",
        "seen",
        "size",
        "stored",
    )

    def __init__(self, count: int, created: float) -> None:
        self.count = count
        self.created = created
        self.size = 0  # length of every chunk but the last; 0 until one arrives
        self.buf: bytearray | None = None
        self.last: bytes | None = None  # the last chunk, if it came before the size
        self.last_len = 0
        self.seen = 0  # bit i set: chunk i is in
        self.stored = 0  # bytes received, for the budget
        self.parity: dict[int, bytes] | None = None  # group -> XOR of its full chunks
        self.redundant = 0  # bit i set: chunk i was rebuilt or came as a copy


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
        self.last_loss: float | None = None  # a set lost, or rebuilt from parity
        self.repaired = 0  # chunks rebuilt from parity
        self.spares = 0  # redundant datagrams that were not needed
        self._rescued: OrderedDict[int, None] = OrderedDict()  # see was_rescued

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
                if partial.redundant & bit:  # redundancy was quicker: no duplicate
                    partial.redundant &= ~bit  # (but a second arrival is one)
                    self.spares += 1
                else:
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
            if partial.parity:  # (as if each chunk came alone: the same outcome)
                partial.stored += stored
                self.bytes_held += stored
                stored = 0
                whole = self._repair(key, partial, now)
                if whole is not None:
                    return whole, used
        partial.stored += stored
        self.bytes_held += stored
        if partial.seen != complete:
            return (self._repair(key, partial, now) if partial.parity else None), used
        return self._finish(key, partial), used

    def add_block(
        self,
        key: int,
        count: int,
        first: int,
        block: segments.Bytes,
        now: float,
        *,
        tail: bytes | memoryview | None = None,
    ) -> tuple[memoryview | None, int] | None:
        """Store chunks ``first``, ``first + 1``, … of one message, one per row
        of ``block`` (a GRO batch's payloads, headers stripped) with one copy;
        and ``tail``, the message's last chunk, when the rows end right before
        it (it ends the GRO batch, often shorter: one call instead of a second
        one for it alone).

        Only the plain case is taken, where :meth:`add_many` would store every
        chunk in turn: none of them seen yet, all of the set's chunk size (the
        tail no longer), no parity waiting to rebuild one. Otherwise None: the
        caller goes chunk by chunk instead, so the outcome is always the same.
        """
        rows, size = block.shape
        end = first + rows
        if end >= count or (tail is not None and (end != count - 1 or len(tail) > size)):
            return None
        partial = self._sets.get(key)
        mask = ((1 << rows) - 1) << first
        if tail is not None:
            mask |= 1 << end
        if partial is not None and (
            partial.count != count
            or partial.parity  # chunk by chunk, so parity rebuilds exactly when it would
            or partial.seen & mask
            or (partial.size or size) != size
            or (partial.last is not None and partial.last_len > size)
        ):
            return None
        chunks, nbytes = rows, rows * size
        if tail is not None:
            chunks, nbytes = rows + 1, nbytes + len(tail)
        partial = self._admit(key, count, chunks, nbytes, now)
        if partial is None:
            return None, chunks
        if partial.buf is None:
            partial.size = size
            partial.buf = bytearray(count * size)
        target: segments.Bytes = np.frombuffer(partial.buf, np.uint8, rows * size, first * size)
        target.reshape(rows, size)[:] = block
        if tail is not None:
            start = end * size
            partial.buf[start : start + len(tail)] = tail
            partial.last_len = len(tail)
        partial.seen |= mask
        partial.stored += nbytes
        self.bytes_held += nbytes
        if partial.seen != (1 << count) - 1:
            return (self._repair(key, partial, now) if partial.parity else None), chunks
        return self._finish(key, partial), chunks

    def add_redundant(
        self, key: int, count: int, index: int, chunk: bytes | memoryview, now: float
    ) -> memoryview | None:
        """A parity chunk (index < ``fec_groups(count)``) or the copy of the
        last chunk (index ``count - 1``); the whole message once it can be
        rebuilt. Redundancy that comes too late to matter is only counted."""
        partial = self._sets.get(key)
        if index == count - 1:
            if partial is not None and partial.seen & (1 << index):
                self.spares += 1
                return None
            whole, _ = self.add_many(key, count, ((index, chunk),), now)
            partial = self._sets.get(key)
            if partial is not None:
                partial.redundant |= 1 << index
            elif whole is not None:  # the copy completed it: the original may follow
                self._rescue(key)
            return whole
        if partial is not None and partial.parity is not None and index in partial.parity:
            self.spares += 1
            return None
        partial = self._admit(key, count, 1, len(chunk), now)
        if partial is None:
            return None
        if partial.size and len(chunk) != partial.size:
            self._drop(key, "reassembly_bad_sizes")
            return None
        if not partial.size:
            if partial.last is not None and partial.last_len > len(chunk):
                self._drop(key, "reassembly_bad_sizes")
                return None
            partial.size = len(chunk)
            partial.buf = bytearray(count * len(chunk))
        if partial.parity is None:
            partial.parity = {}
        partial.parity[index] = bytes(chunk)
        partial.stored += len(chunk)
        self.bytes_held += len(chunk)
        return self._repair(key, partial, now)

    def _repair(self, key: int, partial: _Partial, now: float) -> memoryview | None:
        """Rebuild every full chunk that is the only one missing from a group
        whose parity is in; the whole message if that completes it."""
        assert partial.parity is not None and partial.buf is not None
        count, size = partial.count, partial.size
        groups = fec_groups(count)
        missing = ((1 << (count - 1)) - 1) & ~partial.seen
        if not missing or not groups:
            return None
        rows: segments.Bytes = np.frombuffer(partial.buf, np.uint8, (count - 1) * size)
        rows = rows.reshape(count - 1, size)
        for group, xor in partial.parity.items():
            lost = missing & _group_mask(count - 1, groups, group)
            if not lost or lost & (lost - 1):  # none, or more than one: cannot help
                continue
            index = lost.bit_length() - 1
            # the missing row is still zeros, so the XOR of the whole group is
            # the XOR of the others
            members = rows[group::groups]
            rows[index] = np.bitwise_xor.reduce(members, axis=0) ^ np.frombuffer(xor, np.uint8)
            partial.seen |= lost
            partial.redundant |= lost
            self.repaired += 1
            self.last_loss = now
        if partial.seen != (1 << count) - 1:
            return None
        return self._finish(key, partial)

    def _admit(self, key: int, count: int, chunks: int, nbytes: int, now: float) -> _Partial | None:
        """The set ``key`` belongs to, opened if new and made room for;
        None (counted) if the chunks must be dropped."""
        partial = self._sets.get(key)
        if partial is None:
            self.expire(now)  # only when a set starts: keeps the per-chunk path short
            while len(self._sets) >= self.max_sets:
                self._evict_oldest("reassembly_evicted")
                self.last_loss = now
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

    def was_rescued(self, key: int) -> bool:
        """Whether message ``key`` was completed with redundancy: its own
        chunks may still be on their way, and are spares, not replays."""
        return key in self._rescued

    def _rescue(self, key: int) -> None:
        self._rescued[key] = None
        if len(self._rescued) > RESCUED_KEPT:
            self._rescued.popitem(last=False)

    def _finish(self, key: int, partial: _Partial) -> memoryview:
        """The complete message of set ``key``, which is closed."""
        self._remove(key)
        if partial.redundant:
            self._rescue(key)
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
            self.last_loss = now

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


@functools.cache
def _group_mask(rows: int, groups: int, group: int) -> int:
    """Bit i set for each row i of ``group`` (i = group, group + groups, …)."""
    return sum(1 << i for i in range(group, rows, groups))

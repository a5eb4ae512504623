"""Statistics rows summed in memory until the next batch writes them.

At 10,000 agents reporting every 10 s, about 70,000 rows wait for each batch
(one per node, peer and bucket). As a dict of Python lists each cost about
450 bytes; here a row is its key, an index, and six numbers in two flat
arrays (about 200 bytes).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator

Key = tuple[str, str, int]  # node, peer (or the total / a port), minute
Row = tuple[str, str, int, int, int, int, int, int, float | None]

COUNTERS = 5  # rx_bytes, tx_bytes, rx_packets, tx_packets, drops


class PendingRows:
    __slots__ = ("_counts", "_index", "_rtts")

    def __init__(self) -> None:
        self._index: dict[Key, int] = {}
        self._counts = array("q")  # COUNTERS per row
        self._rtts = array("d")  # the latest round-trip time (NaN: none)

    def __len__(self) -> int:
        return len(self._index)

    def add(self, key: Key, counts: tuple[int, int, int, int, int], rtt: float | None) -> None:
        row = self._index.get(key)
        if row is None:
            row = self._index[key] = len(self._rtts)
            self._counts.extend(counts)
            self._rtts.append(math.nan if rtt is None else rtt)
            return
        base = row * COUNTERS
        for i, value in enumerate(counts):
            self._counts[base + i] += value
        if rtt is not None:
            self._rtts[row] = rtt

    def rows(self) -> Iterator[Row]:
        counts, rtts = self._counts, self._rtts
        for (node, peer, minute), row in self._index.items():
            b = row * COUNTERS
            rtt = rtts[row]
            yield (
                node,
                peer,
                minute,
                counts[b],
                counts[b + 1],
                counts[b + 2],
                counts[b + 3],
                counts[b + 4],
                None if math.isnan(rtt) else rtt,
            )

    def take_back(self, other: PendingRows) -> None:
        """Rows a failed batch did not write, summed in again (a round-trip
        time here stays: it is the newer)."""
        for node, peer, minute, rx_b, tx_b, rx_p, tx_p, drops, rtt in other.rows():
            key = (node, peer, minute)
            row = self._index.get(key)
            keep = row is not None and not math.isnan(self._rtts[row])
            self.add(key, (rx_b, tx_b, rx_p, tx_p, drops), None if keep else rtt)

"""The reflexive-address service: on the controller's UDP port (the same
number as its HTTPS port), it tells a node where its datagrams come from.

Agents ask from their data plane's own sockets, so the answer is the outside
of the very NAT mapping their tunnels use; they report it as a candidate
(see :mod:`skylan.model.reflexive` for the messages and why they are safe).
Every replica answers from memory: no database work, nothing to replicate.

Anything that is not an authentic question from a known, not denied node is
dropped and counted, as is anything beyond a per-source and a total rate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from typing import Any, cast

from skylan.controller.state.store import State
from skylan.model.reflexive import (
    ReflexiveError,
    decode_request,
    encode_answer,
    stored_key,
)

log = logging.getLogger("skylan.controller")

PER_SOURCE_RATE = 20.0  # questions per second from one IP (a NAT may hide many nodes)
PER_SOURCE_BURST = 64.0
TOTAL_RATE = 5000.0
SOURCES_KEPT = 4096  # rate buckets, least recently used dropped


class _Bucket:
    __slots__ = ("at", "tokens")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at

    def take(self, now: float, rate: float, burst: float) -> bool:
        self.tokens = min(burst, self.tokens + (now - self.at) * rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class AddressReflector(asyncio.DatagramProtocol):
    def __init__(self, state: State, clock: Callable[[], float] = time.monotonic) -> None:
        self.state = state
        self.clock = clock
        self.answered = 0
        self.drops: Counter[str] = Counter()
        self._sources: OrderedDict[str, _Bucket] = OrderedDict()
        self._total = _Bucket(TOTAL_RATE, clock())
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's UDP transport is one without being a subclass)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        answer = self.answer(data, (str(addr[0]), int(addr[1])))
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)

    def error_received(self, exc: Exception) -> None:
        self.drops["send_error"] += 1

    def answer(self, data: bytes, source: tuple[str, int]) -> bytes | None:
        """The answer to send back, or None (dropped and counted)."""
        now = self.clock()
        if not self._allowed(source[0], now):
            self.drops["rate_limited"] += 1
            return None
        try:
            request = decode_request(data)
        except ReflexiveError as exc:
            self.drops[exc.reason] += 1
            return None
        node = self.state.nodes.get(request.node_id)
        if node is None or node.status == "denied":
            self.drops["unknown_node"] += 1
            return None
        key = stored_key(node.credential_hash)
        if not request.authentic(key):
            self.drops["bad_mac"] += 1
            return None
        self.answered += 1
        host = source[0].removeprefix("::ffff:")
        return encode_answer(request.nonce, (host, source[1]), key)

    def _allowed(self, ip: str, now: float) -> bool:
        if not self._total.take(now, TOTAL_RATE, TOTAL_RATE):
            return False
        bucket = self._sources.get(ip)
        if bucket is None:
            bucket = self._sources[ip] = _Bucket(PER_SOURCE_BURST, now)
            if len(self._sources) > SOURCES_KEPT:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(ip)
        return bucket.take(now, PER_SOURCE_RATE, PER_SOURCE_BURST)

    async def serve(self, host: str, port: int) -> None:
        """Listen on ``host``'s UDP ``port``; a controller that cannot (the
        port taken) still serves everything else, and says so."""
        loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        except OSError as exc:
            log.warning("no reflexive-address service on UDP %s:%d: %s", host, port, exc)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

"""Which handshake initiations the engine spends Diffie-Hellman work on.

Below ``handshake_load_threshold`` initiations a second every one with a valid
MAC1 is answered. Above it the engine is *under load*: an initiator must first
prove its address with a cookie (MAC2, as WireGuard does), and then each source
address gets a token bucket, so one address cannot take every answer. Only the
engine's clock goes in; nothing here touches the network.
"""

from __future__ import annotations

from collections import OrderedDict, deque

from skylan.tunnel.config import TunnelConfig

MAX_SOURCES = 4096  # token buckets kept (the least recently used is dropped)


class HandshakeAdmission:
    def __init__(self, config: TunnelConfig) -> None:
        self.config = config
        self.processed = 0  # initiations that cost us DH work
        self._recent: deque[float] = deque()  # when each of the last second's came
        self._sources: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when

    def under_load(self, now: float) -> bool:
        while self._recent and now - self._recent[0] > 1.0:
            self._recent.popleft()
        return len(self._recent) >= self.config.handshake_load_threshold

    def source_allows(self, source: str, now: float) -> bool:
        """Take a token from ``source``'s bucket, if it has one."""
        burst = self.config.handshake_per_source_burst
        tokens, last = self._sources.pop(source, (burst, now))
        tokens = min(burst, tokens + (now - last) * self.config.handshake_per_source_rate)
        allowed = tokens >= 1.0
        self._sources[source] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._sources) > MAX_SOURCES:
            self._sources.popitem(last=False)
        return allowed

    def processing(self, now: float) -> None:
        """An initiation is about to cost DH work."""
        self._recent.append(now)
        self.processed += 1

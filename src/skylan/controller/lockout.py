"""Backoff for sources that keep failing authentication.

Every secret skylan issues is 256-bit random, but a person may pick a weak
``SKYLAN_ADMIN_TOKEN`` or leak part of one, and an unlimited guessing rate also
costs the controller work. So each source address has a failure level that rises
by one per failed authentication (a wrong token, cookie, node credential, join
token or console login) and drains by one every ``forgive_s``. Above ``burst`` a
source is locked out, for ``base_s`` doubled with each further failure (up to
``max_s``): until then every request from it is answered 429 with
``Retry-After``, before any credential is looked at, so a locked-out guesser
learns nothing, not even from a correct guess.

Successes do not lower the level: an attacker holding one valid token must not
be able to wash out the failures of its guesses at another.

Pure and clock-injected; the table is bounded (least recently failed first out).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Source:
    level: float
    at: float  # when ``level`` was last brought up to date
    locked_until: float = 0.0


@dataclass(frozen=True)
class LockoutPolicy:
    burst: int = 10  # failures a source may make before any lockout
    forgive_s: float = 6.0  # one failure forgotten per this many seconds (10 a minute)
    base_s: float = 1.0  # the first lockout
    max_s: float = 300.0  # the longest lockout
    max_sources: int = 10_000  # sources remembered


class Lockout:
    def __init__(self, policy: LockoutPolicy | None = None) -> None:
        self.policy = policy or LockoutPolicy()
        self._sources: OrderedDict[str, _Source] = OrderedDict()

    def retry_after(self, source: str, now: float) -> int | None:
        """Whole seconds ``source`` must wait, or None if it may try now."""
        entry = self._sources.get(source)
        if entry is None or now >= entry.locked_until:
            return None
        return max(1, math.ceil(entry.locked_until - now))

    def failed(self, source: str, now: float) -> None:
        p = self.policy
        entry = self._sources.pop(source, None)
        if entry is None:
            entry = _Source(0.0, now)
        entry.level = max(0.0, entry.level - (now - entry.at) / p.forgive_s) + 1
        entry.at = now
        excess = entry.level - p.burst
        if excess > 0:
            entry.locked_until = now + min(p.base_s * 2 ** (math.ceil(excess) - 1), p.max_s)
        self._sources[source] = entry
        while len(self._sources) > p.max_sources:
            self._sources.popitem(last=False)

    def __len__(self) -> int:
        return len(self._sources)

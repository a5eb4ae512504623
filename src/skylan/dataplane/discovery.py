"""A lane's reflexive address: asked of the controller's reflector from the
lane's own socket (see :mod:`skylan.model.reflexive`), at start, again
every little while (a NAT may have restarted, the node moved), and sooner
while unanswered. Knows nothing of sockets: the lane sends and delivers."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from skylan.model.reflexive import ReflexiveError, decode_answer, encode_request

Address = tuple[str, int]

REASK_EVERY = 30.0
FIRST_RETRY = 0.5  # unanswered: again after 0.5, 1, 2, 4 … s (capped at REASK_EVERY)


@dataclass(frozen=True)
class ReflectorTarget:
    """Where and as whom to ask: the controller's UDP address, this node's
    id, and the key made from its credential."""

    address: Address
    node_id: str
    key: bytes


class AddressDiscovery:
    def __init__(
        self, target: ReflectorTarget, random_bytes: Callable[[int], bytes] = os.urandom
    ) -> None:
        self.target = target
        self.address: Address | None = None  # the last answer
        self.answers = 0
        self._random = random_bytes
        self._nonce: bytes | None = None
        self._unanswered = 0
        self.due = float("-inf")

    def question(self, now: float) -> bytes:
        """The datagram to send to ``target.address`` now; sets the next
        ``due`` as if it goes unanswered."""
        self._nonce = self._random(16)
        wait = min(REASK_EVERY, FIRST_RETRY * 2.0**self._unanswered)
        self._unanswered += 1
        self.due = now + wait
        return encode_request(self.target.node_id, self._nonce, self.target.key)

    def on_answer(self, data: bytes | memoryview, source: Address, now: float) -> bool:
        """Take an answer; True if it changes our address. Raises
        ReflexiveError (to be counted) for anything but the answer awaited."""
        if source != self.target.address:
            raise ReflexiveError("not_from_reflector")
        nonce, address = decode_answer(data, self.target.key)
        if nonce != self._nonce:
            raise ReflexiveError("stale_answer")
        self._nonce = None
        self._unanswered = 0
        self.answers += 1
        self.due = now + REASK_EVERY
        changed = address != self.address
        self.address = address
        return changed

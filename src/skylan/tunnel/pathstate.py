"""What the engine holds of a peer's paths (see :mod:`skylan.tunnel.paths`
for how they are chosen)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from skylan.tunnel.events import Address

MAX_CANDIDATES = 16  # per peer (the netmap's own bound)


class PathKind(IntEnum):
    """A candidate's kind, in order of preference."""

    LOCAL = 0  # an address on the peer's own interfaces
    REFLEXIVE = 1  # its NAT's outside, as something outside saw it
    RELAY = 2  # a relay's port for it: works through any NAT, costs a hop


class Round(IntEnum):
    """What a round of probes is for."""

    UPGRADE = 0  # is a better-ranked candidate usable now?
    CHECK = 1  # data went unanswered: is the endpoint still there?
    SEARCH = 2  # it did not answer: which candidate does?


@dataclass
class PathState:
    """One peer's paths: its candidates and the probes in flight."""

    candidates: dict[Address, PathKind] = field(default_factory=dict)
    probes: dict[bytes, tuple[Address, float]] = field(default_factory=dict)  # nonce ->
    round_end: float | None = None  # probes in flight until then
    round: Round = Round.UPGRADE
    acked: dict[Address, float] = field(default_factory=dict)  # this round: address -> RTT
    next_upgrade: float = float("-inf")
    upgrade_failures: int = 0
    checked_at: float = float("-inf")  # the last liveness round started then
    rtt: float | None = None  # of the current path, from its last answered probe

    def kind_of(self, address: Address | None) -> PathKind:
        """An address that is no candidate was learned from the peer's own
        packets: something outside saw it, like a reflexive one."""
        if address is None:
            return PathKind.RELAY
        return self.candidates.get(address, PathKind.REFLEXIVE)

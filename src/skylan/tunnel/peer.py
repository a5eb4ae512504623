"""Per-peer state held by the engine: sessions, the handshake in flight,
timers' reference points, the send queue and traffic statistics."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from skylan.tunnel.events import Address
from skylan.tunnel.noise import HandshakeIK
from skylan.tunnel.pathstate import PathKind, PathState
from skylan.tunnel.session import Session


@dataclass
class PendingHandshake:
    hs: HandshakeIK
    local_index: int
    sent_at: float
    mac1: bytes  # of the last initiation sent: authenticates a cookie reply
    attempt: int = 0  # retransmissions so far in this handshake effort


@dataclass
class PeerStats:
    tx_bytes: int = 0
    tx_packets: int = 0
    rx_bytes: int = 0
    rx_packets: int = 0
    handshakes: int = 0
    repaired: int = 0  # chunks rebuilt from parity in sessions since dropped


@dataclass
class Peer:
    public: bytes
    endpoint: Address | None = None
    current: Session | None = None
    previous: Session | None = None
    next: Session | None = None  # a responder session awaiting confirmation
    pending: PendingHandshake | None = None
    handshake_started: float | None = None  # first attempt of the current effort
    latest_timestamp: bytes | None = None
    cookie: bytes | None = None
    cookie_at: float = float("-inf")
    queue: deque[bytes] = field(default_factory=deque)
    last_sent: float = float("-inf")  # any packet, keepalives included
    last_received: float = float("-inf")  # any authenticated packet
    keepalive_due: float | None = None  # we got data and owe an answer
    awaiting_reply_since: float | None = None  # we sent data, no answer yet
    last_handshake: float | None = None
    rtt: float | None = None  # from the last handshake we initiated
    dead: bool = False
    fec_until: float = float("-inf")  # it asked for redundancy: send parity until then
    feedback_at: float = float("-inf")  # we last asked it for redundancy
    stats: PeerStats = field(default_factory=PeerStats)
    path: PathState = field(default_factory=PathState)

    def sessions(self) -> list[Session]:
        return [s for s in (self.current, self.previous, self.next) if s is not None]


@dataclass(frozen=True)
class PeerStatus:
    """A snapshot for ``skylan status`` and the controller's statistics."""

    public: bytes
    endpoint: Address | None
    established: bool
    last_handshake_age: float | None
    rtt: float | None
    tx_bytes: int
    rx_bytes: int
    tx_packets: int
    rx_packets: int
    dead: bool
    fec: bool = False  # sending parity: the peer reports loss
    repaired: int = 0  # chunks from it rebuilt from parity
    path_kind: PathKind | None = None  # which kind of candidate the endpoint is
    path_rtt: float | None = None  # the endpoint's, from its last answered probe

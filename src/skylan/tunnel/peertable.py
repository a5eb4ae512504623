"""What the engine's parts share: its peers, the receiver indexes that find a
peer's session or handshake from a datagram, and the outboxes (datagrams to
send, events to report).

Handshakes, sending, receiving and timers each act on this table; none calls
back up into the engine. What all of them need of a peer (is a session usable,
the peer was heard from, a session leaves) is here, once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from skylan.model.counters import DropCounters
from skylan.tunnel.config import TunnelConfig
from skylan.tunnel.events import Address, EndpointChanged, Event, Transmit
from skylan.tunnel.peer import Peer, PendingHandshake
from skylan.tunnel.session import Session


class PeerTable:
    def __init__(self, config: TunnelConfig, random_bytes: Callable[[int], bytes]) -> None:
        self.config = config
        self.drops = DropCounters()
        self.peers: dict[bytes, Peer] = {}
        self.index: dict[int, tuple[Peer, Session | PendingHandshake]] = {}
        self.out: deque[Transmit] = deque()
        self.events: deque[Event] = deque()
        # peers an entry point reached since the timer last looked: only their
        # deadlines can have moved (see timers.Timers.get_timer)
        self.touched: set[bytes] = set()
        self._random = random_bytes

    def peer(self, public: bytes) -> Peer:
        try:
            peer = self.peers[public]
        except KeyError:
            raise KeyError("unknown peer; add_peer() it first") from None
        self.touched.add(public)
        return peer

    def usable(self, peer: Peer, now: float) -> Session | None:
        """The session to send on now, if there is one."""
        s = peer.current
        if (
            s is None
            or peer.endpoint is None
            or s.age(now) >= self.config.reject_after_time
            or not s.confirmed
        ):
            return None
        return s

    def authenticated_from(self, peer: Peer, addr: Address, now: float) -> None:
        peer.last_received = now
        peer.awaiting_reply_since = None
        if peer.endpoint != addr:
            self.events.append(EndpointChanged(peer.public, peer.endpoint, addr))
            peer.endpoint = addr

    def retire(self, peer: Peer, session: Session) -> None:
        """Take ``session`` out of the index; its repair count stays in the
        peer's stats (counted once, however it leaves)."""
        if self.index.pop(session.local_index, None) is not None:
            peer.stats.repaired += session.reassembly.repaired

    def drop_session(self, peer: Peer, session: Session) -> None:
        self.retire(peer, session)
        if peer.current is session:
            peer.current = None
        if peer.previous is session:
            peer.previous = None
        if peer.next is session:
            peer.next = None

    def new_index(self) -> int:
        while True:
            index = int.from_bytes(self._random(4), "big")
            if index and index not in self.index:
                return index

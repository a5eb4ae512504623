"""The sans-I/O tunnel engine: every peer of one node, driven by its caller.

Like aioquic's ``QuicConnection``, it never touches a socket or a clock:

* feed it datagrams with :meth:`TunnelEngine.receive_datagram` and frames to
  send with :meth:`send_frames` / :meth:`send_superframe`, each with ``now``;
* take what it wants sent from :meth:`datagrams_to_send` and what happened
  from :meth:`next_event`;
* call :meth:`handle_timer` when :meth:`get_timer` says.

This is the front of the tunnel; its parts, each in its own module, share one
:class:`~skylan.tunnel.peertable.PeerTable` and call only downwards:
handshakes (:mod:`.handshakes`), then sending (:mod:`.sending`), then
receiving (:mod:`.receiving`) and the timers (:mod:`.timers`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from skylan.model.publickey import check_public
from skylan.tunnel import wire
from skylan.tunnel.config import TunnelConfig
from skylan.tunnel.events import Address, Event, Transmit
from skylan.tunnel.handshakes import Handshakes
from skylan.tunnel.keys import StaticKeypair
from skylan.tunnel.paths import Paths, PathTiming
from skylan.tunnel.pathstate import PathKind
from skylan.tunnel.peer import Peer, PeerStatus
from skylan.tunnel.peertable import PeerTable
from skylan.tunnel.receiving import Receiver
from skylan.tunnel.sending import Sender
from skylan.tunnel.session import Session
from skylan.tunnel.timers import Timers


class TunnelEngine:
    def __init__(
        self,
        static: StaticKeypair,
        *,
        config: TunnelConfig | None = None,
        wall_clock_offset: float = 0.0,
        random_bytes: Callable[[int], bytes] = os.urandom,
        path_timing: PathTiming | None = None,
    ) -> None:
        """``wall_clock_offset`` turns the caller's ``now`` into Unix time
        (``time.time() - time.monotonic()``) for handshake timestamps."""
        self.static = static
        self.config = config or TunnelConfig()
        table = self._table = PeerTable(self.config, random_bytes)
        self.drops = table.drops
        self._peers: dict[bytes, Peer] = table.peers  # (tests look at a peer's state)
        self._paths = Paths(table, random_bytes, path_timing)
        self._handshakes = Handshakes(
            table,
            static,
            wall_clock_offset=wall_clock_offset,
            random_bytes=random_bytes,
            paths=self._paths,
        )
        self._sender = Sender(table, self._handshakes)
        self._receiver = Receiver(table, self._handshakes, self._sender, self._paths)
        self._timers = Timers(table, self._handshakes, self._sender, self._paths)

    @property
    def handshakes_processed(self) -> int:
        """Initiations that cost us DH work."""
        return self._handshakes.admission.processed

    # -- peers --------------------------------------------------------------

    def add_peer(self, public: bytes, endpoint: Address | None = None) -> None:
        """Allow ``public`` to talk to us; idempotent (updates the endpoint).

        Raises ValueError for a key no handshake could succeed with (wrong
        length, a low-order point, our own): the caller skips that peer.
        """
        check_public(public)
        if public == self.static.public:
            raise ValueError("a node cannot be its own peer")
        peer = self._peers.get(public)
        if peer is None:
            peer = self._peers[public] = Peer(public)
        if endpoint is not None:
            peer.endpoint = endpoint
        self._table.touched.add(public)

    def set_candidates(
        self, public: bytes, candidates: list[tuple[Address, PathKind]], now: float
    ) -> None:
        """The addresses ``public`` may be reached at (see :mod:`.paths`). New
        ones, while no session is up, start a handshake to all of them at once:
        the peer, told of ours at the same moment, does the same (hole
        punching), and a peer given up on is tried again."""
        peer = self._table.peer(public)
        added = self._paths.set_candidates(peer, candidates)
        if added and self._table.usable(peer, now) is None:
            peer.dead = False
            self._handshakes.initiate(peer, now)

    def remove_peer(self, public: bytes) -> None:
        """Forget ``public`` at once: its sessions stop decrypting."""
        peer = self._peers.pop(public, None)
        self._table.touched.add(public)
        if peer is None:
            return
        index = self._table.index
        for session in peer.sessions():
            index.pop(session.local_index, None)
        if peer.pending is not None:
            index.pop(peer.pending.local_index, None)

    def peers(self) -> list[bytes]:
        return list(self._peers)

    def status(self, public: bytes, now: float) -> PeerStatus:
        peer = self._peers[public]
        return PeerStatus(
            public=public,
            endpoint=peer.endpoint,
            established=self._table.usable(peer, now) is not None,
            last_handshake_age=None if peer.last_handshake is None else now - peer.last_handshake,
            rtt=peer.rtt,
            tx_bytes=peer.stats.tx_bytes,
            rx_bytes=peer.stats.rx_bytes,
            tx_packets=peer.stats.tx_packets,
            rx_packets=peer.stats.rx_packets,
            dead=peer.dead,
            fec=now < peer.fec_until,
            repaired=sum(s.reassembly.repaired for s in peer.sessions()) + peer.stats.repaired,
            path_kind=peer.path.kind_of(peer.endpoint) if peer.endpoint else None,
            path_rtt=peer.path.rtt,
        )

    # -- a compiled core carrying established sessions -------------------------

    def sessions_of(self, public: bytes, now: float) -> tuple[Session | None, list[Session]]:
        """The session ``public`` is sent to on now (None if none is usable)
        and every session that may decrypt its traffic: what a compiled data
        plane core takes over. A responder's session is not among them until
        the initiator's first data confirmed it here."""
        peer = self._peers.get(public)
        if peer is None:
            return None, []
        return self._table.usable(peer, now), [s for s in (peer.current, peer.previous) if s]

    def note_carried(
        self,
        public: bytes,
        *,
        received: float | None,
        data_received: float | None,
        sent: float | None,
        data_sent: float | None,
        endpoint: Address | None,
    ) -> None:
        """Traffic that a compiled core carried for ``public`` since the last
        call: the latest time of each kind (None: none). Applied in time
        order, as if each had passed through here, so the keepalive, rekey
        and dead-peer timers see the traffic they would have seen."""
        peer = self._peers.get(public)
        if peer is None:
            return
        self._table.touched.add(public)
        steps: list[tuple[float, int]] = []
        for order, at in enumerate((received, data_received, sent, data_sent)):
            if at is not None:
                steps.append((at, order))
        for at, kind in sorted(steps):
            if kind == 0:
                addr = endpoint or peer.endpoint
                if addr is not None:  # (the core only hears from peers it has an address of)
                    self._table.authenticated_from(peer, addr, at)
            elif kind == 1:
                if peer.keepalive_due is None:
                    peer.keepalive_due = at + self.config.keepalive_timeout
            elif kind == 2:
                peer.last_sent = max(peer.last_sent, at)
                peer.keepalive_due = None
            elif peer.awaiting_reply_since is None:
                peer.awaiting_reply_since = at

    # -- output to the driver -------------------------------------------------

    def datagrams_to_send(self) -> list[Transmit]:
        out = list(self._table.out)
        self._table.out.clear()
        return out

    def next_event(self) -> Event | None:
        events = self._table.events
        return events.popleft() if events else None

    # -- sending ------------------------------------------------------------

    def connect(self, public: bytes, now: float) -> None:
        """Start a handshake now instead of waiting for traffic."""
        peer = self._table.peer(public)
        if self._table.usable(peer, now) is None and peer.pending is None:
            self._handshakes.initiate(peer, now)

    def send_frames(self, public: bytes, network_id: int, frames: list[bytes], now: float) -> None:
        self.send_container(public, wire.encode_frames(network_id, frames), now)

    def send_vnet_frames(
        self, public: bytes, network_id: int, items: list[wire.VnetItem], now: float
    ) -> None:
        """Frames with their virtio headers: one seal and one send for the lot."""
        if len(items) == 1:
            self.send_superframe(public, network_id, items[0][0], items[0][1], now)
        else:
            self.send_container(public, wire.encode_vnet_frames(network_id, items), now)

    def send_superframe(
        self,
        public: bytes,
        network_id: int,
        vnet_hdr: bytes | bytearray,
        frame: bytes | bytearray,
        now: float,
    ) -> None:
        self.send_container(public, wire.encode_superframe(network_id, vnet_hdr, frame), now)

    def send_container(
        self, public: bytes, plaintext: bytes | bytearray | memoryview, now: float
    ) -> None:
        """Send an encoded container (see :mod:`skylan.tunnel.wire`).

        Without an established session it is queued (bounded) and a
        handshake starts; the queue is flushed when the session is up.
        """
        self._sender.send_container(public, plaintext, now)

    # -- receiving ----------------------------------------------------------

    def receive_datagram(self, data: bytes | memoryview, addr: Address, now: float) -> None:
        """Process one datagram; anything malformed is dropped and counted."""
        self._receiver.receive_datagram(data, addr, now)

    def receive_segments(
        self, data: bytes | memoryview, segment: int, addr: Address, now: float
    ) -> None:
        """A GRO batch: datagrams of ``segment`` bytes back to back (the last may
        be shorter), all from ``addr``."""
        self._receiver.receive_segments(data, segment, addr, now)

    # -- timers -------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest time :meth:`handle_timer` has something to do; cheap
        to call often (see :mod:`skylan.tunnel.timers`)."""
        return self._timers.get_timer()

    def get_timer_slowly(self) -> float | None:
        """What :meth:`get_timer` must say, from every peer afresh (tests)."""
        return self._timers.get_timer_slowly()

    def handle_timer(self, now: float) -> None:
        self._timers.handle_timer(now)

"""Sending to a peer: seal on its current session, or queue (bounded) and
start a handshake; start a new one when the session has carried enough.

Also the messages the tunnel sends of its own accord on a session:
keepalives, the confirmation a responder waits for, and asking a lossy peer
for redundancy.
"""

from __future__ import annotations

from skylan.tunnel import wire
from skylan.tunnel.events import Transmit
from skylan.tunnel.handshakes import Handshakes
from skylan.tunnel.peer import Peer
from skylan.tunnel.peertable import PeerTable
from skylan.tunnel.session import REKEY_AFTER_MESSAGES, Session, SessionError


class Sender:
    def __init__(self, table: PeerTable, handshakes: Handshakes) -> None:
        self.table = table
        self.config = table.config
        self.handshakes = handshakes

    def send_container(
        self, public: bytes, plaintext: bytes | bytearray | memoryview, now: float
    ) -> None:
        peer = self.table.peer(public)
        session = self.table.usable(peer, now)
        if session is None:
            if len(peer.queue) >= self.config.queue_limit:
                peer.queue.popleft()
                self.table.drops.add("queue_overflow")
            peer.queue.append(bytes(plaintext))
            fresh_next = peer.next is not None and peer.next.age(now) < self.config.rekey_timeout
            if peer.pending is None and not fresh_next:
                self.handshakes.initiate(peer, now)
            return
        self.seal_and_send(peer, session, plaintext, now, data=True)

    def seal_and_send(
        self,
        peer: Peer,
        session: Session,
        plaintext: bytes | bytearray | memoryview,
        now: float,
        *,
        data: bool,
    ) -> None:
        assert peer.endpoint is not None
        try:
            sealed = session.seal(plaintext, self.config.chunk_size, fec=now < peer.fec_until)
        except (SessionError, ValueError) as exc:
            self.table.drops.add("seal_failed" if isinstance(exc, SessionError) else "too_large")
            return
        out = self.table.out
        out.append(Transmit(peer.endpoint, sealed.buffers, sealed.segment_size, sealed.count))
        if sealed.copy is not None:
            out.append(Transmit(peer.endpoint, [sealed.copy], 0, 1))
            peer.stats.tx_packets += 1
        peer.last_sent = now
        peer.keepalive_due = None
        peer.stats.tx_packets += sealed.count
        peer.stats.tx_bytes += sealed.size
        if data and peer.awaiting_reply_since is None:
            peer.awaiting_reply_since = now
        wants_rekey = (
            session.initiator and session.age(now) >= self.config.rekey_after_time
        ) or session.send_counter >= REKEY_AFTER_MESSAGES
        if wants_rekey and peer.pending is None:
            self.handshakes.initiate(peer, now)

    def flush_queue(self, peer: Peer, session: Session, now: float, *, confirm: bool) -> None:
        """Send what waited for ``session``; with ``confirm``, a keepalive if
        nothing waited (the responder may not send until it hears from us on
        this session)."""
        sent = False
        while peer.queue:
            self.seal_and_send(peer, session, peer.queue.popleft(), now, data=True)
            sent = True
        if confirm and not sent:
            self.seal_and_send(peer, session, wire.KEEPALIVE, now, data=False)

    def send_keepalive(self, peer: Peer, now: float) -> None:
        current = self.table.usable(peer, now)
        if current is not None:
            self.seal_and_send(peer, current, wire.KEEPALIVE, now, data=False)

    def ask_for_redundancy(self, peer: Peer, session: Session, now: float) -> None:
        """While chunked messages from ``peer`` get lost (or are rebuilt from
        parity), ask it every second to keep sending redundancy."""
        lost = session.reassembly.last_loss
        if lost is None or now - lost >= self.config.fec_hold:
            return
        if now - peer.feedback_at < self.config.feedback_interval:
            return
        usable = self.table.usable(peer, now)
        if usable is not None:
            peer.feedback_at = now
            self.seal_and_send(peer, usable, wire.FEEDBACK_WANT_FEC, now, data=False)

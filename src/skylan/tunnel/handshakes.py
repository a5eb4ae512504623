"""Both sides of the Noise IK handshake, with WireGuard's protection of the
responder: MAC1 on every message, cookies and per-source limits under load,
replayed initiations refused by their timestamp.

A completed handshake installs its session here; sending what waited for it
is the caller's (sending sits above this module, and starts handshakes through
it).
"""

from __future__ import annotations

from collections.abc import Callable

from skylan.tunnel import timestamp, wire
from skylan.tunnel.admission import HandshakeAdmission
from skylan.tunnel.cookie import (
    COOKIE_VALID_FOR,
    CookieChecker,
    compute_mac1,
    compute_mac2,
    open_cookie_reply,
)
from skylan.tunnel.events import Address, HandshakeCompleted, PeerDead, Transmit
from skylan.tunnel.keys import StaticKeypair
from skylan.tunnel.noise import HandshakeIK, NoiseError
from skylan.tunnel.paths import Paths
from skylan.tunnel.peer import Peer, PendingHandshake
from skylan.tunnel.peertable import PeerTable
from skylan.tunnel.session import Session

_ZERO_MAC = bytes(wire.MAC_LEN)


class Handshakes:
    def __init__(
        self,
        table: PeerTable,
        static: StaticKeypair,
        *,
        wall_clock_offset: float,
        random_bytes: Callable[[int], bytes],
        paths: Paths,
    ) -> None:
        self.table = table
        self.paths = paths
        self.static = static
        self.config = table.config
        self.admission = HandshakeAdmission(table.config)
        self._offset = wall_clock_offset
        self._cookies = CookieChecker(static.public, random_bytes=random_bytes)
        self._last_timestamp = b""

    # -- initiator ------------------------------------------------------------

    def initiate(self, peer: Peer, now: float) -> None:
        table = self.table
        if peer.endpoint is None:
            table.drops.add("no_endpoint")
            return
        hs = HandshakeIK(
            initiator=True,
            static=self.static,
            remote_static=peer.public,
            prologue=self.config.prologue,
        )
        try:
            noise = hs.write_message_1(self._timestamp(now))
        except NoiseError:  # its key admits no shared secret: this peer alone fails
            table.drops.add("bad_peer_key")
            return
        index = table.new_index()
        body = wire.Initiation(index, noise, b"", b"").encode_without_macs()
        mac1 = compute_mac1(peer.public, body)
        mac2 = self._mac2(peer, body + mac1, now)
        attempt = 0
        if peer.pending is not None:
            table.index.pop(peer.pending.local_index, None)
            attempt = peer.pending.attempt + 1
        peer.pending = PendingHandshake(hs, index, now, mac1, attempt)
        table.index[index] = (peer, peer.pending)
        if peer.handshake_started is None:
            peer.handshake_started = now
        initiation = body + mac1 + mac2
        for address in self.paths.initiation_targets(peer, now):
            table.out.append(Transmit(address, [initiation], 0, 1))

    def _timestamp(self, now: float) -> bytes:
        # strictly increasing even if two initiations fall in one clock tick
        stamp = timestamp.encode(now + self._offset)
        if stamp <= self._last_timestamp:
            stamp = (int.from_bytes(self._last_timestamp, "big") + 1).to_bytes(12, "big")
        self._last_timestamp = stamp
        return stamp

    def on_response(
        self, data: bytes | memoryview, addr: Address, now: float
    ) -> tuple[Peer, Session] | None:
        """The session a valid response completes (installed; the caller sends
        what waited for it, or a confirmation)."""
        table = self.table
        resp = wire.decode_response(data)
        peer, pending = table.index.get(resp.receiver_index, (None, None))
        if peer is None or not isinstance(pending, PendingHandshake):
            table.drops.add("unknown_index")
            return None
        table.touched.add(peer.public)
        body = resp.encode_without_macs()
        if compute_mac1(self.static.public, body) != resp.mac1:
            table.drops.add("bad_mac1")
            return None
        try:
            payload = pending.hs.read_message_2(resp.noise)
        except NoiseError:
            table.drops.add("handshake_failed")
            return None
        if payload:
            table.drops.add("handshake_failed")
            return None
        session = self._session(pending.hs, pending.local_index, resp.sender_index, now)
        table.index[pending.local_index] = (peer, session)
        peer.pending = None
        peer.rtt = now - pending.sent_at
        self.install(peer, session, now)
        table.authenticated_from(peer, addr, now)
        table.events.append(HandshakeCompleted(peer.public, addr, initiator=True))
        return peer, session

    def on_cookie_reply(self, data: bytes | memoryview) -> None:
        table = self.table
        reply = wire.decode_cookie_reply(data)
        peer, pending = table.index.get(reply.receiver_index, (None, None))
        if peer is None or not isinstance(pending, PendingHandshake):
            table.drops.add("unknown_index")
            return
        table.touched.add(peer.public)
        cookie = open_cookie_reply(peer.public, reply, pending.mac1)
        if cookie is None:
            table.drops.add("bad_cookie_reply")
            return
        peer.cookie = cookie
        # the responder is under load: wait for the retransmit timer as WireGuard does
        peer.cookie_at = pending.sent_at

    def give_up(self, peer: Peer) -> None:
        assert peer.pending is not None
        table = self.table
        table.index.pop(peer.pending.local_index, None)
        peer.pending = None
        peer.handshake_started = None
        peer.awaiting_reply_since = None
        if peer.queue:
            table.drops.add("peer_unreachable", len(peer.queue))
            peer.queue.clear()
        if not peer.dead:
            peer.dead = True
            table.events.append(PeerDead(peer.public))

    def retry_at(self, pending: PendingHandshake) -> float:
        """Quick first retries (a peer may learn of us a moment after we of it),
        then every ``rekey_timeout`` as WireGuard does."""
        cfg = self.config
        backoff: float = cfg.first_retry * 2.0**pending.attempt
        return pending.sent_at + min(cfg.rekey_timeout, backoff)

    def rekey_age(self, session: Session) -> float:
        """Session age at which we start a new handshake: the session's
        initiator first, the responder a little later if the initiator did not."""
        cfg = self.config
        return cfg.rekey_after_time + (0 if session.initiator else 2 * cfg.rekey_timeout)

    def may_initiate(self, peer: Peer, now: float) -> bool:
        """Whether a handshake for keeping the peer up may start now: none in
        flight, and none we just answered (its confirmation is on its way)."""
        fresh_next = peer.next is not None and peer.next.age(now) < self.config.rekey_timeout
        return (
            peer.pending is None and not fresh_next and not peer.dead and peer.endpoint is not None
        )

    # -- responder ------------------------------------------------------------

    def on_initiation(self, data: bytes | memoryview, addr: Address, now: float) -> None:
        table = self.table
        init = wire.decode_initiation(data)
        body = init.encode_without_macs()
        if not self._cookies.mac1_valid(body, init.mac1):
            table.drops.add("bad_mac1")
            return
        if self.admission.under_load(now):
            if not self._cookies.mac2_valid(body + init.mac1, init.mac2, addr, now):
                reply = self._cookies.make_reply(init.sender_index, init.mac1, addr, now)
                table.out.append(Transmit(addr, [reply.encode()], 0, 1))
                table.drops.add("cookie_required")
                return
            if not self.admission.source_allows(addr[0], now):
                table.drops.add("handshake_rate_limited")
                return
        self.admission.processing(now)
        hs = HandshakeIK(initiator=False, static=self.static, prologue=self.config.prologue)
        try:
            stamp = hs.read_message_1(init.noise)
        except NoiseError:
            table.drops.add("handshake_failed")
            return
        assert hs.rs is not None
        peer = table.peers.get(hs.rs)
        if peer is None:
            table.drops.add("unknown_peer")
            return
        table.touched.add(peer.public)
        if len(stamp) != wire.TIMESTAMP_LEN or not timestamp.is_newer(stamp, peer.latest_timestamp):
            # (also the copies of one initiation sent to several of our
            # candidate addresses: the first to arrive is answered)
            table.drops.add("initiation_replay")
            return
        peer.latest_timestamp = stamp
        index = table.new_index()
        noise = hs.write_message_2(b"")
        resp_body = wire.Response(index, init.sender_index, noise, b"", b"").encode_without_macs()
        mac1 = compute_mac1(peer.public, resp_body)
        mac2 = self._mac2(peer, resp_body + mac1, now)
        session = self._session(hs, index, init.sender_index, now)
        if peer.next is not None:
            table.index.pop(peer.next.local_index, None)
        peer.next = session
        table.index[index] = (peer, session)
        table.authenticated_from(peer, addr, now)
        table.out.append(Transmit(addr, [resp_body + mac1 + mac2], 0, 1))
        peer.last_handshake = now
        peer.stats.handshakes += 1
        peer.dead = False
        table.events.append(HandshakeCompleted(peer.public, addr, initiator=False))

    # -- sessions -------------------------------------------------------------

    def install(self, peer: Peer, session: Session, now: float) -> None:
        """Make ``session`` current, keeping the old one to decrypt stragglers."""
        if peer.previous is not None and peer.previous is not peer.current:
            self.table.retire(peer, peer.previous)
        peer.previous = peer.current
        peer.current = session
        peer.handshake_started = None
        peer.last_handshake = now
        peer.stats.handshakes += 1 if session.initiator else 0
        peer.dead = False

    def _session(self, hs: HandshakeIK, local: int, remote: int, now: float) -> Session:
        send_key, recv_key = hs.split()
        return Session(
            local_index=local,
            remote_index=remote,
            send_key=send_key,
            recv_key=recv_key,
            created=now,
            initiator=hs.initiator,
            drops=self.table.drops,
            reassembly_timeout=self.config.reassembly_timeout,
        )

    @staticmethod
    def _mac2(peer: Peer, msg_with_mac1: bytes, now: float) -> bytes:
        """MAC2 under the peer's cookie while it is fresh, zeros otherwise."""
        if peer.cookie is None or now - peer.cookie_at >= COOKIE_VALID_FOR:
            return _ZERO_MAC
        return compute_mac2(peer.cookie, msg_with_mac1)

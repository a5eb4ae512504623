"""The sans-I/O tunnel engine: every peer of one node, driven by its caller.

Like aioquic's ``QuicConnection``, it never touches a socket or a clock:

* feed it datagrams with :meth:`TunnelEngine.receive_datagram` and frames to
  send with :meth:`send_frames` / :meth:`send_superframe`, each with ``now``;
* take what it wants sent from :meth:`datagrams_to_send` and what happened
  from :meth:`next_event`;
* call :meth:`handle_timer` when :meth:`get_timer` says.

The engine owns the demultiplexing that needs all peers at once: receiver
indexes, identifying an initiator by its static key, and DoS protection of
the handshake (MAC1/cookies and per-source rate limits).
"""

from __future__ import annotations

import heapq
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from skylan.model.counters import DropCounters
from skylan.model.publickey import check_public
from skylan.tunnel import segments, timestamp, wire
from skylan.tunnel.admission import HandshakeAdmission
from skylan.tunnel.config import TunnelConfig
from skylan.tunnel.cookie import (
    COOKIE_VALID_FOR,
    CookieChecker,
    compute_mac1,
    compute_mac2,
    open_cookie_reply,
)
from skylan.tunnel.events import (
    Address,
    EndpointChanged,
    Event,
    FrameRowsReceived,
    FramesReceived,
    HandshakeCompleted,
    PeerDead,
    SuperFrameReceived,
    Transmit,
)
from skylan.tunnel.keys import StaticKeypair
from skylan.tunnel.noise import HandshakeIK, NoiseError
from skylan.tunnel.peer import Peer, PeerStatus, PendingHandshake
from skylan.tunnel.session import REKEY_AFTER_MESSAGES, Session, SessionError
from skylan.tunnel.wire import MsgType, WireError

_ZERO_MAC = bytes(wire.MAC_LEN)
_DATA = int(MsgType.DATA)


@dataclass(frozen=True)
class TimerRule:
    name: str
    due: Callable[[Peer], list[float]]  # when it next has something to do ([]: nothing)
    act: Callable[[Peer, float], None]  # what it does; it checks its own condition


class TunnelEngine:
    def __init__(
        self,
        static: StaticKeypair,
        *,
        config: TunnelConfig | None = None,
        wall_clock_offset: float = 0.0,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """``wall_clock_offset`` turns the caller's ``now`` into Unix time
        (``time.time() - time.monotonic()``) for handshake timestamps."""
        self.static = static
        self.config = config or TunnelConfig()
        self.drops = DropCounters()
        self._offset = wall_clock_offset
        self._random = random_bytes
        self._peers: dict[bytes, Peer] = {}
        self._index: dict[int, tuple[Peer, Session | PendingHandshake]] = {}
        self._events: deque[Event] = deque()
        self._out: deque[Transmit] = deque()
        self._cookies = CookieChecker(static.public, random_bytes=random_bytes)
        self._admission = HandshakeAdmission(self.config)
        self._last_timestamp = b""
        # get_timer's bookkeeping: each peer's next deadline (peers with none
        # are absent), recomputed only for peers something happened to since
        # (_touched), and a heap of them (entries that no longer match are
        # skipped as stale)
        self._due: dict[bytes, float] = {}
        self._touched: set[bytes] = set()
        self._due_heap: list[tuple[float, bytes]] = []
        self._rules = self._timer_rules()

    @property
    def handshakes_processed(self) -> int:
        """Initiations that cost us DH work."""
        return self._admission.processed

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
        self._touched.add(public)

    def remove_peer(self, public: bytes) -> None:
        """Forget ``public`` at once: its sessions stop decrypting."""
        peer = self._peers.pop(public, None)
        self._touched.add(public)
        if peer is None:
            return
        for session in peer.sessions():
            self._index.pop(session.local_index, None)
        if peer.pending is not None:
            self._index.pop(peer.pending.local_index, None)

    def peers(self) -> list[bytes]:
        return list(self._peers)

    def status(self, public: bytes, now: float) -> PeerStatus:
        peer = self._peers[public]
        return PeerStatus(
            public=public,
            endpoint=peer.endpoint,
            established=self._usable(peer, now) is not None,
            last_handshake_age=None if peer.last_handshake is None else now - peer.last_handshake,
            rtt=peer.rtt,
            tx_bytes=peer.stats.tx_bytes,
            rx_bytes=peer.stats.rx_bytes,
            tx_packets=peer.stats.tx_packets,
            rx_packets=peer.stats.rx_packets,
            dead=peer.dead,
            fec=now < peer.fec_until,
            repaired=sum(s.reassembly.repaired for s in peer.sessions()) + peer.stats.repaired,
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
        return self._usable(peer, now), [s for s in (peer.current, peer.previous) if s]

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
        self._touched.add(public)
        steps: list[tuple[float, int]] = []
        for order, at in enumerate((received, data_received, sent, data_sent)):
            if at is not None:
                steps.append((at, order))
        for at, kind in sorted(steps):
            if kind == 0:
                addr = endpoint or peer.endpoint
                if addr is not None:  # (the core only hears from peers it has an address of)
                    self._authenticated_from(peer, addr, at)
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
        out = list(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    # -- sending ------------------------------------------------------------

    def connect(self, public: bytes, now: float) -> None:
        """Start a handshake now instead of waiting for traffic."""
        peer = self._peer(public)
        if self._usable(peer, now) is None and peer.pending is None:
            self._initiate(peer, now)

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
        peer = self._peer(public)
        session = self._usable(peer, now)
        if session is None:
            if len(peer.queue) >= self.config.queue_limit:
                peer.queue.popleft()
                self.drops.add("queue_overflow")
            peer.queue.append(bytes(plaintext))
            fresh_next = peer.next is not None and peer.next.age(now) < self.config.rekey_timeout
            if peer.pending is None and not fresh_next:
                self._initiate(peer, now)
            return
        self._seal_and_send(peer, session, plaintext, now, data=True)

    def _seal_and_send(
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
            self.drops.add("seal_failed" if isinstance(exc, SessionError) else "too_large")
            return
        self._out.append(Transmit(peer.endpoint, sealed.buffers, sealed.segment_size, sealed.count))
        if sealed.copy is not None:
            self._out.append(Transmit(peer.endpoint, [sealed.copy], 0, 1))
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
            self._initiate(peer, now)

    def _usable(self, peer: Peer, now: float) -> Session | None:
        s = peer.current
        if (
            s is None
            or peer.endpoint is None
            or s.age(now) >= self.config.reject_after_time
            or not s.confirmed
        ):
            return None
        return s

    # -- handshake: initiator -------------------------------------------------

    def _initiate(self, peer: Peer, now: float) -> None:
        if peer.endpoint is None:
            self.drops.add("no_endpoint")
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
            self.drops.add("bad_peer_key")
            return
        index = self._new_index()
        body = wire.Initiation(index, noise, b"", b"").encode_without_macs()
        mac1 = compute_mac1(peer.public, body)
        mac2 = self._mac2(peer, body + mac1, now)
        attempt = 0
        if peer.pending is not None:
            self._index.pop(peer.pending.local_index, None)
            attempt = peer.pending.attempt + 1
        peer.pending = PendingHandshake(hs, index, now, mac1, attempt)
        self._index[index] = (peer, peer.pending)
        if peer.handshake_started is None:
            peer.handshake_started = now
        self._out.append(Transmit(peer.endpoint, [body + mac1 + mac2], 0, 1))

    def _timestamp(self, now: float) -> bytes:
        # strictly increasing even if two initiations fall in one clock tick
        stamp = timestamp.encode(now + self._offset)
        if stamp <= self._last_timestamp:
            stamp = (int.from_bytes(self._last_timestamp, "big") + 1).to_bytes(12, "big")
        self._last_timestamp = stamp
        return stamp

    def _on_response(self, data: bytes | memoryview, addr: Address, now: float) -> None:
        resp = wire.decode_response(data)
        peer, pending = self._index.get(resp.receiver_index, (None, None))
        if peer is None or not isinstance(pending, PendingHandshake):
            self.drops.add("unknown_index")
            return
        self._touched.add(peer.public)
        body = resp.encode_without_macs()
        if compute_mac1(self.static.public, body) != resp.mac1:
            self.drops.add("bad_mac1")
            return
        try:
            payload = pending.hs.read_message_2(resp.noise)
        except NoiseError:
            self.drops.add("handshake_failed")
            return
        if payload:
            self.drops.add("handshake_failed")
            return
        session = self._session(pending.hs, pending.local_index, resp.sender_index, now)
        self._index[pending.local_index] = (peer, session)
        peer.pending = None
        peer.rtt = now - pending.sent_at
        self._install(peer, session, now)
        self._authenticated_from(peer, addr, now)
        self._events.append(HandshakeCompleted(peer.public, addr, initiator=True))
        self._flush_queue(peer, session, now, confirm=True)

    def _on_cookie_reply(self, data: bytes | memoryview) -> None:
        reply = wire.decode_cookie_reply(data)
        peer, pending = self._index.get(reply.receiver_index, (None, None))
        if peer is None or not isinstance(pending, PendingHandshake):
            self.drops.add("unknown_index")
            return
        self._touched.add(peer.public)
        cookie = open_cookie_reply(peer.public, reply, pending.mac1)
        if cookie is None:
            self.drops.add("bad_cookie_reply")
            return
        peer.cookie = cookie
        # the responder is under load: wait for the retransmit timer as WireGuard does
        peer.cookie_at = pending.sent_at

    # -- handshake: responder -------------------------------------------------

    def _on_initiation(self, data: bytes | memoryview, addr: Address, now: float) -> None:
        init = wire.decode_initiation(data)
        body = init.encode_without_macs()
        if not self._cookies.mac1_valid(body, init.mac1):
            self.drops.add("bad_mac1")
            return
        if self._admission.under_load(now):
            if not self._cookies.mac2_valid(body + init.mac1, init.mac2, addr, now):
                reply = self._cookies.make_reply(init.sender_index, init.mac1, addr, now)
                self._out.append(Transmit(addr, [reply.encode()], 0, 1))
                self.drops.add("cookie_required")
                return
            if not self._admission.source_allows(addr[0], now):
                self.drops.add("handshake_rate_limited")
                return
        self._admission.processing(now)
        hs = HandshakeIK(initiator=False, static=self.static, prologue=self.config.prologue)
        try:
            stamp = hs.read_message_1(init.noise)
        except NoiseError:
            self.drops.add("handshake_failed")
            return
        assert hs.rs is not None
        peer = self._peers.get(hs.rs)
        if peer is None:
            self.drops.add("unknown_peer")
            return
        self._touched.add(peer.public)
        if len(stamp) != wire.TIMESTAMP_LEN or not timestamp.is_newer(stamp, peer.latest_timestamp):
            self.drops.add("initiation_replay")
            return
        peer.latest_timestamp = stamp
        index = self._new_index()
        noise = hs.write_message_2(b"")
        resp_body = wire.Response(index, init.sender_index, noise, b"", b"").encode_without_macs()
        mac1 = compute_mac1(peer.public, resp_body)
        mac2 = self._mac2(peer, resp_body + mac1, now)
        session = self._session(hs, index, init.sender_index, now)
        if peer.next is not None:
            self._index.pop(peer.next.local_index, None)
        peer.next = session
        self._index[index] = (peer, session)
        self._authenticated_from(peer, addr, now)
        self._out.append(Transmit(addr, [resp_body + mac1 + mac2], 0, 1))
        peer.last_handshake = now
        peer.stats.handshakes += 1
        peer.dead = False
        self._events.append(HandshakeCompleted(peer.public, addr, initiator=False))

    # -- sessions -------------------------------------------------------------

    def _install(self, peer: Peer, session: Session, now: float) -> None:
        """Make ``session`` current, keeping the old one to decrypt stragglers."""
        if peer.previous is not None and peer.previous is not peer.current:
            self._retire(peer, peer.previous)
        peer.previous = peer.current
        peer.current = session
        peer.handshake_started = None
        peer.last_handshake = now
        peer.stats.handshakes += 1 if session.initiator else 0
        peer.dead = False

    def _flush_queue(self, peer: Peer, session: Session, now: float, *, confirm: bool) -> None:
        sent = False
        while peer.queue:
            self._seal_and_send(peer, session, peer.queue.popleft(), now, data=True)
            sent = True
        if confirm and not sent:
            # the responder may not send until it hears from us on this session
            self._seal_and_send(peer, session, wire.KEEPALIVE, now, data=False)

    def _authenticated_from(self, peer: Peer, addr: Address, now: float) -> None:
        peer.last_received = now
        peer.awaiting_reply_since = None
        if peer.endpoint != addr:
            self._events.append(EndpointChanged(peer.public, peer.endpoint, addr))
            peer.endpoint = addr

    # -- receiving ----------------------------------------------------------

    def receive_datagram(self, data: bytes | memoryview, addr: Address, now: float) -> None:
        """Process one datagram; anything malformed is dropped and counted."""
        try:
            if data and data[0] == _DATA:  # the hot path: skip building the enum
                self._on_data(data, addr, now)
                return
            kind = wire.message_type(data)
            if kind is MsgType.INITIATION:
                self._on_initiation(data, addr, now)
            elif kind is MsgType.RESPONSE:
                self._on_response(data, addr, now)
            else:
                self._on_cookie_reply(data)
        except WireError as exc:
            self.drops.add(exc.reason)

    def _on_data(self, data: bytes | memoryview, addr: Address, now: float) -> None:
        header = wire.decode_data_header(data)
        peer, session = self._index.get(header.receiver_index, (None, None))
        if peer is None or not isinstance(session, Session):
            self.drops.add("unknown_index")
            return
        self._touched.add(peer.public)
        if session.age(now) >= self.config.reject_after_time:
            self.drops.add("expired_session")
            return
        chunk = memoryview(data)[wire.DATA_HDR_LEN :]
        if header.flags & wire.FLAG_REDUNDANT:
            plaintext = session.open_redundant(header, chunk, now)
        else:
            plaintext = session.open(header, chunk, now)
        if plaintext is not None:
            self._on_plaintext(peer, session, header, plaintext, addr=addr, now=now)

    def receive_segments(
        self, data: bytes | memoryview, segment: int, addr: Address, now: float
    ) -> None:
        """A GRO batch: datagrams of ``segment`` bytes back to back (the last may
        be shorter), all from ``addr``.

        The common case, consecutive chunks of one super-frame, goes to
        reassembly as a run: one header check, session lookup and replay check
        for the run instead of one per chunk. Anything else takes the
        datagram-by-datagram path.
        """
        view = memoryview(data)
        n = len(view)
        if segment <= 0:
            segment = n
        off = 0
        while off < n:
            taken = self._data_run(view, off, segment, addr, now) if view[off] == _DATA else 0
            if taken:
                off += taken * segment
                continue
            end = min(off + segment, n)
            self.receive_datagram(view[off:end], addr, now)
            off = end

    def _data_run(self, view: memoryview, off: int, segment: int, addr: Address, now: float) -> int:
        """Chunks of one message from ``off`` on; how many segments were used
        (0: let the per-datagram path handle, and count, the one at ``off``)."""
        n = len(view)
        if n - off <= wire.DATA_HDR_LEN or min(segment, n - off) <= wire.DATA_HDR_LEN:
            return 0
        unpack = wire.DATA_HDR.unpack_from
        _, flags, index, count, receiver, counter = unpack(view, off)
        if flags != 0 or count < 2 or count > wire.MAX_CHUNKS or index >= count:
            return 0
        peer, session = self._index.get(receiver, (None, None))
        if peer is None or not isinstance(session, Session):
            return 0
        self._touched.add(peer.public)
        if session.age(now) >= self.config.reject_after_time or not session.replay.check(counter):
            return 0
        whole, used = None, 0
        rows = segments.as_rows(view, off, segment, count - 1 - index)
        taken = segments.run_length(rows) if len(rows) >= 2 else 0
        if taken >= 2:  # the common case: one copy for the lot
            block = rows[:taken, wire.DATA_HDR_LEN :]
            tail = None
            if index + taken == count - 1:  # the rows end right before the last chunk
                after = self._chunks(
                    view,
                    off + taken * segment,
                    segment,
                    receiver=receiver,
                    count=count,
                    counter=counter,
                )
                if after and after[0][0] == count - 1:
                    tail = after[0][1]
            whole, used = session.reassembly.add_block(
                counter, count, index, block, now, tail=tail
            ) or (None, 0)
        if whole is None:  # the rest (often just the short last chunk), one by one
            start = off + used * segment
            chunks = self._chunks(
                view, start, segment, receiver=receiver, count=count, counter=counter
            )
            if chunks:
                whole, more = session.reassembly.add_many(counter, count, chunks, now)
                used += more
        if whole is not None:
            header = wire.DataHeader(0, count, receiver, counter)
            plaintext = session.decrypt(header, whole)
            if plaintext is not None:
                self._on_plaintext(peer, session, header, plaintext, addr=addr, now=now)
        return used

    @staticmethod
    def _chunks(
        view: memoryview, off: int, segment: int, *, receiver: int, count: int, counter: int
    ) -> list[tuple[int, memoryview]]:
        """The chunks of message ``counter`` from ``off`` on, until another datagram."""
        n = len(view)
        unpack = wire.DATA_HDR.unpack_from
        run: list[tuple[int, memoryview]] = []
        while off < n:
            end = min(off + segment, n)
            if end - off <= wire.DATA_HDR_LEN or view[off] != _DATA:
                break
            _, flags, index, chunk_count, chunk_receiver, chunk_counter = unpack(view, off)
            if (
                chunk_counter != counter
                or chunk_receiver != receiver
                or chunk_count != count
                or flags != 0
                or index >= count
            ):
                break
            run.append((index, view[off + wire.DATA_HDR_LEN : end]))
            off = end
        return run

    def _on_plaintext(
        self,
        peer: Peer,
        session: Session,
        header: wire.DataHeader,
        plaintext: bytes,
        *,
        addr: Address,
        now: float,
    ) -> None:
        peer.stats.rx_packets += header.chunk_count
        peer.stats.rx_bytes += len(plaintext) + wire.DATA_HDR_LEN * header.chunk_count
        if session is peer.next:
            peer.next = None
            peer.rtt = now - session.created  # our response, then their first packet
            self._install(peer, session, now)
            self._flush_queue(peer, session, now, confirm=False)
        self._authenticated_from(peer, addr, now)
        self._ask_for_redundancy(peer, session, now)
        try:
            container = wire.decode_container(plaintext)
        except WireError as exc:  # authentic but malformed: that message alone is lost
            self.drops.add(exc.reason)
            return
        if container.kind is wire.Kind.KEEPALIVE:
            return
        if container.kind is wire.Kind.FEEDBACK:
            if container.want_fec:
                peer.fec_until = now + self.config.fec_hold
            return
        if peer.keepalive_due is None:
            peer.keepalive_due = now + self.config.keepalive_timeout
        if container.kind is wire.Kind.SUPERFRAME:
            self._events.append(
                SuperFrameReceived(
                    peer.public, container.network_id, container.vnet_hdr, container.frames[0]
                )
            )
        elif container.rows is not None:
            self._events.append(
                FrameRowsReceived(peer.public, container.network_id, container.rows)
            )
        else:
            self._events.append(
                FramesReceived(
                    peer.public, container.network_id, container.frames, container.vnet_hdrs
                )
            )

    def _ask_for_redundancy(self, peer: Peer, session: Session, now: float) -> None:
        """While chunked messages from ``peer`` get lost (or are rebuilt from
        parity), ask it every second to keep sending redundancy."""
        lost = session.reassembly.last_loss
        if lost is None or now - lost >= self.config.fec_hold:
            return
        if now - peer.feedback_at < self.config.feedback_interval:
            return
        usable = self._usable(peer, now)
        if usable is not None:
            peer.feedback_at = now
            self._seal_and_send(peer, usable, wire.FEEDBACK_WANT_FEC, now, data=False)

    # -- timers -------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest time :meth:`handle_timer` has something to do.

        Cheap to call often: only the peers something happened to since the
        last call are looked at again (every entry point that reaches a peer
        marks it); the rest keep their deadlines in a heap."""
        due, heap = self._due, self._due_heap
        for public in self._touched:
            peer = self._peers.get(public)
            deadlines = self._deadlines(peer) if peer is not None else []
            at = min(deadlines) if deadlines else None
            if at is None:
                due.pop(public, None)
            elif due.get(public) != at:
                due[public] = at
                heapq.heappush(heap, (at, public))
        self._touched.clear()
        if len(heap) > 2 * len(due) + 64:  # mostly stale entries: start again
            heap[:] = [(at, public) for public, at in due.items()]
            heapq.heapify(heap)
        while heap:
            at, public = heap[0]
            if due.get(public) == at:
                return at
            heapq.heappop(heap)
        return None

    def get_timer_slowly(self) -> float | None:
        """What :meth:`get_timer` must say, from every peer afresh (tests)."""
        deadlines = [t for peer in self._peers.values() for t in self._deadlines(peer)]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        self._touched.update(self._peers)  # any of them may act
        for peer in list(self._peers.values()):
            for rule in self._rules:
                rule.act(peer, now)

    def _deadlines(self, peer: Peer) -> list[float]:
        return [t for rule in self._rules for t in rule.due(peer)]

    # The timer rules, in one table (as h11 keeps its state rules in one
    # place): for each, when it is next due for a peer, and what it does.
    # get_timer() is the earliest due time of any rule of any peer;
    # handle_timer() runs every rule's action, in this order, for each peer.
    # An action checks its own condition, so another rule's deadline never
    # makes it act early.

    def _timer_rules(self) -> tuple[TimerRule, ...]:
        return (
            TimerRule("sessions", self._sessions_due, self._expire_sessions),
            TimerRule("handshake retry", self._retry_due, self._retry_handshake),
            TimerRule("rekey by age", self._rekey_due, self._rekey_by_age),
            TimerRule("reply timeout", self._reply_due, self._reply_timed_out),
            TimerRule("keepalive", self._keepalive_due, self._send_keepalive),
            TimerRule("persistent keepalive", self._persistent_due, self._keep_up),
        )

    # sessions: reassembly deadlines, parity requests, and the hard age limit
    def _sessions_due(self, peer: Peer) -> list[float]:
        out: list[float] = []
        for session in peer.sessions():
            out.append(session.created + self.config.reject_after_time)
            deadline = session.reassembly.next_deadline()
            if deadline is not None:
                out.append(deadline)
        return out

    def _expire_sessions(self, peer: Peer, now: float) -> None:
        for session in peer.sessions():
            session.reassembly.expire(now)
            self._ask_for_redundancy(peer, session, now)
            if session.age(now) >= self.config.reject_after_time:
                self._drop_session(peer, session)

    # an initiation without an answer: again, until rekey_attempt_time
    def _retry_due(self, peer: Peer) -> list[float]:
        return [self._retry_at(peer.pending)] if peer.pending is not None else []

    def _retry_handshake(self, peer: Peer, now: float) -> None:
        pending = peer.pending
        if pending is not None and now >= self._retry_at(pending):
            started = peer.handshake_started if peer.handshake_started is not None else now
            if now - started >= self.config.rekey_attempt_time:
                self._give_up(peer)
            else:
                self._initiate(peer, now)

    # a session in use gets old: a new handshake, if the tunnel is active
    def _rekey_due(self, peer: Peer) -> list[float]:
        current = peer.current
        if current is None or peer.pending is not None:
            return []
        limit = self._rekey_age(current)
        recent = max(peer.last_sent, peer.last_received)
        if recent > current.created + limit - self.config.rekey_after_time:
            return [current.created + limit]
        return []

    def _rekey_by_age(self, peer: Peer, now: float) -> None:
        current = self._usable(peer, now)
        if current is not None and peer.pending is None:
            limit = self._rekey_age(current)
            recent = max(peer.last_sent, peer.last_received)
            active = now - recent < self.config.rekey_after_time
            if current.age(now) >= limit and active:
                self._initiate(peer, now)

    # we sent and heard nothing back: the session may be dead; handshake again
    def _reply_due(self, peer: Peer) -> list[float]:
        since = peer.awaiting_reply_since
        if since is None:
            return []
        return [since + self.config.keepalive_timeout + self.config.rekey_timeout]

    def _reply_timed_out(self, peer: Peer, now: float) -> None:
        cfg = self.config
        since = peer.awaiting_reply_since
        if since is not None and now - since >= cfg.keepalive_timeout + cfg.rekey_timeout:
            peer.awaiting_reply_since = None
            if peer.pending is None:
                self._initiate(peer, now)

    # we heard data and sent none back: a keepalive, so the peer knows
    def _keepalive_due(self, peer: Peer) -> list[float]:
        return [peer.keepalive_due] if peer.keepalive_due is not None else []

    def _send_keepalive(self, peer: Peer, now: float) -> None:
        if peer.keepalive_due is not None and now >= peer.keepalive_due:
            peer.keepalive_due = None
            current = self._usable(peer, now)
            if current is not None:
                self._seal_and_send(peer, current, wire.KEEPALIVE, now, data=False)

    # persistent keepalive: NAT mappings stay open, and tunnels up
    def _persistent_due(self, peer: Peer) -> list[float]:
        pk = self.config.persistent_keepalive
        if pk is None or peer.dead or peer.endpoint is None or peer.pending is not None:
            return []
        if peer.current is not None and peer.current.confirmed:
            return [peer.last_sent + pk]
        if peer.next is not None:
            return [peer.next.created + self.config.rekey_timeout]  # give it time to confirm
        return [peer.last_sent]  # bring a session up now

    def _keep_up(self, peer: Peer, now: float) -> None:
        pk = self.config.persistent_keepalive
        current = self._usable(peer, now)
        if current is not None:
            if pk is not None and now - peer.last_sent >= pk:
                self._seal_and_send(peer, current, wire.KEEPALIVE, now, data=False)
        elif pk is not None and self._may_initiate(peer, now):
            self._initiate(peer, now)

    def _may_initiate(self, peer: Peer, now: float) -> bool:
        """Whether a handshake for keeping the peer up may start now: none in
        flight, and none we just answered (its confirmation is on its way)."""
        fresh_next = peer.next is not None and peer.next.age(now) < self.config.rekey_timeout
        return (
            peer.pending is None and not fresh_next and not peer.dead and peer.endpoint is not None
        )

    def _retire(self, peer: Peer, session: Session) -> None:
        """Take ``session`` out of the index; its repair count stays in the
        peer's stats (counted once, however it leaves)."""
        if self._index.pop(session.local_index, None) is not None:
            peer.stats.repaired += session.reassembly.repaired

    def _drop_session(self, peer: Peer, session: Session) -> None:
        self._retire(peer, session)
        if peer.current is session:
            peer.current = None
        if peer.previous is session:
            peer.previous = None
        if peer.next is session:
            peer.next = None

    def _give_up(self, peer: Peer) -> None:
        assert peer.pending is not None
        self._index.pop(peer.pending.local_index, None)
        peer.pending = None
        peer.handshake_started = None
        peer.awaiting_reply_since = None
        if peer.queue:
            self.drops.add("peer_unreachable", len(peer.queue))
            peer.queue.clear()
        if not peer.dead:
            peer.dead = True
            self._events.append(PeerDead(peer.public))

    # -- helpers --------------------------------------------------------------

    def _session(self, hs: HandshakeIK, local: int, remote: int, now: float) -> Session:
        send_key, recv_key = hs.split()
        return Session(
            local_index=local,
            remote_index=remote,
            send_key=send_key,
            recv_key=recv_key,
            created=now,
            initiator=hs.initiator,
            drops=self.drops,
            reassembly_timeout=self.config.reassembly_timeout,
        )

    def _rekey_age(self, session: Session) -> float:
        """Session age at which we start a new handshake: the session's
        initiator first, the responder a little later if the initiator did not."""
        cfg = self.config
        return cfg.rekey_after_time + (0 if session.initiator else 2 * cfg.rekey_timeout)

    def _retry_at(self, pending: PendingHandshake) -> float:
        """Quick first retries (a peer may learn of us a moment after we of it),
        then every ``rekey_timeout`` as WireGuard does."""
        cfg = self.config
        backoff: float = cfg.first_retry * 2.0**pending.attempt
        return pending.sent_at + min(cfg.rekey_timeout, backoff)

    @staticmethod
    def _mac2(peer: Peer, msg_with_mac1: bytes, now: float) -> bytes:
        """MAC2 under the peer's cookie while it is fresh, zeros otherwise."""
        if peer.cookie is None or now - peer.cookie_at >= COOKIE_VALID_FOR:
            return _ZERO_MAC
        return compute_mac2(peer.cookie, msg_with_mac1)

    def _peer(self, public: bytes) -> Peer:
        try:
            peer = self._peers[public]
        except KeyError:
            raise KeyError("unknown peer; add_peer() it first") from None
        self._touched.add(public)
        return peer

    def _new_index(self) -> int:
        while True:
            index = int.from_bytes(self._random(4), "big")
            if index and index not in self._index:
                return index

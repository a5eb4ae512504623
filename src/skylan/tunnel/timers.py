"""The tunnel's timers: its rules in one table, and a next deadline that is
cheap to ask for.

Each rule says when it is next due for a peer and what it does then (as h11
keeps its state rules in one place). ``get_timer`` is the earliest due time of
any rule of any peer; ``handle_timer`` runs every rule's action, in table
order, for each peer. An action checks its own condition, so another rule's
deadline never makes it act early.

Asking is cheap: each peer's next deadline is cached and looked at again only
for peers an entry point reached since (the table's ``touched``); the rest
wait in a heap. The data plane asks after every batch.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

from skylan.tunnel import wire
from skylan.tunnel.handshakes import Handshakes
from skylan.tunnel.paths import Paths
from skylan.tunnel.peer import Peer
from skylan.tunnel.peertable import PeerTable
from skylan.tunnel.sending import Sender


@dataclass(frozen=True)
class TimerRule:
    name: str
    due: Callable[[Peer], list[float]]  # when it next has something to do ([]: nothing)
    act: Callable[[Peer, float], None]  # what it does; it checks its own condition


class Timers:
    def __init__(
        self, table: PeerTable, handshakes: Handshakes, sender: Sender, paths: Paths
    ) -> None:
        self.table = table
        self.config = table.config
        self.handshakes = handshakes
        self.sender = sender
        self._due: dict[bytes, float] = {}  # each peer's next deadline (none: absent)
        self._heap: list[tuple[float, bytes]] = []  # entries that no longer match are stale
        self.rules = (
            TimerRule("sessions", self._sessions_due, self._expire_sessions),
            TimerRule("handshake retry", self._retry_due, self._retry_handshake),
            TimerRule("rekey by age", self._rekey_due, self._rekey_by_age),
            TimerRule("reply timeout", self._reply_due, self._reply_timed_out),
            TimerRule("keepalive", self._keepalive_due, self._send_keepalive),
            TimerRule("persistent keepalive", self._persistent_due, self._keep_up),
            TimerRule("paths", paths.due, paths.act),
        )

    def get_timer(self) -> float | None:
        peers, due, heap = self.table.peers, self._due, self._heap
        for public in self.table.touched:
            peer = peers.get(public)
            deadlines = self._deadlines(peer) if peer is not None else []
            at = min(deadlines) if deadlines else None
            if at is None:
                due.pop(public, None)
            elif due.get(public) != at:
                due[public] = at
                heapq.heappush(heap, (at, public))
        self.table.touched.clear()
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
        deadlines = [t for peer in self.table.peers.values() for t in self._deadlines(peer)]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        self.table.touched.update(self.table.peers)  # any of them may act
        for peer in list(self.table.peers.values()):
            for rule in self.rules:
                rule.act(peer, now)

    def _deadlines(self, peer: Peer) -> list[float]:
        return [t for rule in self.rules for t in rule.due(peer)]

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
            self.sender.ask_for_redundancy(peer, session, now)
            if session.age(now) >= self.config.reject_after_time:
                self.table.drop_session(peer, session)

    # an initiation without an answer: again, until rekey_attempt_time
    def _retry_due(self, peer: Peer) -> list[float]:
        return [self.handshakes.retry_at(peer.pending)] if peer.pending is not None else []

    def _retry_handshake(self, peer: Peer, now: float) -> None:
        pending = peer.pending
        if pending is not None and now >= self.handshakes.retry_at(pending):
            started = peer.handshake_started if peer.handshake_started is not None else now
            if now - started >= self.config.rekey_attempt_time:
                self.handshakes.give_up(peer)
            else:
                self.handshakes.initiate(peer, now)

    # a session in use gets old: a new handshake, if the tunnel is active
    def _rekey_due(self, peer: Peer) -> list[float]:
        current = peer.current
        if current is None or peer.pending is not None:
            return []
        limit = self.handshakes.rekey_age(current)
        recent = max(peer.last_sent, peer.last_received)
        if recent > current.created + limit - self.config.rekey_after_time:
            return [current.created + limit]
        return []

    def _rekey_by_age(self, peer: Peer, now: float) -> None:
        current = self.table.usable(peer, now)
        if current is not None and peer.pending is None:
            limit = self.handshakes.rekey_age(current)
            recent = max(peer.last_sent, peer.last_received)
            active = now - recent < self.config.rekey_after_time
            if current.age(now) >= limit and active:
                self.handshakes.initiate(peer, now)

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
                self.handshakes.initiate(peer, now)

    # we heard data and sent none back: a keepalive, so the peer knows
    def _keepalive_due(self, peer: Peer) -> list[float]:
        return [peer.keepalive_due] if peer.keepalive_due is not None else []

    def _send_keepalive(self, peer: Peer, now: float) -> None:
        if peer.keepalive_due is not None and now >= peer.keepalive_due:
            peer.keepalive_due = None
            self.sender.send_keepalive(peer, now)

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
        current = self.table.usable(peer, now)
        if current is not None:
            if pk is not None and now - peer.last_sent >= pk:
                self.sender.seal_and_send(peer, current, wire.KEEPALIVE, now, data=False)
        elif pk is not None and self.handshakes.may_initiate(peer, now):
            self.handshakes.initiate(peer, now)

"""What the agent tells the controller about itself: its tunnels (in the
heartbeat) and its traffic (numbered statistics reports).

Both are built from the data plane's status. Reports are deltas since the
previous one and carry increasing numbers; they are kept until the controller
says they are stored, so none is lost to a controller restart or a failover,
and none counts twice (the controller ignores a number it has).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from skylan.model.agentapi import (
    MAX_PEER_REPORTS,
    MAX_PENDING_REPORTS,
    MAX_REPORTED,
    Counters,
    PeerCounters,
    PeerStatusReport,
    PortCounters,
    StatsReport,
)
from skylan.model.agentstatus import LaneStatus

COUNTERS = ("tx_bytes", "rx_bytes", "tx_packets", "rx_packets")
PEERS_PER_REPORT = 1000  # the busiest; the rest only in the totals
SYNC_BYTES = 512 * 1024  # statistics carried by one sync, at most (bodies stop at 1 MiB)
PEERS_RESENT_AFTER = 300.0  # s: the tunnel list goes out unchanged this often anyway


def peer_reports(status: LaneStatus) -> list[PeerStatusReport]:
    """The tunnels, as the heartbeat carries them (at most MAX_PEER_REPORTS)."""
    return [
        PeerStatusReport(
            node_id=node_id,
            established=peer.established,
            endpoint=peer.endpoint,
            handshake_age_s=peer.handshake_age_s,
            rtt_ms=peer.rtt_ms,
            dead=peer.dead,
            path=peer.path,
            relay=peer.relay,
        )
        for node_id, peer in sorted(status.peers.items())
    ][:MAX_PEER_REPORTS]


def peers_digest(peers: list[PeerStatusReport]) -> tuple[object, ...]:
    """What about the tunnels is worth telling: up, down, dead, where, and the
    RTT to within a quarter. Handshake ages and RTT jitter change every
    heartbeat and would make every heartbeat carry every tunnel."""
    return tuple(
        (
            p.node_id,
            p.established,
            p.dead,
            p.endpoint,
            round(math.log(p.rtt_ms) / math.log(1.25)) if p.rtt_ms else None,
        )
        for p in peers
    )


class PeerReports:
    """Decides when a heartbeat carries the tunnel list: when it changed in
    a way worth telling, and every few minutes anyway."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._sent: tuple[object, ...] | None = None
        self._sent_at = -math.inf

    def due(self, peers: list[PeerStatusReport]) -> bool:
        return peers_digest(peers) != self._sent or (
            self.clock() - self._sent_at >= PEERS_RESENT_AFTER
        )

    def sent(self, peers: list[PeerStatusReport]) -> None:
        self._sent = peers_digest(peers)
        self._sent_at = self.clock()


def _delta(now: int, before: int) -> int:
    return min(max(now - before, 0), MAX_REPORTED)


class StatsReporter:
    """Numbered counter deltas from successive data-plane statuses, and the
    reports the controller has not yet stored."""

    def __init__(
        self,
        last_seq: int = 0,
        *,
        clock: Callable[[], float] = time.time,
        save_seq: Callable[[int], None] | None = None,
    ) -> None:
        self.clock = clock
        self._seq = last_seq
        self._save_seq = save_seq
        self._peers: dict[str, dict[str, int]] = {}  # counters at the last report
        self._ports: dict[str, dict[str, int]] = {}
        self._drops: dict[str, int] = {}
        self.pending: list[StatsReport] = []
        self._sent_to: dict[int, str] = {}  # seq -> the controller process it went to

    def _next_seq(self) -> int:
        # increasing across restarts too: wall clock in ms, or one more
        self._seq = max(self._seq + 1, int(self.clock() * 1000))
        if self._save_seq is not None:
            self._save_seq(self._seq)
        return self._seq

    def take(self, status: LaneStatus) -> StatsReport:
        """A report of what changed since the last one, kept until stored."""
        peers_now: dict[str, dict[str, int]] = {}
        ports_now: dict[str, dict[str, int]] = {}
        drops_now: dict[str, int] = {}
        totals = dict.fromkeys(COUNTERS, 0)
        peers = []
        for node_id, peer in status.peers.items():
            now = {k: int(getattr(peer, k)) for k in COUNTERS}
            old = self._peers.get(node_id, {})
            delta = {k: _delta(now[k], old.get(k, 0)) for k in COUNTERS}
            peers_now[node_id] = now
            for k in COUNTERS:
                totals[k] = min(totals[k] + delta[k], MAX_REPORTED)
            if any(delta.values()):
                peers.append(PeerCounters(peer_id=node_id, rtt_ms=peer.rtt_ms, **delta))
        peers.sort(key=lambda p: p.rx_bytes + p.tx_bytes, reverse=True)
        ports = []
        for port in status.interfaces.values():
            now = {k: int(getattr(port, k)) for k in COUNTERS}
            key = port.network_id
            old = self._ports.get(key, {})
            ports_now[key] = now
            ports.append(
                PortCounters(network_id=key, **{k: _delta(now[k], old.get(k, 0)) for k in COUNTERS})
            )
        drops: dict[str, int] = {}
        for reason, count in status.drops.items():
            delta_drops = _delta(int(count), self._drops.get(reason, 0))
            drops_now[reason] = int(count)
            if delta_drops:
                drops[reason[:60]] = min(drops.get(reason[:60], 0) + delta_drops, MAX_REPORTED)
        self._peers, self._ports, self._drops = peers_now, ports_now, drops_now
        report = StatsReport(
            seq=self._next_seq(),
            at=self.clock(),
            total=Counters(**totals, drops=min(sum(drops.values()), MAX_REPORTED)),
            peers=peers[:PEERS_PER_REPORT],
            ports=ports,
            drops_by_reason=dict(sorted(drops.items())[:100]),
        )
        self.pending.append(report)
        while len(self.pending) > MAX_PENDING_REPORTS and self._merge_oldest():
            pass
        del self.pending[: max(len(self.pending) - 4 * MAX_PENDING_REPORTS, 0)]
        return report

    def _merge_oldest(self) -> bool:
        """The controller has been out of reach for a while: the two oldest
        reports it never received become one (the later number, the sum of
        both), so memory and the next sync stay bounded and nothing is lost.
        (Reports a controller received keep their numbers: it may hold them.)
        False when there are no two such reports."""
        never = [i for i, r in enumerate(self.pending) if r.seq not in self._sent_to]
        if len(never) < 2:
            return False
        i, j = never[0], never[1]
        first, second = self.pending[i], self.pending[j]

        def add(a: Counters, b: Counters) -> dict[str, int]:
            return {
                k: min(getattr(a, k) + getattr(b, k), MAX_REPORTED) for k in (*COUNTERS, "drops")
            }

        by_peer = {p.peer_id: p for p in first.peers}
        peers = [
            PeerCounters(peer_id=p.peer_id, rtt_ms=p.rtt_ms, **add(by_peer[p.peer_id], p))
            if p.peer_id in by_peer
            else p
            for p in second.peers
        ]
        seen = {p.peer_id for p in second.peers}
        peers += [p for p in first.peers if p.peer_id not in seen]
        by_port = {p.network_id: p for p in first.ports}
        ports = [
            PortCounters(network_id=p.network_id, **add(by_port[p.network_id], p))
            if p.network_id in by_port
            else p
            for p in second.ports
        ]
        merged = second.model_copy(
            update={
                "total": Counters(**add(first.total, second.total)),
                "peers": peers[:PEERS_PER_REPORT],
                "ports": ports,
            }
        )
        self.pending[j] = merged
        del self.pending[i]
        return True

    def unsent(self) -> list[StatsReport]:
        """The oldest pending reports not yet sent to the controller process
        now answering, as many as fit in one sync."""
        out: list[StatsReport] = []
        size = 0
        for report in self.pending:
            if report.seq in self._sent_to:
                continue
            size += len(report.model_dump_json())
            if out and size > SYNC_BYTES:
                break
            out.append(report)
        return out

    def held_by(self) -> str | None:
        """The controller process holding reports of ours it has not stored
        (the sync says so: another process then takes none, see SyncRequest)."""
        return next(iter(self._sent_to.values()), None)

    def answered(
        self, sent: list[StatsReport], stored: int, epoch: str, held_by: str | None = None
    ) -> None:
        """A sync that carried ``sent`` (and said ``held_by``) was answered
        by controller process ``epoch``, which has stored every report up to
        ``stored``. Reports it holds but has not stored yet are not sent
        again, unless another process answers later (a restart or another
        replica: what the first held in memory may be lost, and the seq makes
        a repeat harmless). A process other than ``held_by`` took none of
        ``sent``: they all go again, in order, with the next sync."""
        self.pending = [r for r in self.pending if r.seq is not None and r.seq > stored]
        live = {r.seq for r in self.pending}
        self._sent_to = {
            seq: where for seq, where in self._sent_to.items() if seq in live and where == epoch
        }
        if held_by is not None and held_by != epoch:
            return
        for report in sent:
            if report.seq in live:
                assert report.seq is not None
                self._sent_to[report.seq] = epoch

    def stored(self, upto: int) -> None:
        """The controller has every report up to ``upto``."""
        self.pending = [r for r in self.pending if r.seq is not None and r.seq > upto]

"""Which of a peer's addresses to send to: its candidates, probed.

A peer behind NAT has several addresses that may or may not work: the ones
on its own interfaces (``LOCAL``), where its NAT maps it as something outside
saw it (``REFLEXIVE``), and relays' ports for it (``RELAY``). The netmap
lists them; nothing says in advance which work from here.

* While no path is known to work, handshake initiations go to every
  candidate at once (the same initiation: the peer answers the first copy
  and refuses the rest as replays), and both sides do so as soon as the
  netmap tells them of each other, so each side's NAT has a mapping open
  towards the other when the other's packets arrive: hole punching.
* Once a session is up, a path *probe* (a datagram only the session's
  holders can make or answer) checks addresses without moving traffic:
  better-ranked candidates every few seconds (a direct path replaces a
  relayed one as soon as it works), and every candidate at once when data
  we sent goes unanswered (the path may have died: a relay went away, a NAT
  forgot us). Traffic moves to an address only when its probe is answered
  from it, so a one-way path never takes the traffic.

The peer follows on its own: data arriving authenticated from a new
address moves its endpoint (roaming), in the core as here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from skylan.tunnel import wire
from skylan.tunnel.events import Address, EndpointChanged, Transmit
from skylan.tunnel.pathstate import MAX_CANDIDATES, PathKind, Round
from skylan.tunnel.peer import Peer
from skylan.tunnel.peertable import PeerTable
from skylan.tunnel.session import Session


@dataclass(frozen=True)
class PathTiming:
    probe_timeout: float = 1.0  # an unanswered probe: that path does not work now
    suspect_after: float = 2.0  # data unanswered this long: check the path
    upgrade_every: float = 5.0  # probe better candidates (doubling up to the cap)
    upgrade_cap: float = 20.0
    fresh: float = 5.0  # heard from within this: the endpoint is known to work


def probe_key(direction_key: bytes) -> bytes:
    """A session direction's key for probes, apart from its AEAD key."""
    return hashlib.blake2s(b"skylan path probe", key=direction_key).digest()


def _mac(key: bytes, header: bytes) -> bytes:
    return hashlib.blake2s(header, key=key, digest_size=wire.MAC_LEN).digest()


class Paths:
    def __init__(
        self,
        table: PeerTable,
        random_bytes: Callable[[int], bytes],
        timing: PathTiming | None = None,
    ) -> None:
        self.table = table
        self.timing = timing or PathTiming()
        self._random = random_bytes

    # -- candidates -------------------------------------------------------------

    def set_candidates(self, peer: Peer, candidates: Iterable[tuple[Address, PathKind]]) -> bool:
        """Replace the peer's candidates; True if any address is new. The best
        one becomes the endpoint of a peer never heard from."""
        fresh: dict[Address, PathKind] = {}
        for address, kind in candidates:
            if len(fresh) >= MAX_CANDIDATES:
                break
            if address not in fresh or kind < fresh[address]:
                fresh[address] = kind
        state = peer.path
        added = any(a not in state.candidates for a in fresh)
        state.candidates = fresh
        if added:
            state.upgrade_failures = 0
            state.next_upgrade = float("-inf")
        if fresh and (peer.endpoint is None or peer.last_received == float("-inf")):
            peer.endpoint = min(fresh, key=lambda a: fresh[a])
        self.table.touched.add(peer.public)
        return added

    def initiation_targets(self, peer: Peer, now: float) -> list[Address]:
        """Where a handshake initiation goes: the endpoint alone while it is
        known to work, every candidate (the endpoint first) otherwise."""
        fresh = now - peer.last_received < self.timing.fresh
        out = [peer.endpoint] if peer.endpoint is not None else []
        if fresh and out:
            return out
        ranked = sorted(peer.path.candidates.items(), key=lambda item: item[1])
        out += [address for address, _ in ranked if address not in out]
        return out

    # -- probing ------------------------------------------------------------------

    def _probe(self, peer: Peer, session: Session, targets: list[Address], now: float) -> None:
        state = peer.path
        state.probes.clear()  # answers to an earlier round no longer count
        state.acked.clear()
        key = probe_key(session.send_key)
        for address in targets:
            nonce = self._random(wire.PROBE_NONCE_LEN)
            state.probes[nonce] = (address, now)
            probe = wire.Probe(wire.MsgType.PROBE, session.remote_index, nonce, b"")
            datagram = probe.header() + _mac(key, probe.header())
            self.table.out.append(Transmit(address, [datagram], 0, 1))
        state.round_end = now + self.timing.probe_timeout
        self.table.touched.add(peer.public)

    def on_probe(self, data: bytes | memoryview, addr: Address, now: float) -> None:
        """Answer a probe from whoever holds the session, to where it came
        from: that proves the path both ways. The endpoint stays."""
        table = self.table
        probe = wire.decode_probe(data)
        peer, session = table.index.get(probe.receiver_index, (None, None))
        if peer is None or not isinstance(session, Session):
            table.drops.add("unknown_index")
            return
        if not hmac.compare_digest(_mac(probe_key(session.recv_key), probe.header()), probe.mac):
            table.drops.add("bad_probe_mac")
            return
        ack = wire.Probe(wire.MsgType.PROBE_ACK, session.remote_index, probe.nonce, b"")
        datagram = ack.header() + _mac(probe_key(session.send_key), ack.header())
        table.out.append(Transmit(addr, [datagram], 0, 1))

    def on_probe_ack(self, data: bytes | memoryview, addr: Address, now: float) -> None:
        table = self.table
        ack = wire.decode_probe(data)
        peer, session = table.index.get(ack.receiver_index, (None, None))
        if peer is None or not isinstance(session, Session):
            table.drops.add("unknown_index")
            return
        if not hmac.compare_digest(_mac(probe_key(session.recv_key), ack.header()), ack.mac):
            table.drops.add("bad_probe_mac")
            return
        state = peer.path
        sent = state.probes.pop(ack.nonce, None)
        if sent is None or sent[0] != addr:  # late, repeated, or not from where it went
            table.drops.add("stray_probe_ack")
            return
        table.touched.add(peer.public)
        rtt = now - sent[1]
        state.acked[addr] = rtt
        if addr == peer.endpoint:
            state.rtt = rtt
        elif state.kind_of(addr) < state.kind_of(peer.endpoint):
            self._move(peer, addr, rtt)  # a better path works: take it now

    def _move(self, peer: Peer, address: Address, rtt: float) -> None:
        state = peer.path
        self.table.events.append(EndpointChanged(peer.public, peer.endpoint, address))
        peer.endpoint = address
        state.rtt = rtt
        state.upgrade_failures = 0

    # -- the timer ---------------------------------------------------------------

    def due(self, peer: Peer) -> list[float]:
        state = peer.path
        if state.round_end is not None:
            return [state.round_end]
        session = peer.current
        if session is None or not session.confirmed:
            return []
        out = []
        if self._better(peer):
            out.append(state.next_upgrade)
        if peer.awaiting_reply_since is not None:
            out.append(
                max(
                    peer.awaiting_reply_since + self.timing.suspect_after,
                    state.checked_at + self.timing.suspect_after,
                )
            )
        return out

    def act(self, peer: Peer, now: float) -> None:
        state = peer.path
        if state.round_end is not None:
            if now >= state.round_end:
                self._end_round(peer, now)
            return
        session = self.table.usable(peer, now)
        if session is None:
            return
        timing = self.timing
        since = peer.awaiting_reply_since
        if (
            since is not None
            and now - since >= timing.suspect_after
            and now - state.checked_at >= timing.suspect_after
        ):
            # the endpoint alone first: a one-way flow costs one probe a while
            state.checked_at = now
            state.round = Round.CHECK
            self._probe(peer, session, [peer.endpoint] if peer.endpoint else [], now)
        elif self._better(peer) and now >= state.next_upgrade:
            mine = state.kind_of(peer.endpoint)
            state.round = Round.UPGRADE
            better = [a for a, kind in state.candidates.items() if kind < mine]
            self._probe(peer, session, better, now)

    def _better(self, peer: Peer) -> bool:
        state = peer.path
        mine = state.kind_of(peer.endpoint)
        return any(kind < mine for kind in state.candidates.values())

    def _end_round(self, peer: Peer, now: float) -> None:
        state = peer.path
        kind, acked = state.round, dict(state.acked)
        state.round_end = None
        state.probes.clear()
        self.table.touched.add(peer.public)
        if kind is Round.CHECK:
            session = self.table.usable(peer, now)
            if peer.endpoint not in acked and state.candidates and session is not None:
                state.round = Round.SEARCH  # the endpoint is silent: try them all
                others = [a for a in state.candidates if a != peer.endpoint]
                self._probe(
                    peer, session, [*others, *([peer.endpoint] if peer.endpoint else [])], now
                )
        elif kind is Round.SEARCH:
            if peer.endpoint not in acked and acked:
                best = min(acked, key=lambda a: (state.kind_of(a), acked[a]))
                self._move(peer, best, acked[best])
        else:
            mine = state.kind_of(peer.endpoint)
            if not any(state.kind_of(a) < mine for a in acked):
                state.upgrade_failures += 1
                wait = self.timing.upgrade_every * 2.0 ** (state.upgrade_failures - 1)
                state.next_upgrade = now + min(self.timing.upgrade_cap, wait)

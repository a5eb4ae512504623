"""The bridge between one data-plane lane and its compiled core.

The core (``skylan.dataplane._core``, built from ``csrc/`` by ``pip
install``) runs the per-packet loop in its own thread without the GIL: TAP
reads, the forwarding decision, sealing and UDP GSO sends one way;
recvmmsg/GRO, replay window, reassembly, opening, the switch's check and TAP
writes the other. Python keeps everything else (see docs/dataplane-core.md):

* what the core forwards comes from here: the ports, every member's MAC by
  network, which peer slot carries each node, and the keys and counters of
  each established session (:meth:`CoreLink.sync_sessions`);
* what the core cannot decide comes back through :meth:`CoreLink.take`, with
  an eventfd to wake the loop: handshakes, data for sessions it does not
  hold, floods, ARP, frames from MACs it does not know;
* what the core carried flows back into the engine's timers
  (:meth:`CoreLink.absorb`), so keepalives, rekeys and dead-peer detection
  work as if every packet had passed through Python.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from skylan.tunnel.engine import TunnelEngine
from skylan.tunnel.events import Address
from skylan.tunnel.session import Session

try:
    from skylan.dataplane import _core  # type: ignore[attr-defined]
except ImportError:  # not built on this machine: the Python data plane runs
    _core = None

SLOW_DATAGRAM = 1
SLOW_TAP_FRAME = 2
SLOW_PEER_FRAME = 3
LOCAL_NODE = 0


def available() -> bool:
    """Whether the compiled core was built and imports on this machine."""
    return _core is not None


@dataclass(frozen=True)
class SlowEntry:
    """Something the core handed up: a datagram from ``addr``, a frame read
    from network ``vni``'s TAP, or a decrypted frame from peer ``slot``."""

    kind: int
    slot: int
    vni: int
    addr: Address | None
    data: bytes


@dataclass
class _Seen:
    """A slot's activity as last passed to the engine."""

    received: float = -1.0
    sent: float = -1.0
    data_received: float = -1.0
    data_sent: float = -1.0


class CoreLink:
    def __init__(self, udp_fd: int, *, chunk_size: int, reassembly_timeout: float) -> None:
        if _core is None:
            raise RuntimeError("the compiled data-plane core is not built on this machine")
        self.core: Any = _core.Core(udp_fd, chunk_size, reassembly_timeout)
        self._slots: dict[bytes, int] = {}  # peer public key -> slot
        self._publics: dict[int, bytes] = {}
        self._slot_nodes: dict[int, int] = {}  # slot -> its node's number
        self._nodes: dict[str, int] = {}  # node id -> number (0 is this node)
        self._endpoints: dict[int, Address | None] = {}  # as the core has it
        self._installed: dict[int, set[int]] = {}  # slot -> local indexes in the core
        self._sending: dict[int, int] = {}  # slot -> local index it sends on (0: none)
        self._sessions: dict[int, Session] = {}
        self._seen: dict[int, _Seen] = {}
        self._counters: dict[int, tuple[int, int, int, int]] = {}  # tx/rx bytes/packets
        self._parity: dict[int, tuple[bool, int]] = {}  # sending parity?, chunks rebuilt

    @property
    def eventfd(self) -> int:
        fd: int = self.core.eventfd
        return fd

    def start(self) -> None:
        self.core.start()

    def stop(self) -> None:
        """Stop the thread; every session goes back to counting in Python."""
        self.core.stop()
        for index in list(self._sessions):
            self._remove_session(index)

    # -- tables -----------------------------------------------------------------

    def add_port(self, vni: int, tap_fd: int) -> None:
        self.core.add_port(vni, tap_fd)

    def remove_port(self, vni: int) -> None:
        self.core.remove_port(vni)

    def node_number(self, node_id: str) -> int:
        number = self._nodes.get(node_id)
        if number is None:
            used = set(self._nodes.values())
            number = next(n for n in range(1, len(used) + 2) if n not in used)
            self._nodes[node_id] = number
        return number

    def set_network(self, vni: int, local_mac: bytes, members: list[tuple[bytes, str]]) -> None:
        """Network ``vni``'s static MACs: ours, and each member's with its node."""
        macs = [local_mac] + [mac for mac, _ in members]
        nodes = [LOCAL_NODE] + [self.node_number(node) for _, node in members]
        self.core.set_macs(vni, b"".join(macs), nodes)

    def set_peers(
        self, peers: dict[bytes, tuple[str, Address | None]], send_keys: dict[str, bytes]
    ) -> None:
        """Every peer (public key -> node and endpoint) and the key each node
        is sent to on; peers no longer listed are forgotten, with their sessions."""
        for public in [p for p in self._slots if p not in peers]:
            slot = self._slots.pop(public)
            del self._publics[slot]
            del self._slot_nodes[slot]
            for index in list(self._installed.pop(slot, ())):
                self._remove_session(index)
            self._sending.pop(slot, None)
            self._endpoints.pop(slot, None)
            self._seen.pop(slot, None)
            self._counters.pop(slot, None)
            self._parity.pop(slot, None)
            self.core.clear_slot(slot)
        for public, (node_id, endpoint) in peers.items():
            if public not in self._slots:
                free = next(s for s in range(len(self._publics) + 1) if s not in self._publics)
                self._slots[public] = free
                self._publics[free] = public
            slot = self._slots[public]
            host, port = endpoint if endpoint is not None else (None, 0)
            self._slot_nodes[slot] = self.node_number(node_id)
            self.core.set_slot(slot, self._slot_nodes[slot], host, port)
            if endpoint is not None:
                self._endpoints[slot] = endpoint
        live = {node for node, _ in peers.values()}
        for node_id, number in list(self._nodes.items()):
            if node_id not in live:
                self.core.set_node_slot(number, -1)
                del self._nodes[node_id]
        for node_id, public in send_keys.items():
            if public in self._slots:
                self.core.set_node_slot(self.node_number(node_id), self._slots[public])

    def sync_sessions(self, engine: TunnelEngine, now: float) -> None:
        """Install what the engine established, retire what it dropped, and
        move each peer to the session the engine sends on."""
        for public, slot in self._slots.items():
            send, rx = engine.sessions_of(public, now)
            wanted = {s.local_index: s for s in rx}
            have = self._installed.setdefault(slot, set())
            for index in [i for i in have if i not in wanted]:
                self._remove_session(index)
                have.discard(index)
            for index, session in wanted.items():
                if index not in have:
                    self._add_session(slot, session, engine.config.reject_after_time)
                    have.add(index)
            sending = send.local_index if send is not None else 0
            if self._sending.get(slot, 0) != sending:
                self.core.send_on(slot, sending)
                self._sending[slot] = sending
            endpoint = engine.status(public, now).endpoint
            if endpoint is not None and endpoint != self._endpoints.get(slot):
                self.core.set_slot(slot, self._slot_nodes[slot], endpoint[0], endpoint[1])
                self._endpoints[slot] = endpoint

    def _add_session(self, slot: int, session: Session, lifetime: float) -> None:
        top, bits = session.replay.snapshot()
        index = session.local_index
        self.core.add_session(
            slot,
            index,
            session.remote_index,
            session.send_key,
            session.recv_key,
            session.send_counter,
            top,
            bits,
            session.created + lifetime,
        )
        session.counter_source = functools.partial(self.core.take_counter, index)
        self._sessions[index] = session

    def _remove_session(self, index: int) -> None:
        following = self.core.remove_session(index)
        session = self._sessions.pop(index, None)
        if session is not None:
            session.counter_source = None
            if following is not None:
                session.send_counter = following

    # -- what comes back ---------------------------------------------------------

    def take(self, limit: int = 256) -> list[SlowEntry]:
        return [SlowEntry(*item) for item in self.core.take(limit)]

    def public_of(self, slot: int) -> bytes | None:
        return self._publics.get(slot)

    def absorb(self, engine: TunnelEngine) -> None:
        """Tell the engine what the core carried since the last call."""
        for item in self.core.activity():
            slot, received, sent, data_received, data_sent, addr, roamed = item[:7]
            public = self._publics.get(slot)
            if public is None:
                continue
            self._counters[slot] = item[9], item[10], item[7], item[8]
            self._parity[slot] = bool(item[11]), int(item[12])
            endpoint: Address | None = (addr[0], addr[1]) if addr[0] is not None else None
            if roamed and endpoint is not None:
                self._endpoints[slot] = endpoint
            seen = self._seen.setdefault(slot, _Seen())
            news = [
                t if t > old else None
                for t, old in (
                    (received, seen.received),
                    (data_received, seen.data_received),
                    (sent, seen.sent),
                    (data_sent, seen.data_sent),
                )
            ]
            if any(t is not None for t in news):
                engine.note_carried(
                    public,
                    received=news[0],
                    data_received=news[1],
                    sent=news[2],
                    data_sent=news[3],
                    endpoint=endpoint,
                )
                seen.received, seen.data_received = (
                    max(received, seen.received),
                    max(data_received, seen.data_received),
                )
                seen.sent, seen.data_sent = max(sent, seen.sent), max(data_sent, seen.data_sent)

    # -- counters ------------------------------------------------------------------

    def peer_counters(self, public: bytes) -> tuple[int, int, int, int]:
        """(tx_bytes, tx_packets, rx_bytes, rx_packets) the core carried for a peer."""
        slot = self._slots.get(public)
        return self._counters.get(slot, (0, 0, 0, 0)) if slot is not None else (0, 0, 0, 0)

    def peer_parity(self, public: bytes) -> tuple[bool, int]:
        """Whether the core sends a peer parity (it asked), and how many of its
        chunks the core rebuilt from parity."""
        slot = self._slots.get(public)
        return self._parity.get(slot, (False, 0)) if slot is not None else (False, 0)

    def port_counters(self, vni: int) -> tuple[int, int, int, int]:
        """(tx_bytes, tx_packets, rx_bytes, rx_packets) of a port's TAP."""
        tx_bytes, tx_packets, rx_bytes, rx_packets = self.core.port_counters(vni)
        return tx_bytes, tx_packets, rx_bytes, rx_packets

    def drops(self) -> dict[str, int]:
        drops: dict[str, int] = self.core.drops()
        return drops

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.core.stats()
        return stats

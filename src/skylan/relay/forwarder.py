"""The relay's decisions, without sockets: who may say hello, which port is
whose, where a datagram goes, and what is dropped (and why).

Each node (lane key) that says hello gets a port of its own. A node that
wants to reach node B sends to B's port; the relay knows it there by the
address its hello to that port came from, and passes the datagram to B from
the sender's own port, to the address B said hello from on that port. So B
sees every peer at a distinct ``relay:port``, answers there, and neither
side needs anything but UDP (see :mod:`skylan.tunnel.relaywire`).

Nothing is trusted: hellos need a valid MAC from a key the controller lists,
and a newer timestamp than the last one on that port; data must come from a
registered address and go to a registered one; every node has a rate limit;
every refusal is counted by reason. The relay holds no secret of the
tunnels it carries: it cannot read or forge them.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from skylan.tunnel.keys import StaticKeypair
from skylan.tunnel.relaywire import (
    RelayWireError,
    decode_hello,
    encode_answer,
    shared_key,
)

Address = tuple[str, int]

REGISTRATION_TTL = 90.0  # s without a hello (nodes say it every 20 s) before it is forgotten
MAX_CLOCK_SKEW_MS = 10 * 60 * 1000  # a hello's clock against ours
DEFAULT_RATE = 1_250_000_000.0  # bytes a second per node (10 Gbit/s)
DEFAULT_BURST = 8_000_000.0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float

    def take(self, amount: float, now: float, rate: float, burst: float) -> bool:
        self.tokens = min(burst, self.tokens + (now - self.at) * rate)
        self.at = now
        if self.tokens < amount:
            return False
        self.tokens -= amount
        return True


@dataclass(slots=True)
class _Node:
    port: int  # its own port here
    key: bytes  # the MAC key shared with it
    seen: float  # its last hello, on any port
    bucket: _Bucket
    where: dict[int, Address] = field(default_factory=dict)  # port -> its address there
    stamps: dict[int, int] = field(default_factory=dict)  # port -> last hello's timestamp
    tx_bytes: int = 0
    tx_packets: int = 0


@dataclass(frozen=True, slots=True)
class Forward:
    """Send what came in from port ``from_port`` to ``to``."""

    from_port: int
    to: Address


class Forwarder:
    def __init__(
        self,
        keypair: StaticKeypair,
        ports: Iterable[int],
        *,
        rate: float = DEFAULT_RATE,
        burst: float = DEFAULT_BURST,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        """``ports``: the ports to give nodes (the hello port is apart)."""
        self.keypair = keypair
        self.rate = rate
        self.burst = burst
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.allowed: set[bytes] = set()
        self.nodes: dict[bytes, _Node] = {}
        self.owner: dict[int, bytes] = {}  # port -> node
        self.at: dict[tuple[int, Address], bytes] = {}  # (port, address) -> node
        self._free: deque[int] = deque(ports)
        self.drops: Counter[str] = Counter()
        self.forwarded_bytes = 0
        self.forwarded_packets = 0
        self.hellos = 0

    # -- who may use it ------------------------------------------------------------

    def set_allowed(self, keys: Iterable[bytes]) -> None:
        """The public keys the controller lists; anyone else's go."""
        self.allowed = set(keys)
        for public in [k for k in self.nodes if k not in self.allowed]:
            self._forget(public)

    # -- hellos ----------------------------------------------------------------------

    def hello(
        self, port: int, source: Address, data: bytes | memoryview, now: float
    ) -> bytes | None:
        """A hello that arrived on ``port``: the answer to send back, or None
        (dropped and counted)."""
        try:
            hello = decode_hello(data)
        except RelayWireError as exc:
            self.drops[exc.reason] += 1
            return None
        if hello.public not in self.allowed:
            self.drops["unknown_key"] += 1
            return None
        node = self.nodes.get(hello.public)
        key = node.key if node is not None else self._key(hello.public)
        if key is None or not hello.authentic(key):
            self.drops["bad_mac"] += 1
            return None
        if abs(hello.millis - self._clock_ms()) > MAX_CLOCK_SKEW_MS:
            self.drops["hello_clock_skew"] += 1
            return None
        if node is not None and hello.millis <= node.stamps.get(port, -1):
            self.drops["hello_replay"] += 1
            return None
        if node is None:
            if not self._free:
                self.drops["no_free_port"] += 1
                return None
            own = self._free.popleft()
            node = self.nodes[hello.public] = _Node(own, key, now, _Bucket(self.burst, now))
            self.owner[own] = hello.public
        node.seen = now
        node.stamps[port] = hello.millis
        old = node.where.get(port)
        if old is not None and old != source:
            self.at.pop((port, old), None)
        holder = self.at.get((port, source))
        if holder is not None and holder != hello.public:  # that address moved to us
            self.nodes[holder].where.pop(port, None)
        node.where[port] = source
        self.at[(port, source)] = hello.public
        self.hellos += 1
        return encode_answer(node.port, source, hello.nonce, key)

    def _key(self, public: bytes) -> bytes | None:
        try:
            return shared_key(self.keypair, public)
        except ValueError:  # a key with no shared secret: nobody holds its private half
            return None

    # -- data -----------------------------------------------------------------------

    def route(
        self, port: int, source: Address, size: int, count: int, now: float
    ) -> Forward | None:
        """Where ``count`` datagrams (``size`` bytes in all) that came from
        ``source`` on ``port`` go, or None (dropped and counted)."""
        sender_key = self.at.get((port, source))
        if sender_key is None:
            self.drops["unregistered"] += count
            return None
        receiver_key = self.owner.get(port)
        if receiver_key is None:
            self.drops["no_such_port"] += count
            return None
        sender = self.nodes[sender_key]
        if receiver_key == sender_key:
            self.drops["to_itself"] += count
            return None
        to = self.nodes[receiver_key].where.get(sender.port)
        if to is None:  # it has not said hello on the sender's port (yet)
            self.drops["peer_not_here"] += count
            return None
        if not sender.bucket.take(size, now, self.rate, self.burst):
            self.drops["rate_limited"] += count
            return None
        sender.tx_bytes += size
        sender.tx_packets += count
        self.forwarded_bytes += size
        self.forwarded_packets += count
        return Forward(sender.port, to)

    # -- time --------------------------------------------------------------------------

    def expire(self, now: float) -> None:
        """Forget nodes silent for ``REGISTRATION_TTL`` (their ports close)."""
        for public in [k for k, n in self.nodes.items() if now - n.seen >= REGISTRATION_TTL]:
            self._forget(public)

    def _forget(self, public: bytes) -> None:
        node = self.nodes.pop(public)
        for port, address in node.where.items():
            if self.at.get((port, address)) == public:
                del self.at[(port, address)]
        del self.owner[node.port]
        self._free.append(node.port)  # reused last: a stale candidate rarely meets a new owner

    def forget_address(self, address: Address) -> None:
        """A connection that ended (the TCP fallback): nothing goes there now."""
        for port, addr in [k for k in self.at if k[1] == address]:
            public = self.at.pop((port, addr))
            node = self.nodes.get(public)
            if node is not None and node.where.get(port) == address:
                del node.where[port]

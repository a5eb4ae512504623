"""A lane's standing with the relays: a hello to each relay's hello port
(which answers with our own port there: our relay candidate, with the RTT
of the exchange), and to every port of a peer on a relay that we send to,
so the relay knows our datagrams there (a symmetric NAT maps each port
apart). Hellos are said again every little while, sooner while unanswered.
Knows nothing of sockets: the lane sends what :meth:`due_hellos` gives and
hands back the answers."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from skylan.model.netmap import RelayInfo
from skylan.model.publickey import decode_public
from skylan.tunnel.keys import StaticKeypair
from skylan.tunnel.relaywire import RelayWireError, decode_answer, encode_hello, shared_key

Address = tuple[str, int]

HELLO_EVERY = 20.0
FIRST_RETRY = 0.5  # unanswered: 0.5, 1, 2, 4 … s, up to HELLO_EVERY
TLS_AFTER = 3  # hellos over UDP unanswered before the TCP fallback is tried


@dataclass
class _Target:
    """One relay port we say hello to."""

    key: bytes
    due: float = float("-inf")
    unanswered: int = 0
    nonce: bytes | None = None
    sent_at: float = 0.0


@dataclass
class RelayLink:
    """One relay, as this lane knows it."""

    info: RelayInfo
    host: str
    key: bytes  # the hellos' MAC key with it
    port: int | None = None  # ours on it: our relay candidate
    rtt: float | None = None
    tls: bool = False  # reached over its TCP fallback (see dataplane.relaystream)
    targets: dict[int, _Target] = field(default_factory=dict)  # its ports we say hello to


class RelayLinks:
    def __init__(
        self,
        keypair: StaticKeypair,
        random_bytes: Callable[[int], bytes] = os.urandom,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.keypair = keypair
        self.links: dict[str, RelayLink] = {}  # by relay id
        self._random = random_bytes
        self._wall_ms = wall_ms
        self._last_ms = 0
        self.errors: list[str] = []
        # over the TCP fallback: (relay id, relay port) -> where the lane sends
        # it, and back; set by the lane as it opens loopback sockets
        self.via: Callable[[RelayLink, int], Address] | None = None
        self._via_back: dict[Address, tuple[str, int]] = {}

    def set_relays(self, relays: Iterable[RelayInfo], peer_ports: Iterable[Address]) -> bool:
        """The relays the netmap lists, and the relay ports of our peers'
        candidates; True if our own candidates may have changed."""
        wanted = {r.id: r for r in relays}
        changed = False
        for relay_id in [i for i in self.links if i not in wanted]:
            changed = changed or self.links[relay_id].port is not None
            del self.links[relay_id]
        for relay_id, info in wanted.items():
            link = self.links.get(relay_id)
            host, _, home = info.address.rpartition(":")
            if link is not None and link.info == info:
                continue
            try:
                key = shared_key(self.keypair, decode_public(info.public_key))
            except ValueError as exc:  # a relay whose key no hello can work with
                self.errors.append(f"relay {info.name}: {exc}")
                continue
            link = self.links[relay_id] = RelayLink(info, host.strip("[]"), key)
            link.targets[int(home)] = _Target(key)
            changed = True
        by_host = {link.host: link for link in self.links.values()}
        ports: dict[str, set[int]] = {}
        for host, port in peer_ports:
            if (link := by_host.get(host)) is not None:
                ports.setdefault(link.info.id, set()).add(port)
        for link in self.links.values():
            keep = ports.get(link.info.id, set()) | {int(link.info.address.rpartition(":")[2])}
            for gone in [p for p in link.targets if p not in keep]:
                del link.targets[gone]
            for new in keep - set(link.targets):
                link.targets[new] = _Target(link.key)
        return changed

    def next_due(self) -> float | None:
        dues = [t.due for link in self.links.values() for t in link.targets.values()]
        return min(dues) if dues else None

    def due_hellos(self, now: float) -> list[tuple[Address, bytes]]:
        out = []
        for link in self.links.values():
            for port, target in link.targets.items():
                if now < target.due:
                    continue
                target.nonce = self._random(8)
                target.sent_at = now
                target.due = now + min(HELLO_EVERY, FIRST_RETRY * 2.0**target.unanswered)
                target.unanswered += 1
                millis = max(self._wall_ms(), self._last_ms + 1)  # grows, even within a ms
                self._last_ms = millis
                hello = encode_hello(self.keypair.public, millis, target.nonce, target.key)
                out.append((self.address(link, port), hello))
        return out

    def address(self, link: RelayLink, port: int) -> Address:
        """Where the lane sends what is for ``port`` on ``link``'s relay."""
        if not link.tls or self.via is None:
            return (link.host, port)
        local = self.via(link, port)
        self._via_back[local] = (link.info.id, port)
        return local

    def translate(self, address: Address) -> Address:
        """A peer's relay candidate as the lane must send to it: unchanged,
        unless that relay is reached over its TCP fallback."""
        link = next((k for k in self.links.values() if k.host == address[0]), None)
        return address if link is None else self.address(link, address[1])

    def wants_tls(self) -> list[RelayLink]:
        """Relays that answer no hello over UDP and offer a TCP fallback."""
        out = []
        for link in self.links.values():
            home = link.targets.get(int(link.info.address.rpartition(":")[2]))
            if (
                not link.tls
                and link.info.tls_port is not None
                and link.port is None
                and home is not None
                and home.unanswered >= TLS_AFTER
            ):
                out.append(link)
        return out

    def on_answer(self, data: bytes | memoryview, source: Address, now: float) -> bool:
        """A relay's answer; True if our own port on it changed. Raises
        RelayWireError (to be counted) for anything but an awaited answer."""
        back = self._via_back.get(source)
        if back is not None:
            link = self.links.get(back[0])
            target = link.targets.get(back[1]) if link is not None else None
        else:
            link = next((k for k in self.links.values() if k.host == source[0]), None)
            target = link.targets.get(source[1]) if link is not None else None
        if link is None or target is None:
            raise RelayWireError("answer_from_stranger")
        answer = decode_answer(data, target.key)
        if answer.nonce != target.nonce:
            raise RelayWireError("stale_answer")
        target.nonce = None
        target.unanswered = 0
        target.due = now + HELLO_EVERY
        link.rtt = now - target.sent_at
        changed = link.port != answer.port
        link.port = answer.port
        return changed

    def name_of(self, address: Address | None) -> str | None:
        """The relay an endpoint goes through (over TLS too), if any."""
        if address is None:
            return None
        back = self._via_back.get(address)
        if back is not None and (link := self.links.get(back[0])) is not None:
            return link.info.name
        link = next((k for k in self.links.values() if k.host == address[0]), None)
        return link.info.name if link is not None else None

    def rtt_of(self, host: str) -> float | None:
        """The last hello's round trip to the relay at ``host``."""
        link = next((k for k in self.links.values() if k.host == host), None)
        return None if link is None else link.rtt

    def rtts(self) -> dict[str, float]:
        """Each relay's last hello round trip, in ms, by name."""
        return {
            k.info.name: round(k.rtt * 1000, 2) for k in self.links.values() if k.rtt is not None
        }

    def candidates(self) -> list[str]:
        """Our relay candidates: host:port on each relay that answered."""
        return [
            f"{link.host}:{link.port}"
            for link in sorted(self.links.values(), key=lambda k: k.info.name)
            if link.port is not None
        ]

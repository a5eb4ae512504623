"""Simulated agents for controller benchmarks: the real ``sync`` protocol, as
cheaply as Python allows, so thousands of them measure the controller rather
than themselves.

Each agent holds one TLS connection (as a real agent does) and loops: POST
``/api/v1/agent/sync`` with a heartbeat when one is due and a numbered
statistics report, waiting up to the heartbeat interval for its next netmap.
Bodies are shaped like a real agent's (interfaces, endpoints, tunnel status for
``peers`` tunnels, traffic for ``active`` peers). A fraction of heartbeats
(``probe``) ask with ``wait=0``: their round trip is the heartbeat latency,
queueing in the controller included.

Agents start holding the current netmap version (as agents that restarted with
their netmap on disk do): the benchmark is of the steady state, not of 10,000
first downloads of a 10,000-member list.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

_VERSION = re.compile(rb'"netmap":\{"version":(\d+)')
_STORED = re.compile(rb'"stats_stored":(\d+)')


@dataclass
class Identity:
    node_id: str
    credential: str
    address: str  # its underlay address, for bodies


@dataclass
class Tally:
    heartbeat_ms: list[float] = field(default_factory=list)  # probes' round trips
    late_ms: list[float] = field(default_factory=list)  # long-polls answered after `wait`
    errors: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    netmaps: dict[int, float] = field(default_factory=dict)  # version -> wall time, first seen
    arrivals: dict[str, list[float]] = field(default_factory=dict)  # node -> netmap times

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


class _Http(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.answer is None:
            return
        head = bytes(self.buffer[:end]).lower()
        status = int(head[9:12])
        length = 0
        at = head.find(b"content-length:")
        if at >= 0:
            length = int(head[at + 15 : head.find(b"\r\n", at) if b"\r\n" in head[at:] else None])
        if len(self.buffer) < end + 4 + length:
            return
        body = bytes(self.buffer[end + 4 : end + 4 + length])
        del self.buffer[: end + 4 + length]
        if not self.answer.done():
            self.answer.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError(str(exc or "closed")))
        if not self.closed.done():
            self.closed.set_result(None)

    async def request(self, data: bytes, timeout: float) -> tuple[int, bytes]:
        assert self.transport is not None
        self.answer = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        async with asyncio.timeout(timeout):
            return await self.answer


def _tls() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # benchmark traffic to our own controller on loopback
    return ctx


@dataclass
class Shape:
    heartbeat_s: float = 15.0
    peers: int = 20  # tunnels in the heartbeat's status (sent when they change)
    active: int = 5  # peers with traffic in each statistics report
    probe: float = 0.1  # share of heartbeats that measure their latency (wait=0)
    network_id: str = ""


class SimAgent:
    def __init__(
        self,
        me: Identity,
        others: list[str],
        *,
        host: str,
        port: int,
        shape: Shape,
        tally: Tally,
        since: int,
        track: bool,
    ) -> None:
        self.me = me
        self.others = others
        self.host, self.port = host, port
        self.shape = shape
        self.tally = tally
        self.since = since
        self.track = track  # remember when each netmap arrived
        self.seq = 0
        self.stored = 0
        self.pending: list[dict[str, Any]] = []
        self.http: _Http | None = None
        self.rng = random.Random(me.node_id)
        self.started = time.monotonic()
        self.sent_peers = False

    def _heartbeat(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "agent_version": "0.1.0",
            "os": "Linux 6.1.0",
            "uptime_s": round(time.monotonic() - self.started + 3600, 1),
            "interfaces": [
                {
                    "name": "eth0",
                    "mac": "02:00:00:00:00:01",
                    "addresses": [f"{self.me.address}/16"],
                    "default_route": True,
                }
            ],
            "endpoints": [f"{self.me.address}:51820"],
            "lane_keys": [],
        }
        if self.shape.network_id:
            body["seen_ips"] = {self.shape.network_id: []}
        if not self.sent_peers:  # a real agent sends its tunnels when they change
            body["peers"] = [
                {
                    "node_id": peer,
                    "established": True,
                    "endpoint": "198.18.0.1:51820",
                    "handshake_age_s": 12.5,
                    "rtt_ms": 0.4,
                    "dead": False,
                }
                for peer in self.others[: self.shape.peers]
            ]
            self.sent_peers = True
        return body

    def _report(self) -> dict[str, Any]:
        self.seq += 1
        busy = self.others[: self.shape.active]
        return {
            "seq": self.seq,
            "at": time.time(),
            "total": {
                "rx_bytes": 150_000,
                "tx_bytes": 120_000,
                "rx_packets": 200,
                "tx_packets": 180,
            },
            "peers": [
                {
                    "peer_id": p,
                    "rx_bytes": 30_000,
                    "tx_bytes": 24_000,
                    "rx_packets": 40,
                    "tx_packets": 36,
                    "rtt_ms": 0.4,
                }
                for p in busy
            ],
            "ports": (
                [{"network_id": self.shape.network_id, "rx_bytes": 150_000, "tx_bytes": 120_000}]
                if self.shape.network_id
                else []
            ),
        }

    def _request(self, wait: float, body: dict[str, Any]) -> bytes:
        payload = json.dumps(body, separators=(",", ":")).encode()
        return (
            f"POST /api/v1/agent/sync?since={self.since}&wait={wait} HTTP/1.1\r\n"
            f"Host: {self.host}\r\nAuthorization: Bearer {self.me.credential}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload

    async def _connect(self) -> _Http:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(_Http, self.host, self.port, ssl=_tls())
        return proto

    async def run(self, until: float) -> None:
        # start at a random point of the interval, as agents that came up at different times
        await asyncio.sleep(self.rng.uniform(0, self.shape.heartbeat_s))
        next_beat = 0.0
        backoff = 1.0
        while time.monotonic() < until:
            try:
                if self.http is None or self.http.closed.done():
                    self.http = await self._connect()
                now = time.monotonic()
                body: dict[str, Any] = {}
                beat = now >= next_beat
                if beat:
                    body["heartbeat"] = self._heartbeat()
                    self.pending.append(self._report())  # stats at the heartbeat's pace
                    next_beat = now + self.shape.heartbeat_s
                if self.pending:
                    body["stats"] = self.pending
                probe = beat and self.rng.random() < self.shape.probe
                wait = 0.0 if probe else max(min(next_beat - now, self.shape.heartbeat_s), 0.0)
                t0 = time.monotonic()
                status, answer = await self.http.request(self._request(wait, body), wait + 30)
                took = time.monotonic() - t0
                self.tally.requests += 1
                if status != 200:
                    self.tally.error(str(status))
                    await asyncio.sleep(backoff * self.rng.uniform(1, 1.5))
                    backoff = min(backoff * 2, 30)
                    continue
                backoff = 1.0
                if probe:
                    self.tally.heartbeat_ms.append(took * 1000)
                stored = _STORED.search(answer)
                if stored:
                    self.stored = int(stored.group(1))
                    self.pending = [r for r in self.pending if r["seq"] > self.stored]
                found = _VERSION.search(answer)
                if found:
                    version = int(found.group(1))
                    self.since = max(self.since, version)
                    seen = time.time()
                    self.tally.netmaps.setdefault(version, seen)
                    if self.track:
                        self.tally.arrivals.setdefault(self.me.node_id, []).append(seen)
                elif not probe:
                    self.tally.late_ms.append(max(took - wait, 0.0) * 1000)
            except (OSError, ConnectionError, TimeoutError, ssl.SSLError) as exc:
                self.tally.error(type(exc).__name__)
                if self.http is not None and self.http.transport is not None:
                    self.http.transport.close()
                self.http = None
                await asyncio.sleep(backoff * self.rng.uniform(1, 1.5))
                backoff = min(backoff * 2, 30)
        if self.http is not None and self.http.transport is not None:
            self.http.transport.close()


async def run_agents(
    identities: list[Identity],
    peers_of: list[str],
    *,
    targets: list[tuple[str, int]],
    shape: Shape,
    since: int,
    seconds: float,
    ramp_s: float,
) -> Tally:
    """Run ``identities`` for ``seconds`` (agent i talks to targets[i % len]),
    connecting over ``ramp_s`` seconds."""
    tally = Tally()
    until = time.monotonic() + seconds
    agents = []
    for i, me in enumerate(identities):
        host, port = targets[i % len(targets)]
        agents.append(
            SimAgent(
                me,
                peers_of,
                host=host,
                port=port,
                shape=shape,
                tally=tally,
                since=since,
                track=True,
            )
        )

    async def staggered(i: int, agent: SimAgent) -> None:
        await asyncio.sleep(ramp_s * i / max(len(agents), 1))
        await agent.run(until)

    await asyncio.gather(*(staggered(i, a) for i, a in enumerate(agents)))
    return tally


def worker_main(conn: Any, spec: dict[str, Any]) -> None:
    """Entry point of a simulator process (multiprocessing): runs its share of
    the agents and sends back the tally."""
    import uvloop

    identities = [Identity(**x) for x in spec["identities"]]
    shape = Shape(**spec["shape"])
    tally = uvloop.run(
        run_agents(
            identities,
            spec["peers"],
            targets=[tuple(t) for t in spec["targets"]],
            shape=shape,
            since=spec["since"],
            seconds=spec["seconds"],
            ramp_s=spec["ramp_s"],
        )
    )
    conn.send(tally)
    conn.close()

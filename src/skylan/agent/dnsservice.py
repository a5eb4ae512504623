"""The agent's DNS server: UDP and TCP on port 53 of the addresses it is
given, answering the networks' zones (:mod:`skylan.agent.dnsanswers`) and,
when it stands in front of the host's resolvers (the resolv.conf fallback),
forwarding every other name to them unchanged: a datagram as a datagram, a
query over TCP over TCP (a client uses TCP when the answer did not fit a
datagram, so the upstream must not be asked over UDP again).

Bounded everywhere: queries over 4 KiB, answers sent to us and garbage are
dropped and counted; at most 1,024 forwarded queries wait for an answer (the
oldest give way) and 64 TCP clients are served at once, each for 10 s; each
has at most one query upstream at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from skylan.agent.dnsanswers import MAX_QUERY, Answerer, Outcome, Zone

log = logging.getLogger(__name__)

PORT = 53
FORWARD_TIMEOUT = 5.0
MAX_PENDING = 1024
MAX_TCP_CLIENTS = 64
TCP_IDLE = 10.0
IP_FREEBIND = 15  # linux/in.h: bind before the address is configured

Reply = Callable[[bytes], None]


@dataclass
class _Waiting:
    reply: Reply
    query_id: bytes
    upstream: tuple[str, int]
    deadline: float


class _Forwarder(asyncio.DatagramProtocol):
    """Sends queries to the upstreams from one socket, under fresh random
    ids; an answer is passed on only from the upstream it was sent to."""

    def __init__(self, service: DnsService) -> None:
        self.service = service
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: OrderedDict[bytes, _Waiting] = OrderedDict()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is its own class

    def forward(self, query: bytes, reply: Reply) -> None:
        upstreams = self.service.upstreams
        if self.transport is None or not upstreams or len(query) < 12:
            return
        now = time.monotonic()
        while self.waiting and (
            len(self.waiting) >= MAX_PENDING or next(iter(self.waiting.values())).deadline < now
        ):
            self.waiting.popitem(last=False)
            self.service.counts["forward_expired"] += 1
        new_id = secrets.token_bytes(2)
        while new_id in self.waiting:
            new_id = secrets.token_bytes(2)
        upstream = self.service.next_upstream()
        self.waiting[new_id] = _Waiting(reply, query[:2], upstream, now + FORWARD_TIMEOUT)
        self.transport.sendto(new_id + query[2:], upstream)
        self.service.counts["forwarded"] += 1

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if len(data) < 12:
            return
        waiting = self.waiting.get(data[:2])
        if waiting is None or (str(addr[0]), addr[1]) != waiting.upstream:
            self.service.counts["forward_stray"] += 1
            return
        del self.waiting[data[:2]]
        waiting.reply(waiting.query_id + data[2:])

    def error_received(self, exc: Exception) -> None:
        self.service.counts["forward_errors"] += 1


class _Server(asyncio.DatagramProtocol):
    def __init__(self, service: DnsService) -> None:
        self.service = service
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is its own class

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        transport = self.transport
        if transport is None:
            return

        def reply(wire: bytes) -> None:
            if not transport.is_closing():
                transport.sendto(wire, addr)

        self.service.handle(data, reply)

    def error_received(self, exc: Exception) -> None:
        self.service.counts["errors"] += 1


class DnsService:
    def __init__(self) -> None:
        self.answerer = Answerer()
        self.counts = self.answerer.counts
        self.upstreams: list[str] = []
        self.upstream_port = PORT
        self._next = 0
        self._udp: dict[str, asyncio.DatagramTransport] = {}
        self._tcp: dict[str, asyncio.Server] = {}
        self._forwarder: _Forwarder | None = None
        self._tcp_clients = 0
        self.errors: dict[str, str] = {}  # address -> why it could not listen there

    @property
    def listening(self) -> list[str]:
        return sorted(self._udp)

    def set_zones(self, zones: list[Zone]) -> None:
        self.answerer.zones = zones

    def next_upstream(self) -> tuple[str, int]:
        """Spread over the upstreams, as resolv.conf's ``rotate`` would."""
        upstream = self.upstreams[self._next % len(self.upstreams)]
        self._next += 1
        return upstream, self.upstream_port

    def handle(self, query: bytes, reply: Reply) -> None:
        outcome, wire = self.answerer.answer(query, recursion=bool(self.upstreams))
        if outcome is Outcome.ANSWERED:
            reply(wire)
        elif outcome is Outcome.NOT_OURS:
            if self.upstreams and self._forwarder is not None:
                self._forwarder.forward(query, reply)
            elif refused := self.answerer.refuse(query):
                reply(refused)

    async def listen(self, addresses: set[str], port: int = PORT) -> None:
        """Serve on exactly these addresses (opening and closing to match)."""
        loop = asyncio.get_running_loop()
        if self._forwarder is None:
            forwarder = _Forwarder(self)
            await loop.create_datagram_endpoint(lambda: forwarder, local_addr=("0.0.0.0", 0))
            self._forwarder = forwarder
        for address in set(self._udp) - addresses:
            self._udp.pop(address).close()
            server = self._tcp.pop(address, None)
            if server is not None:
                server.close()
        for address in addresses - set(self._udp):
            try:
                udp = _bound(address, port, socket.SOCK_DGRAM)
                transport, _ = await loop.create_datagram_endpoint(lambda: _Server(self), sock=udp)
                tcp = _bound(address, port, socket.SOCK_STREAM)
                try:
                    self._tcp[address] = await asyncio.start_server(
                        self._serve_tcp, sock=tcp, limit=MAX_QUERY + 2
                    )
                except OSError:
                    transport.close()
                    raise
            except OSError as exc:
                if self.errors.get(address) != str(exc):
                    log.warning("DNS: cannot listen on %s:%d: %s", address, port, exc)
                self.errors[address] = str(exc)
                continue
            self.errors.pop(address, None)
            self._udp[address] = transport

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._tcp_clients >= MAX_TCP_CLIENTS:
            self.counts["tcp_refused"] += 1
            writer.close()
            return
        self._tcp_clients += 1
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE)
                (size,) = struct.unpack("!H", head)
                if size > MAX_QUERY:
                    self.counts["malformed"] += 1
                    return
                query = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE)
                wire = await self._answer_stream(query)
                if wire is None:
                    return  # closing tells the client to try its next server
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tcp_clients -= 1
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _answer_stream(self, query: bytes) -> bytes | None:
        outcome, wire = self.answerer.answer(query, recursion=bool(self.upstreams))
        if outcome is Outcome.ANSWERED:
            return wire
        if outcome is not Outcome.NOT_OURS:
            return None
        if not self.upstreams:
            return self.answerer.refuse(query) or None
        return await self._forward_stream(query)

    async def _forward_stream(self, query: bytes) -> bytes | None:
        host, port = self.next_upstream()
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(FORWARD_TIMEOUT):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(struct.pack("!H", len(query)) + query)
                await writer.drain()
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                answer = await reader.readexactly(size)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            self.counts["forward_errors"] += 1
            return None
        finally:
            if writer is not None:
                writer.close()
        self.counts["forwarded_tcp"] += 1
        if len(answer) < 12 or answer[:2] != query[:2]:
            self.counts["forward_stray"] += 1
            return None
        return answer

    async def aclose(self) -> None:
        await self.listen(set())
        if self._forwarder is not None and self._forwarder.transport is not None:
            self._forwarder.transport.close()
        self._forwarder = None


def _bound(address: str, port: int, kind: socket.SocketKind) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(64)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock

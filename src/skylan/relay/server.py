"""The relay's sockets: the hello port and one port per registered node,
read with ``recvmmsg`` into one shared set of buffers, UDP GRO batches
forwarded whole with one GSO ``sendmsg`` (so a relayed super-frame costs two
system calls here, not ninety), and the forwarder deciding each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from skylan.dataplane.mmsg import MessageBatch
from skylan.dataplane.tunnelporterror import TunnelPortError
from skylan.dataplane.udp import UdpSocket
from skylan.relay.forwarder import Forwarder
from skylan.relay.streams import StreamFront, is_stream
from skylan.tunnel.relaywire import HELLO, HELLO_LEN

log = logging.getLogger("skylan.relay")

EXPIRE_EVERY = 10.0
Address = tuple[str, int]


class RelayServer:
    def __init__(self, forwarder: Forwarder, host: str, hello_port: int) -> None:
        self.forwarder = forwarder
        self.host = host
        self.hello_port = hello_port
        self.sockets: dict[int, UdpSocket] = {}
        self._batch: MessageBatch | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._allocated = False  # a hello gave a port that has no socket yet
        self.streams: StreamFront | None = None  # the TCP fallback, if it serves one

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        first = UdpSocket(self.hello_port, self.host)
        self._batch = first.batch  # every other port reads into the same buffers
        self._add(self.hello_port, first)
        self._expiry = self._loop.call_later(EXPIRE_EVERY, self._expire)
        log.info("relay listening on UDP %s:%d", self.host, self.hello_port)

    def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        for port in list(self.sockets):
            self._remove(port)

    # -- sockets ----------------------------------------------------------------------

    def _add(self, port: int, sock: UdpSocket) -> None:
        assert self._loop is not None
        self.sockets[port] = sock
        self._loop.add_reader(sock.fileno(), self._readable, port)

    def _remove(self, port: int) -> None:
        sock = self.sockets.pop(port, None)
        if sock is not None and self._loop is not None:
            self._loop.remove_reader(sock.fileno())
            sock.close()

    def _reconcile(self) -> None:
        """A socket for every port the forwarder has given, none for the rest."""
        self._allocated = False
        wanted = set(self.forwarder.owner) | {self.hello_port}
        for port in [p for p in self.sockets if p not in wanted]:
            self._remove(port)
        for port in wanted - set(self.sockets):
            try:
                self._add(port, UdpSocket(port, self.host, batch=self._batch))
            except TunnelPortError as exc:  # taken by something else: that node waits
                log.warning("relay port %d: %s", port, exc)

    def _expire(self) -> None:
        assert self._loop is not None
        self.forwarder.expire(time.monotonic())
        self._reconcile()
        self._expiry = self._loop.call_later(EXPIRE_EVERY, self._expire)

    # -- traffic ------------------------------------------------------------------------

    def _readable(self, port: int) -> None:
        sock = self.sockets.get(port)
        if sock is None:
            return
        for batch, segment, addr in sock.receive_batches():
            self._arrived(port, addr, batch, segment)
        if self._allocated:
            self._reconcile()

    def from_stream(self, port: int, address: Address, datagram: bytes) -> None:
        """A datagram that came over a TCP-fallback connection, for ``port``."""
        self._arrived(port, address, memoryview(datagram), len(datagram))
        if self._allocated:
            self._reconcile()

    def _arrived(self, port: int, source: Address, batch: memoryview, segment: int) -> None:
        fwd = self.forwarder
        now = time.monotonic()
        if batch[:1] == _HELLO and segment == HELLO_LEN:
            for hello in _segments(batch, segment):
                answer = fwd.hello(port, source, hello, now)
                if answer is not None:
                    self._send(port, source, [answer], len(answer), 1)
                    self._allocated = self._allocated or not set(fwd.owner) <= set(self.sockets)
            return
        count = -(-len(batch) // segment)
        route = fwd.route(port, source, len(batch), count, now)
        if route is not None:
            self._send(route.from_port, route.to, [batch], segment, count)

    def _send(
        self,
        from_port: int,
        to: Address,
        buffers: list[bytes | memoryview],
        segment: int,
        count: int,
    ) -> None:
        if is_stream(to):
            if self.streams is not None:
                whole = buffers[0] if len(buffers) == 1 else b"".join(buffers)
                self.streams.send(to, from_port, list(_segments(memoryview(whole), segment)))
            return
        out = self.sockets.get(from_port)
        if out is None:
            self.forwarder.drops["port_closed"] += count
            return
        out.send(buffers, segment, count, to)


_HELLO = bytes([HELLO])


def _segments(batch: memoryview, size: int) -> Iterable[memoryview]:
    for at in range(0, len(batch), size):
        yield batch[at : at + size]

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
from skylan.tunnel.relaywire import HELLO, HELLO_LEN

log = logging.getLogger("skylan.relay")

EXPIRE_EVERY = 10.0


class RelayServer:
    def __init__(self, forwarder: Forwarder, host: str, hello_port: int) -> None:
        self.forwarder = forwarder
        self.host = host
        self.hello_port = hello_port
        self.sockets: dict[int, UdpSocket] = {}
        self._batch: MessageBatch | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._expiry: asyncio.TimerHandle | None = None

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
        fwd = self.forwarder
        now = time.monotonic()
        allocated = False
        for batch, segment, addr in sock.receive_batches():
            if batch[:1] == bytes([HELLO]) and segment == HELLO_LEN:
                for hello in _segments(batch, segment):
                    answer = fwd.hello(port, addr, hello, now)
                    if answer is not None:
                        sock.send([answer], 0, 1, addr)
                        allocated = allocated or fwd.port_of(bytes(hello[4:36])) not in self.sockets
                continue
            count = -(-len(batch) // segment)
            route = fwd.route(port, addr, len(batch), count, now)
            if route is None:
                continue
            out = self.sockets.get(route.from_port)
            if out is None:
                fwd.drops["port_closed"] += count
                continue
            out.send([batch], segment, count, route.to)
        if allocated:
            self._reconcile()


def _segments(batch: memoryview, size: int) -> Iterable[memoryview]:
    for at in range(0, len(batch), size):
        yield batch[at : at + size]

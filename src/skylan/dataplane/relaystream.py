"""A lane's way to a relay when no UDP gets out: one TLS connection to the
relay's TCP fallback, and a loopback UDP socket per relay port the lane
talks to. The lane (or the compiled core) sends to ``127.0.0.1:local`` as it
would send to ``relay:port``; what the relay sends from a port comes out of
that port's loopback socket. So the data plane itself knows nothing of TCP.

The relay's certificate is not checked: the lane knows it reached the relay
by the MAC on the relay's answer to its hello, and the tunnels inside are
end-to-end encrypted (see :mod:`skylan.relay.streams`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl

from skylan.model.counters import DropCounters
from skylan.tunnel.relaywire import (
    FRAME_HEADER_LEN,
    RelayWireError,
    decode_frame_header,
    encode_frame,
)

log = logging.getLogger("skylan.dataplane")

Address = tuple[str, int]
LOOPBACK = "127.0.0.1"
BACKLOG_LIMIT = 4 << 20
RECONNECT_MAX = 30.0
UNSENT = "relay_tls_unsent"  # the drop reason


class RelayStream:
    def __init__(
        self, host: str, tls_port: int, lane_port: int, drops: DropCounters | None = None
    ) -> None:
        self.host = host
        self.tls_port = tls_port
        self.lane = (LOOPBACK, lane_port)  # where the lane's socket listens
        self.sockets: dict[int, socket.socket] = {}  # relay port -> its loopback socket
        # the lane's own: what the stream cannot send shows in `skylan status`
        self.drops = drops if drops is not None else DropCounters()
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name=f"relay-stream-{self.host}")

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()
        for sock in self.sockets.values():
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self.sockets.clear()

    def local(self, port: int) -> Address:
        """Where the lane sends what is for ``port`` on the relay."""
        sock = self.sockets.get(port)
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((LOOPBACK, 0))
            sock.setblocking(False)
            self.sockets[port] = sock
            assert self._loop is not None
            self._loop.add_reader(sock.fileno(), self._from_lane, port, sock)
        address: Address = sock.getsockname()
        return address

    def _from_lane(self, port: int, sock: socket.socket) -> None:
        frames = []
        while True:
            try:
                data, source = sock.recvfrom(65535)
            except BlockingIOError:
                break
            if source == self.lane and data:  # (nothing else on this host may use it)
                frames.append(encode_frame(port, data))
        writer = self._writer
        if not frames:
            return
        if (
            writer is None
            or writer.is_closing()
            or writer.transport.get_write_buffer_size() > BACKLOG_LIMIT
        ):
            # not connected (yet, or again), or the relay reads too slowly
            self.drops.add(UNSENT, len(frames))
        else:
            writer.write(b"".join(frames))

    async def _run(self) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # see the module's docstring
        backoff = 1.0
        while True:
            try:
                reader, writer = await asyncio.open_connection(
                    self.host, self.tls_port, ssl=context
                )
            except (OSError, ssl.SSLError) as exc:
                log.warning("relay %s:%d over TLS: %s", self.host, self.tls_port, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX)
                continue
            log.info("relay %s reached over TLS on port %d", self.host, self.tls_port)
            backoff = 1.0
            self._writer = writer
            try:
                while True:
                    length, port = decode_frame_header(await reader.readexactly(FRAME_HEADER_LEN))
                    datagram = await reader.readexactly(length)
                    sock = self.sockets.get(port)
                    if sock is None:
                        self.local(port)
                        sock = self.sockets[port]
                    with contextlib.suppress(OSError):
                        sock.sendto(datagram, self.lane)
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, RelayWireError):
                log.warning("relay %s: the TLS connection ended; again", self.host)
            finally:
                self._writer = None
                writer.close()
            await asyncio.sleep(backoff)

"""The controller's listening sockets: accept, and start each connection's TLS
(``tlsconnection``) with the HTTP protocol made only after the handshake."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable

from skylan.controller.tlsconnection import ReadBuffer, TlsTransport

log = logging.getLogger(__name__)

ACCEPTS_PER_WAKEUP = 64
HANDSHAKE_TIMEOUT_S = 10.0


def bind(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Listening sockets for ``host`` (every address it names; "" or "0.0.0.0"
    is IPv4's any, "::" IPv6's only), as asyncio's ``create_server`` binds."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


class TlsListener:
    """Accepts on ``socks``; has the ``close``/``wait_closed`` a server has."""

    def __init__(
        self,
        socks: list[socket.socket],
        context: ssl.SSLContext,
        make_protocol: Callable[[], asyncio.Protocol],
        *,
        handshake_timeout: float = HANDSHAKE_TIMEOUT_S,
    ) -> None:
        self.sockets = socks
        context.options |= ssl.OP_NO_RENEGOTIATION  # a client could otherwise make it work for it
        self._context = context
        self._make_protocol = make_protocol
        self._handshake_timeout = handshake_timeout
        self._buffer = ReadBuffer()
        self._handshaking: set[TlsTransport] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for sock in self.sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, listening: socket.socket) -> None:
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                sock, _ = listening.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:  # out of descriptors or memory: try again in a while
                log.error("accepting a connection failed: %s", exc)
                self._pause(listening)
                return
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                tls = self._context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
            except OSError as exc:  # reset before we got to it
                log.debug("dropped a connection before TLS: %s", exc)
                sock.close()
                continue
            transport = TlsTransport(
                tls,
                self._make_protocol,
                self._buffer,
                handshake_timeout=self._handshake_timeout,
                on_done=self._handshaking.discard,
            )
            if transport.handshaking:
                self._handshaking.add(transport)

    def _pause(self, listening: socket.socket) -> None:
        assert self._loop is not None
        self._loop.remove_reader(listening.fileno())

        def resume() -> None:
            if not self._closed and self._loop is not None:
                self._loop.add_reader(listening.fileno(), self._accept, listening)

        self._loop.call_later(1.0, resume)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sock in self.sockets:
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        for transport in list(self._handshaking):
            transport.abort()
        self._handshaking.clear()

    async def wait_closed(self) -> None:
        return None

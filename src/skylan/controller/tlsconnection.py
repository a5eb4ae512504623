"""One TLS connection as an asyncio transport, on a non-blocking ``SSLSocket``.

The event loops' own TLS (asyncio's and uvloop's ``SSLProtocol``) feeds OpenSSL
through a pair of memory BIOs and a read buffer per connection. The memory
BIOs keep their largest size for as long as the connection lives: after one
full netmap of a megabyte, a parked agent connection held 1.2 MiB (measured),
and an idle one 25 KiB. A controller holds one connection per agent, so here
OpenSSL reads and writes the socket itself (a socket BIO) and, with
``SSL_MODE_RELEASE_BUFFERS`` (which Python sets), holds no buffer while idle;
reads go through one buffer shared by every connection of the loop. What
remains per connection is OpenSSL's session state and this object.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

RECORD = 16384  # one TLS record per write: a retry after WANT_WRITE repeats it exactly
READS_PER_WAKEUP = 16  # then yield to other connections (what is left is read next turn)

_HANDSHAKE, _OPEN, _CLOSING, _CLOSED = range(4)


class ReadBuffer:
    """The buffer every connection of one event loop decrypts into, in turn."""

    __slots__ = ("view",)

    def __init__(self, size: int = 65536) -> None:
        self.view = memoryview(bytearray(size))


class TlsTransport(asyncio.Transport):
    """A server-side TLS connection; the protocol is made once the handshake
    is done (a client that never finishes it costs no protocol and is dropped
    after ``handshake_timeout``)."""

    __slots__ = (
        "_buffer",
        "_fd",
        "_head_off",
        "_high",
        "_loop",
        "_low",
        "_make_protocol",
        "_on_done",
        "_paused",
        "_protocol",
        "_queue",
        "_queued",
        "_read_wants_write",
        "_reader_on",
        "_sock",
        "_state",
        "_timer",
        "_write_paused",
        "_write_wants_read",
        "_writer_on",
    )

    def __init__(
        self,
        sock: ssl.SSLSocket,
        make_protocol: Callable[[], asyncio.Protocol],
        buffer: ReadBuffer,
        *,
        handshake_timeout: float,
        on_done: Callable[[TlsTransport], None],
    ) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._fd = sock.fileno()
        self._make_protocol = make_protocol
        self._protocol: asyncio.Protocol | None = None
        self._buffer = buffer
        self._state = _HANDSHAKE
        self._queue: deque[bytes] | None = None  # made on the first write that must wait
        self._head_off = 0
        self._queued = 0
        self._writer_on = False
        self._reader_on = False
        self._paused = False
        self._write_paused = False
        self._high = 65536
        self._low = 16384
        self._read_wants_write = False
        self._write_wants_read = False
        self._on_done = on_done  # the listener forgets connections still in handshake
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(
            handshake_timeout, self._handshake_expired
        )
        self._reading(True)
        self._handshake()

    # -- the handshake ---------------------------------------------------------

    def _handshake(self) -> None:
        try:
            self._sock.do_handshake()
        except ssl.SSLWantReadError:
            self._writing(False)
            return
        except ssl.SSLWantWriteError:
            self._writing(True)
            return
        except (ssl.SSLError, OSError) as exc:  # not TLS, a bad client hello, a reset
            log.debug("TLS handshake failed: %s", exc)
            self._finish(None)
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._writing(False)
        self._state = _OPEN
        self._on_done(self)
        protocol = self._make_protocol()
        self._protocol = protocol
        protocol.connection_made(self)
        if self._state == _OPEN:
            self._read()  # the client's first request may have come with its Finished

    @property
    def handshaking(self) -> bool:
        return self._state == _HANDSHAKE

    def _handshake_expired(self) -> None:
        self._timer = None
        if self._state == _HANDSHAKE:
            log.debug("TLS handshake timed out")
            self._finish(None)

    # -- readiness ---------------------------------------------------------------

    def _reading(self, on: bool) -> None:
        if on and not self._reader_on:
            self._loop.add_reader(self._fd, self._readable)
        elif not on and self._reader_on:
            self._loop.remove_reader(self._fd)
        self._reader_on = on

    def _writing(self, on: bool) -> None:
        if on and not self._writer_on:
            self._loop.add_writer(self._fd, self._writable)
        elif not on and self._writer_on:
            self._loop.remove_writer(self._fd)
        self._writer_on = on

    def _readable(self) -> None:
        if self._state == _HANDSHAKE:
            self._handshake()
            return
        if self._write_wants_read:
            self._write_wants_read = False
            self._flush()
        self._read()

    def _writable(self) -> None:
        if self._state == _HANDSHAKE:
            self._handshake()
            return
        if self._read_wants_write:
            self._read_wants_write = False
            self._read()
        self._flush()

    # -- reading -----------------------------------------------------------------

    def _read(self) -> None:
        view = self._buffer.view
        for _ in range(READS_PER_WAKEUP):
            if self._state != _OPEN or self._paused or self._protocol is None:
                return
            try:
                n = self._sock.recv_into(view)
            except ssl.SSLWantReadError:
                return
            except ssl.SSLWantWriteError:  # a post-handshake message must be answered
                self._read_wants_write = True
                self._writing(True)
                return
            except (ssl.SSLError, OSError) as exc:
                self._fatal(exc)
                return
            if n == 0:
                self._eof()
                return
            self._protocol.data_received(bytes(view[:n]))
        # more may wait inside OpenSSL, where the socket's readiness does not show it
        self._loop.call_soon(self._read)

    def _eof(self) -> None:
        assert self._protocol is not None
        try:
            self._protocol.eof_received()  # TLS has no half-close: the connection ends
        finally:
            self.close()

    def pause_reading(self) -> None:
        if self._state == _OPEN and not self._paused:
            self._paused = True
            self._reading(False)

    def resume_reading(self) -> None:
        if self._state == _OPEN and self._paused:
            self._paused = False
            self._reading(True)
            self._loop.call_soon(self._read)  # what OpenSSL already decrypted

    def is_reading(self) -> bool:
        return self._state == _OPEN and not self._paused

    # -- writing -----------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data or self._state != _OPEN:
            return  # after close, as asyncio's transports: silently dropped
        if self._queue is None:
            self._queue = deque()
        self._queue.append(bytes(data))
        self._queued += len(data)
        if not self._writer_on and not self._write_wants_read:
            self._flush()
        if self._state == _OPEN and not self._write_paused and self._queued > self._high:
            self._write_paused = True
            if self._protocol is not None:
                self._protocol.pause_writing()

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def _flush(self) -> None:
        queue = self._queue
        while queue:
            head = queue[0]
            chunk = memoryview(head)[self._head_off : self._head_off + RECORD]
            try:
                n = self._sock.send(chunk)
            except ssl.SSLWantWriteError:
                self._writing(True)
                return
            except ssl.SSLWantReadError:
                self._write_wants_read = True
                self._writing(False)
                return
            except (ssl.SSLError, OSError) as exc:
                self._fatal(exc)
                return
            self._head_off += n
            self._queued -= n
            if self._head_off >= len(head):
                queue.popleft()
                self._head_off = 0
        self._queue = None  # an idle connection holds no queue
        if not self._read_wants_write:
            self._writing(False)
        if self._write_paused and self._queued <= self._low:
            self._write_paused = False
            if self._protocol is not None and self._state == _OPEN:
                self._protocol.resume_writing()
        if self._state == _CLOSING:
            self._finish(None)

    def get_write_buffer_size(self) -> int:
        return self._queued

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 65536 if high is None else high
        self._low = self._high // 4 if low is None else low

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("TLS connections cannot half-close")

    # -- ending ------------------------------------------------------------------

    def is_closing(self) -> bool:
        return self._state >= _CLOSING

    def close(self) -> None:
        """Stop reading; end the connection once what was written has gone."""
        if self._state >= _CLOSING:
            return
        if self._state == _HANDSHAKE:
            self._finish(None)
            return
        self._state = _CLOSING
        self._reading(False)
        if not self._queued:
            self._finish(None)

    def abort(self) -> None:
        self._finish(None)

    def _fatal(self, exc: Exception) -> None:
        log.debug("TLS connection failed: %s", exc)
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._state == _CLOSED:
            return
        was_open = self._protocol is not None
        self._state = _CLOSED
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._reading(False)
        self._writing(False)
        self._queue = None
        self._queued = 0
        if exc is None and was_open:
            try:  # a close_notify, if the socket takes it now; nobody waits for the reply
                self._sock.unwrap()
            except (ssl.SSLError, OSError, ValueError):
                pass
        self._sock.close()
        if was_open:
            self._loop.call_soon(self._connection_lost, exc)
        else:
            self._on_done(self)

    def _connection_lost(self, exc: Exception | None) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.connection_lost(exc)

    # -- what the protocol may ask ----------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        sock = self._sock
        try:
            if name == "socket":
                return sock
            if name == "peername":
                return sock.getpeername()
            if name == "sockname":
                return sock.getsockname()
            if name == "sslcontext":
                return sock.context
            if name == "ssl_object":
                return sock
            if name == "peercert":
                return sock.getpeercert()
            if name == "cipher":
                return sock.cipher()
        except (OSError, ValueError):
            return default
        return default

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

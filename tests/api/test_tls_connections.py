"""The controller's own TLS connections (controller/tlsconnection.py) on real
sockets over loopback: what uvicorn relies on from a transport, and what a
hostile or slow client can do to it."""

from __future__ import annotations

import asyncio
import hashlib
import resource
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import pytest

from skylan.controller.tls import ensure_certificate
from skylan.controller.tlsconnection import TlsTransport
from skylan.controller.tlslistener import TlsListener, bind

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder(asyncio.Protocol):
    """Echoes what it gets, answers ``big N`` with N bytes, and writes down
    every call a transport makes."""

    made: ClassVar[list[Recorder]] = []

    def __init__(self) -> None:
        self.transport: TlsTransport | None = None
        self.received = bytearray()
        self.events: list[str] = []
        self.lost = asyncio.get_running_loop().create_future()
        Recorder.made.append(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, TlsTransport)
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.received += data
        if data.startswith(b"big "):
            size = int(data.split()[1])
            self.transport.write(bytes(range(256)) * (size // 256))
        elif data.startswith(b"close"):
            self.transport.write(b"bye")
            self.transport.close()
        elif not data.startswith(b"quiet"):
            self.transport.write(data)

    def eof_received(self) -> None:
        self.events.append("eof")

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        if not self.lost.done():
            self.lost.set_result(exc)


@pytest.fixture
def certs(tmp_path: Path) -> ssl.SSLContext:
    files = ensure_certificate(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files.cert, files.key)
    return ctx


@pytest.fixture
async def listener(certs: ssl.SSLContext) -> AsyncIterator[TlsListener]:
    Recorder.made = []
    server = TlsListener(bind("127.0.0.1", 0, 100), certs, Recorder, handshake_timeout=0.5)
    server.start()
    yield server
    server.close()


def client_tls() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a test client of a throwaway certificate
    return ctx


async def connect(
    server: TlsListener, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = server.sockets[0].getsockname()[1]
    sock = socket.socket()
    if rcvbuf is not None:  # a slow reader's socket: the server's writes must wait
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(
        sock=sock, ssl=client_tls(), server_hostname="localhost", limit=16384
    )


async def dropped(reader: asyncio.StreamReader) -> bool:
    """The server ended the connection without answering (a FIN, or a reset
    when it closed with the client's bytes unread)."""
    try:
        return await asyncio.wait_for(reader.read(), 3) == b""
    except ConnectionResetError:
        return True


async def settle(check: object, seconds: float = 3.0) -> None:
    async with asyncio.timeout(seconds):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_echo_and_extra_info(listener: TlsListener) -> None:
    reader, writer = await connect(listener)
    writer.write(b"hello")
    assert await reader.readexactly(5) == b"hello"
    server_side = Recorder.made[0].transport
    assert server_side is not None
    assert server_side.get_extra_info("sslcontext") is not None  # uvicorn: scheme https
    assert server_side.get_extra_info("peername") == writer.get_extra_info("sockname")
    assert server_side.get_extra_info("socket").getsockname() == writer.get_extra_info("peername")
    assert server_side.get_extra_info("cipher")[1].startswith("TLSv1.")
    assert server_side.get_extra_info("nonsense", "default") == "default"
    writer.close()
    await writer.wait_closed()
    assert await asyncio.wait_for(Recorder.made[0].lost, 3) is None
    assert Recorder.made[0].events == ["made", "eof", "lost"]


async def test_large_answer_to_a_slow_reader_arrives_whole_with_back_pressure(
    listener: TlsListener,
) -> None:
    size = 8 * 1024 * 1024
    reader, writer = await connect(listener, rcvbuf=4096)
    writer.write(b"big %d" % size)
    await settle(lambda: Recorder.made and Recorder.made[0].transport is not None)
    server_side = Recorder.made[0].transport
    assert server_side is not None
    await asyncio.sleep(0.2)  # the client reads nothing yet: the socket fills up
    assert server_side.get_write_buffer_size() > 65536
    assert "pause" in Recorder.made[0].events
    got = hashlib.sha256()
    left = size
    while left:
        chunk = await reader.read(min(left, 100_000))
        assert chunk
        got.update(chunk)
        left -= len(chunk)
        await asyncio.sleep(0)
    assert got.digest() == hashlib.sha256(bytes(range(256)) * (size // 256)).digest()
    assert server_side.get_write_buffer_size() == 0
    assert Recorder.made[0].events == ["made", "pause", "resume"]
    writer.close()


async def test_close_sends_what_was_written_first(listener: TlsListener) -> None:
    reader, writer = await connect(listener)
    writer.write(b"close")
    assert await reader.read() == b"bye"  # then the end of the stream
    assert await asyncio.wait_for(Recorder.made[0].lost, 3) is None
    writer.close()


async def test_pause_reading_holds_data_until_resumed(listener: TlsListener) -> None:
    _reader, writer = await connect(listener)
    writer.write(b"quiet1")
    await settle(lambda: Recorder.made and Recorder.made[0].received == b"quiet1")
    server_side = Recorder.made[0].transport
    assert server_side is not None
    server_side.pause_reading()
    assert not server_side.is_reading()
    writer.write(b"quiet2")
    await writer.drain()
    await asyncio.sleep(0.2)
    assert Recorder.made[0].received == b"quiet1"
    server_side.resume_reading()
    await settle(lambda: Recorder.made[0].received == b"quiet1quiet2")
    writer.close()


@pytest.mark.parametrize("junk", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)) * 8])
async def test_a_client_that_does_not_speak_tls_is_dropped(
    listener: TlsListener, junk: bytes
) -> None:
    port = listener.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(junk)
    assert await dropped(reader)
    assert not Recorder.made  # no protocol was ever made for it
    await settle(lambda: not listener._handshaking)
    writer.close()


async def test_a_client_that_never_finishes_the_handshake_is_dropped(
    listener: TlsListener,
) -> None:
    port = listener.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await settle(lambda: len(listener._handshaking) == 1)
    assert await dropped(reader)  # after 0.5 s
    assert not listener._handshaking
    assert not Recorder.made
    writer.close()


async def test_a_reset_mid_stream_reaches_the_protocol(listener: TlsListener) -> None:
    _reader, writer = await connect(listener)
    writer.write(b"big %d" % (4 * 1024 * 1024))
    await settle(lambda: Recorder.made and Recorder.made[0].transport is not None)
    sock = writer.get_extra_info("socket")
    raw = socket.socket(fileno=sock.fileno())  # the same descriptor: abort with RST
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    raw.detach()
    writer.transport.abort()
    await asyncio.wait_for(Recorder.made[0].lost, 3)  # an error or None: it is told
    assert Recorder.made[0].transport is not None
    assert Recorder.made[0].transport.is_closing()


async def test_many_connections_at_once(listener: TlsListener) -> None:
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    n = min(300, (limit - 64) // 2)

    async def one(i: int) -> bytes:
        reader, writer = await connect(listener)
        writer.write(b"n%d" % i)
        answer = await reader.readexactly(len(b"n%d" % i))
        writer.close()
        return answer

    answers = await asyncio.gather(*(one(i) for i in range(n)))
    assert answers == [b"n%d" % i for i in range(n)]


async def test_closing_the_listener_drops_handshakes_in_progress(
    listener: TlsListener,
) -> None:
    port = listener.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await settle(lambda: len(listener._handshaking) == 1)
    listener.close()
    assert await dropped(reader)
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    writer.close()

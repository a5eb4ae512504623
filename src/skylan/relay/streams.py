"""The relay's TCP fallback: TLS on port 443 (where only that gets out of a
network), each connection one more address of a node for the forwarder,
each datagram in a frame (see :mod:`skylan.tunnel.relaywire`).

The TLS certificate is self-signed and nobody checks it: a node knows it
reached the real relay from the MAC on the relay's answer to its hello,
inside the stream, and the tunnels it carries are end-to-end encrypted
anyway. TLS is there so the traffic looks like what such a network lets out.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from skylan.selfsigned import ensure_certificate
from skylan.tunnel.relaywire import (
    FRAME_HEADER_LEN,
    RelayWireError,
    decode_frame_header,
    encode_frame,
)

log = logging.getLogger("skylan.relay")

Address = tuple[str, int]
STREAM_HOST = "0.0.0.0"  # a stream's address is (STREAM_HOST, its number): never a UDP sender's
MAX_STREAMS = 4096
BACKLOG_LIMIT = 4 << 20  # bytes waiting to go out on one connection before frames are dropped

Deliver = Callable[[int, Address, bytes], None]  # (relay port, stream address, datagram)


def is_stream(address: Address) -> bool:
    return address[0] == STREAM_HOST


class StreamFront:
    def __init__(
        self,
        state_dir: Path,
        deliver: Deliver,
        forget: Callable[[Address], None],
        drops: Counter[str],
    ) -> None:
        """``drops``: where refusals are counted (the forwarder's, which the
        relay reports)."""
        files = ensure_certificate(state_dir / "tls", name="skylan relay")
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(files.cert, files.key)
        self.deliver = deliver
        self.forget = forget
        self.streams: dict[int, asyncio.StreamWriter] = {}
        self.drops = drops
        self._numbers = itertools.count(1)
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port, ssl=self.context)
        log.info("relay's TCP fallback listening on TLS %s:%d", host, port)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self.streams.values():
            writer.close()

    def send(self, to: Address, port: int, datagrams: list[memoryview | bytes]) -> None:
        writer = self.streams.get(to[1])
        if writer is None or writer.is_closing():
            self.drops["stream_gone"] += len(datagrams)
            return
        if writer.transport.get_write_buffer_size() > BACKLOG_LIMIT:
            self.drops["stream_backlog"] += len(datagrams)  # a slow reader loses them, as UDP would
            return
        writer.write(b"".join(encode_frame(port, d) for d in datagrams))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.streams) >= MAX_STREAMS:
            self.drops["too_many_streams"] += 1
            writer.close()
            return
        number = next(self._numbers)
        address = (STREAM_HOST, number)
        self.streams[number] = writer
        try:
            while True:
                length, port = decode_frame_header(await reader.readexactly(FRAME_HEADER_LEN))
                self.deliver(port, address, await reader.readexactly(length))
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, RelayWireError):
            pass  # gone, or junk: the connection ends, nothing else does
        finally:
            del self.streams[number]
            self.forget(address)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

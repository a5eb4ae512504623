"""The agent's DNS server in front of the host's own (the resolv-conf mode),
over real sockets on loopback: a query over TCP is forwarded over TCP, so an
answer too big for a datagram comes back whole; over UDP it stays UDP."""

from __future__ import annotations

import asyncio
import socket
import struct

import dns.asyncquery
import dns.flags
import dns.message
import dns.rrset

from skylan.agent.dnsanswers import Zone
from skylan.agent.dnsservice import DnsService

NAME = "many.example.test."
ADDRESSES = [f"198.51.100.{i}" for i in range(1, 101)]  # about 1.6 KB of answer


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def answer(wire: bytes, *, datagram: bool) -> bytes:
    """As a real server does: over UDP, what does not fit 512 bytes is cut and TC set."""
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    if query.question[0].name.to_text().lower() == NAME:
        response.answer.append(dns.rrset.from_text(NAME, 60, "IN", "A", *ADDRESSES))
    full = response.to_wire()
    if datagram and len(full) > 512:
        response.answer.clear()
        response.flags |= dns.flags.TC
        return response.to_wire()
    return full


class Upstream(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(answer(data, datagram=True), addr)  # type: ignore[attr-defined]


async def serve_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    (size,) = struct.unpack("!H", await reader.readexactly(2))
    wire = answer(await reader.readexactly(size), datagram=False)
    writer.write(struct.pack("!H", len(wire)) + wire)
    await writer.drain()
    writer.close()


def test_a_query_over_tcp_goes_upstream_over_tcp_and_comes_back_whole() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        upstream_port, port = free_port(), free_port()
        udp, _ = await loop.create_datagram_endpoint(
            Upstream, local_addr=("127.0.0.1", upstream_port)
        )
        tcp = await asyncio.start_server(serve_stream, "127.0.0.1", upstream_port)
        service = DnsService()
        service.upstreams = ["127.0.0.1"]
        service.upstream_port = upstream_port
        service.set_zones([Zone("prod.skylan.internal", {"a": ("172.16.1.10",)})])
        await service.listen({"127.0.0.1"}, port)
        try:
            query = dns.message.make_query(NAME, "A")
            over_udp = await dns.asyncquery.udp(query, "127.0.0.1", timeout=3, port=port)
            assert over_udp.flags & dns.flags.TC and not over_udp.answer  # as the upstream said
            over_tcp = await dns.asyncquery.tcp(query, "127.0.0.1", timeout=3, port=port)
            assert sorted(r.address for r in over_tcp.answer[0]) == sorted(ADDRESSES)
            assert over_tcp.id == query.id
            ours = dns.message.make_query("a.prod.skylan.internal.", "A")
            mine = await dns.asyncquery.tcp(ours, "127.0.0.1", timeout=3, port=port)
            assert [r.address for r in mine.answer[0]] == ["172.16.1.10"]  # not forwarded
            assert service.counts["forwarded"] == 1 and service.counts["forwarded_tcp"] == 1
            # the upstream stops answering over TCP: the client's connection is
            # closed at once (it tries its next server), the agent goes on
            tcp.close()
            await tcp.wait_closed()
            try:
                await dns.asyncquery.tcp(query, "127.0.0.1", timeout=3, port=port)
            except (EOFError, ConnectionError):
                pass
            else:
                raise AssertionError("an answer with no upstream")
            assert service.counts["forward_errors"] == 1
            again = await dns.asyncquery.tcp(ours, "127.0.0.1", timeout=3, port=port)
            assert again.answer
        finally:
            await service.aclose()
            udp.close()
            tcp.close()

    asyncio.run(scenario())

"""A TCP relay from this machine's loopback into one lab host.

The lab is never wired to the host's interfaces; to let a person's browser
reach the demo's console, a small process listens on 127.0.0.1 in the root
namespace, then moves itself into the lab host's namespace, so every
connection it accepts is relayed from there. The listening socket keeps the
namespace it was created in.

``python -m skylan.lab.forward 127.0.0.1:8443 NETNS 198.18.1.1:8443``
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys

from pyroute2 import netns


def parse(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return host, int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def relay(listener: socket.socket, target: tuple[str, int]) -> None:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(client, sock=listener)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m skylan.lab.forward LISTEN_HOST:PORT NETNS TARGET_HOST:PORT")
        return 2
    listen, namespace, target = argv
    try:
        listener = socket.create_server(parse(listen))
    except OSError as exc:
        print(f"error: cannot listen on {listen}: {exc.strerror}", file=sys.stderr)
        return 1
    netns.setns(namespace, flags=0)  # from here on, new sockets live in the lab host
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(relay(listener, parse(target)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""A running relay: its key (made on first start, kept in its state
directory), the forwarder, its sockets and its link to the controller."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from skylan.dataplane.tunnelporterror import TunnelPortError
from skylan.privatefile import private_dir, write_private
from skylan.relay.controllerlink import ControllerLink
from skylan.relay.errors import RelayStartError
from skylan.relay.forwarder import DEFAULT_RATE, Forwarder
from skylan.relay.server import RelayServer
from skylan.relay.streams import StreamFront
from skylan.tunnel.keys import StaticKeypair

log = logging.getLogger("skylan.relay")


@dataclass(frozen=True)
class RelayConfig:
    controller: str
    fingerprint: str
    credential: str
    state_dir: Path
    host: str = "0.0.0.0"
    port: int = 3478
    ports: range = range(40000, 41000)
    rate: float = DEFAULT_RATE  # bytes a second per node
    tls_port: int | None = None  # the TCP fallback (443), if served


def relay_key(state_dir: Path) -> StaticKeypair:
    path = private_dir(state_dir) / "relay.key"
    if path.exists():
        return StaticKeypair.from_private(path.read_bytes())
    key = StaticKeypair.generate()
    write_private(path, key.private)
    return key


async def serve(config: RelayConfig, stop: asyncio.Event) -> None:
    key = relay_key(config.state_dir)
    forwarder = Forwarder(key, config.ports, rate=config.rate, burst=max(config.rate / 10, 2e6))
    server = RelayServer(forwarder, config.host, config.port)
    link = ControllerLink(
        config.controller, config.fingerprint, config.credential, forwarder, config.tls_port
    )
    try:
        server.start()
    except TunnelPortError as exc:
        raise RelayStartError(
            f"cannot listen on UDP {config.host}:{config.port}: {exc.reason}; "
            "choose another with --port"
        ) from None
    if config.tls_port is not None:
        server.streams = StreamFront(
            config.state_dir, server.from_stream, forwarder.forget_address, forwarder.drops
        )
        try:
            await server.streams.start(config.host, config.tls_port)
        except OSError as exc:
            server.close()
            raise RelayStartError(
                f"cannot listen on TCP {config.host}:{config.tls_port}: {exc.strerror or exc}; "
                "choose another with --tls-port"
            ) from None
    log.info("relay key %s", key.public_b64)
    task = asyncio.create_task(link.run(), name="controller")
    try:
        await stop.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await link.aclose()
        if server.streams is not None:
            server.streams.close()
        server.close()

"""``skylan relay``: the relays nodes use when no direct path joins them
(add, list, delete), and ``skylan relay serve`` to run one."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from skylan.cli.context import client
from skylan.cli.output import JsonFlag, console, emit

relay_app = typer.Typer(
    help="Relays: carry encrypted traffic between nodes no direct path joins.",
    no_args_is_help=True,
)

RELAY_COLUMNS = [
    ("name", lambda r: r.name),
    ("address", lambda r: r.address),
    ("online", lambda r: r.online),
    ("nodes", lambda r: r.nodes),
    ("forwarded", lambda r: f"{r.forwarded_bytes} B / {r.forwarded_packets} pkts"),
    ("dropped", lambda r: r.dropped),
    ("key", lambda r: r.public_key or "(not started)"),
]
DEFAULT_STATE_DIR = Path("/var/lib/skylan-relay")


@relay_app.command("add")
def relay_add(
    name: str,
    address: Annotated[str, typer.Argument(help="host:port where nodes reach it over UDP")],
    as_json: JsonFlag = False,
) -> None:
    """Add a relay; prints the `skylan relay serve` command (with its credential) once."""
    with client() as sky:
        made = sky.create_relay(name, address)
    if as_json:
        emit(made, True)
        return
    console.print("Run this on the relay's machine (the credential is not shown again):")
    console.print(f"  [bold]{made.serve_command}[/]")


@relay_app.command("list")
def relay_list(as_json: JsonFlag = False) -> None:
    """The relays, whether each is online, and what it carried."""
    with client() as sky:
        emit(sky.relays(), as_json, RELAY_COLUMNS)


@relay_app.command("delete")
def relay_delete(relay: str) -> None:
    """Remove a relay (by name or id): nodes stop using it, its credential stops working."""
    with client() as sky:
        sky.delete_relay(relay)
    console.print(f"deleted {relay}")


@relay_app.command("serve")
def relay_serve(
    controller: Annotated[str, typer.Argument(help="The controller's URL")],
    credential: Annotated[
        str, typer.Argument(help="From `skylan relay add`", envvar="SKYLAN_RELAY_CREDENTIAL")
    ],
    fingerprint: Annotated[str, typer.Option(help="The controller's certificate SHA-256")],
    port: Annotated[int, typer.Option(help="UDP port nodes say hello to", min=1, max=65535)] = 3478,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "0.0.0.0",
    tls_port: Annotated[
        int | None,
        typer.Option(help="Serve the TCP fallback (TLS) on this port, e.g. 443", min=1, max=65535),
    ] = None,
    node_ports: Annotated[
        str, typer.Option(help="UDP ports to give nodes, FIRST-LAST (one each)")
    ] = "40000-40999",
    rate_mbit: Annotated[
        float, typer.Option(help="Per-node rate limit, Mbit/s", min=1.0)
    ] = 10000.0,
    state_dir: Annotated[Path, typer.Option(help="Where its key is kept")] = DEFAULT_STATE_DIR,
) -> None:
    """Run a relay: forwards nodes' encrypted datagrams, unread."""
    from skylan.relay.service import RelayConfig, serve

    first, _, last = node_ports.partition("-")
    if not (first.isdigit() and last.isdigit() and 0 < int(first) <= int(last) < 65536):
        raise typer.BadParameter(f"--node-ports {node_ports!r}: expected FIRST-LAST")
    ports = range(int(first), int(last) + 1)
    if port in ports:
        raise typer.BadParameter(f"--port {port} is inside --node-ports {node_ports}")
    config = RelayConfig(
        controller=controller,
        fingerprint=fingerprint,
        credential=credential,
        state_dir=state_dir,
        host=host,
        port=port,
        ports=ports,
        rate=rate_mbit * 1e6 / 8,
        tls_port=tls_port,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop)

    asyncio.run(main())

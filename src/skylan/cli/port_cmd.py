"""``skylan port``: nodes attached to networks."""

from __future__ import annotations

from typing import Annotated

import typer

from skylan.cli.context import client
from skylan.cli.output import JsonFlag, console, emit

port_app = typer.Typer(help="Attach nodes to networks.", no_args_is_help=True)


PORT_COLUMNS = [
    ("node", lambda p: p.node),
    ("ipv4", lambda p: p.ipv4),
    ("mac", lambda p: p.mac),
    ("extra ips", lambda p: p.extra_ips),
    ("id", lambda p: p.id),
]


@port_app.command("list")
def port_list(network: str, as_json: JsonFlag = False) -> None:
    """List a network's ports."""
    with client() as sky:
        emit(sky.ports(network), as_json, PORT_COLUMNS)


@port_app.command("attach")
def port_attach(
    network: str,
    node: str,
    ip: Annotated[str | None, typer.Option(help="Static IPv4; default from the pool.")] = None,
    extra_ip: Annotated[
        list[str] | None, typer.Option(help="Floating address (repeatable).")
    ] = None,
    ipv6: Annotated[
        str | None, typer.Option(help="Static IPv6; default: the prefix with the IPv4 host part.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Attach a node to a network."""
    with client() as sky:
        emit(
            sky.attach(network, node, ipv4=ip, extra_ips=extra_ip, ipv6=ipv6),
            as_json,
            PORT_COLUMNS,
        )


@port_app.command("set")
def port_set(
    network: str,
    port: str,
    ip: Annotated[str | None, typer.Option(help="New static IPv4.")] = None,
    extra_ip: Annotated[
        list[str] | None, typer.Option(help="Replace the floating addresses (repeatable).")
    ] = None,
    ipv6: Annotated[
        str | None, typer.Option(help="New static IPv6, or 'auto' for the derived one.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a port's addresses or floating addresses (port id or node name)."""
    with client() as sky:
        emit(
            sky.update_port(network, port, ipv4=ip, extra_ips=extra_ip, ipv6=ipv6),
            as_json,
            PORT_COLUMNS,
        )


@port_app.command("detach")
def port_detach(network: str, port: str) -> None:
    """Detach a node from a network (port id or node name)."""
    with client() as sky:
        sky.detach(network, port)
    console.print(f"detached {port} from {network}")

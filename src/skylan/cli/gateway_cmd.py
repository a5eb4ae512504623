"""``skylan gateway``: routes from a network to physical LANs."""

from __future__ import annotations

from typing import Annotated

import typer

from skylan.cli.context import client
from skylan.cli.output import JsonFlag, console, emit

gateway_app = typer.Typer(help="Gateways from a network to physical LANs.", no_args_is_help=True)


ROUTE_COLUMNS = [
    ("prefix", lambda r: r.prefix),
    ("via", lambda r: r.via_node),
    ("metric", lambda r: r.metric),
    ("masquerade", lambda r: r.masquerade),
    ("id", lambda r: r.id),
]


@gateway_app.command("candidates")
def gateway_candidates(network: str, as_json: JsonFlag = False) -> None:
    """Members that reach a LAN the other members do not."""
    with client() as sky:
        emit(
            sky.gateway_candidates(network),
            as_json,
            [
                ("node", lambda c: c.node),
                ("prefix", lambda c: c.prefix),
                ("interface", lambda c: c.interface),
                ("address", lambda c: c.address),
            ],
        )


@gateway_app.command("list")
def gateway_list(network: str, as_json: JsonFlag = False) -> None:
    """The network's gateways (routes to LAN prefixes)."""
    with client() as sky:
        emit(sky.routes(network), as_json, ROUTE_COLUMNS)


@gateway_app.command("add")
def gateway_add(
    network: str,
    prefix: str,
    via: Annotated[str, typer.Option(help="The gateway node (name or id).")],
    metric: Annotated[int, typer.Option(help="Lower wins among live gateways.")] = 100,
    masquerade: Annotated[
        bool,
        typer.Option(
            "--masquerade/--no-masquerade",
            help="Hide overlay addresses behind the gateway's LAN address.",
        ),
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Make a node the gateway to a LAN prefix for every other member."""
    with client() as sky:
        emit(sky.add_route(network, prefix, via, metric, masquerade), as_json, ROUTE_COLUMNS)
    if not masquerade and not as_json:
        console.print(
            f"Without masquerade the LAN sees overlay addresses: give its router a "
            f"route to the network's CIDR via {via}'s LAN address."
        )


@gateway_app.command("remove")
def gateway_remove(network: str, route_id: str) -> None:
    """Remove a gateway route."""
    with client() as sky:
        sky.delete_route(network, route_id)
    console.print(f"removed {route_id}")

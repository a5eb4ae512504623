"""``skylan cloak``: what stays reachable on a cloaked network."""

from __future__ import annotations

from typing import Annotated

import typer

from skylan.cli import portrange
from skylan.cli.context import client
from skylan.cli.output import JsonFlag, console, emit

cloak_app = typer.Typer(help="Cloaking exception rules.", no_args_is_help=True)


CLOAK_COLUMNS = [
    ("protocol", lambda r: r.protocol),
    ("ports", lambda r: portrange.shown(r.port_from, r.port_to)),
    ("source", lambda r: r.source_cidr),
    ("node", lambda r: r.node_id or "all"),
    ("description", lambda r: r.description),
    ("id", lambda r: r.id),
]


@cloak_app.command("list")
def cloak_list(network: str, as_json: JsonFlag = False) -> None:
    """What stays reachable on a cloaked network's nodes."""
    with client() as sky:
        emit(sky.cloak_rules(network), as_json, CLOAK_COLUMNS)


@cloak_app.command("allow")
def cloak_allow(
    network: str,
    protocol: Annotated[str, typer.Argument(help="tcp, udp, icmp or any")],
    port: Annotated[
        str | None, typer.Option(help="A port or range, e.g. 443 or 8000-8100.")
    ] = None,
    source: Annotated[str, typer.Option(help="Allowed sources (CIDR).")] = "0.0.0.0/0",
    node: Annotated[str | None, typer.Option(help="Only on this node; default all.")] = None,
    description: Annotated[str, typer.Option()] = "",
    as_json: JsonFlag = False,
) -> None:
    """Open a hole in the cloak (e.g. `skylan cloak allow prod tcp --port 22 --source ...`)."""
    port_from, port_to = portrange.parse(port)
    with client() as sky:
        emit(
            sky.add_cloak_rule(
                network,
                protocol,
                node=node,
                port_from=port_from,
                port_to=port_to,
                source_cidr=source,
                description=description,
            ),
            as_json,
            CLOAK_COLUMNS,
        )


@cloak_app.command("remove")
def cloak_remove(network: str, rule_id: str) -> None:
    """Remove an exception rule."""
    with client() as sky:
        sky.delete_cloak_rule(network, rule_id)
    console.print(f"removed {rule_id}")

"""``skylan node``: enrolled nodes."""

from __future__ import annotations

from typing import Annotated

import typer

from skylan.cli.context import client
from skylan.cli.output import JsonFlag, console, detail, emit

node_app = typer.Typer(help="Enrolled nodes.", no_args_is_help=True)


NODE_COLUMNS = [
    ("name", lambda n: n.name),
    ("status", lambda n: n.status),
    ("online", lambda n: n.online),
    ("networks", lambda n: [f"{m.network}={m.ipv4}" for m in n.networks]),
    ("endpoints", lambda n: n.endpoints),
    ("version", lambda n: n.agent_version),
    ("tags", lambda n: n.tags),
    ("id", lambda n: n.id),
]


@node_app.command("list")
def node_list(
    status: Annotated[str | None, typer.Option(help="pending, approved or denied")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List nodes."""
    with client() as sky:
        emit(sky.nodes(status), as_json, NODE_COLUMNS)


@node_app.command("show")
def node_show(node: str, as_json: JsonFlag = False) -> None:
    """Show one node (by name or id)."""
    with client() as sky:
        detail(sky.node(node), as_json)


@node_app.command("stats")
def node_stats(
    node: str,
    minutes: Annotated[int, typer.Option(min=1, max=1440)] = 60,
    as_json: JsonFlag = False,
) -> None:
    """Traffic per minute and per peer, as reported by the node's agent."""
    with client() as sky:
        data = sky.node_stats(node, minutes)
    if as_json:
        emit(data, True)
        return
    emit(
        data.buckets,
        False,
        [
            ("minute", lambda b: b.minute),
            ("tx bytes", lambda b: b.tx_bytes),
            ("rx bytes", lambda b: b.rx_bytes),
            ("tx pkts", lambda b: b.tx_packets),
            ("rx pkts", lambda b: b.rx_packets),
            ("drops", lambda b: b.drops),
        ],
        title=f"{node}: last {minutes} min",
    )


@node_app.command("approve")
def node_approve(node: str) -> None:
    """Let a pending node into its networks."""
    with client() as sky:
        console.print(f"approved {sky.approve_node(node).name}")


@node_app.command("deny")
def node_deny(node: str) -> None:
    """Keep a node out of every network."""
    with client() as sky:
        console.print(f"denied {sky.deny_node(node).name}")


@node_app.command("rename")
def node_rename(node: str, new_name: str) -> None:
    """Rename a node."""
    with client() as sky:
        console.print(f"renamed to {sky.update_node(node, name=new_name).name}")


@node_app.command("tag")
def node_tag(node: str, tags: list[str]) -> None:
    """Replace a node's tags."""
    with client() as sky:
        console.print(f"tags: {', '.join(sky.update_node(node, tags=tags).tags)}")


@node_app.command("delete")
def node_delete(node: str) -> None:
    """Delete a node; its credential stops working at once."""
    with client() as sky:
        sky.delete_node(node)
    console.print(f"deleted node {node}")

"""``skylan login`` and the resource groups: net, node, token, port."""

from __future__ import annotations

from typing import Annotated

import typer

from skylan.cli.context import CliConfig, client
from skylan.cli.output import JsonFlag, console, detail, emit
from skylan.client import Skylan

net_app = typer.Typer(help="Virtual networks.", no_args_is_help=True)
node_app = typer.Typer(help="Enrolled nodes.", no_args_is_help=True)
token_app = typer.Typer(help="Join tokens for enrolling agents.", no_args_is_help=True)
port_app = typer.Typer(help="Attach nodes to networks.", no_args_is_help=True)


def login(
    url: str,
    token: Annotated[str, typer.Option(help="An API token (skyadm_...).")],
    fingerprint: Annotated[
        str | None,
        typer.Option(help="SHA-256 of the controller certificate (skylan controller fingerprint)."),
    ] = None,
) -> None:
    """Check the credentials against the controller and remember them."""
    with Skylan(url, token, fingerprint=fingerprint) as sky:
        sky.networks()  # proves URL, pin and token together
    path = CliConfig(url, token, fingerprint).save()
    console.print(f"logged in to {url}; settings saved in {path}")


# -- networks -------------------------------------------------------------------

NET_COLUMNS = [
    ("name", lambda n: n.name),
    ("cidr4", lambda n: n.cidr4),
    ("cidr6", lambda n: n.cidr6),
    ("mtu", lambda n: n.mtu),
    ("encrypted", lambda n: n.encrypted),
    ("cloaked", lambda n: n.cloaked),
    ("members", lambda n: n.members),
    ("id", lambda n: n.id),
]


@net_app.command("list")
def net_list(as_json: JsonFlag = False) -> None:
    """List networks."""
    with client() as sky:
        emit(sky.networks(), as_json, NET_COLUMNS)


@net_app.command("show")
def net_show(network: str, as_json: JsonFlag = False) -> None:
    """Show one network (by name or id)."""
    with client() as sky:
        detail(sky.network(network), as_json)


@net_app.command("create")
def net_create(
    name: str,
    cidr4: Annotated[str, typer.Option("--cidr", help="IPv4 network, e.g. 172.16.1.0/24")],
    cidr6: Annotated[str | None, typer.Option("--cidr6")] = None,
    description: Annotated[str | None, typer.Option()] = None,
    mtu: Annotated[int | None, typer.Option()] = None,
    encrypted: Annotated[bool, typer.Option("--encrypted/--unencrypted")] = True,
    cloaked: Annotated[bool, typer.Option("--cloaked/--visible")] = False,
    storm_pps: Annotated[int | None, typer.Option(help="Broadcast pps limit per port.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a network."""
    with client() as sky:
        detail(
            sky.create_network(
                name,
                cidr4,
                cidr6=cidr6,
                description=description,
                mtu=mtu,
                encrypted=encrypted,
                cloaked=cloaked,
                storm_pps=storm_pps,
            ),
            as_json,
        )


@net_app.command("update")
def net_update(
    network: str,
    name: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    mtu: Annotated[int | None, typer.Option()] = None,
    cloaked: Annotated[bool | None, typer.Option("--cloaked/--visible")] = None,
    encrypted: Annotated[bool | None, typer.Option("--encrypted/--unencrypted")] = None,
    storm_pps: Annotated[int | None, typer.Option()] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a network's settings."""
    changes = {
        k: v
        for k, v in {
            "name": name,
            "description": description,
            "mtu": mtu,
            "cloaked": cloaked,
            "encrypted": encrypted,
            "storm_pps": storm_pps,
        }.items()
        if v is not None
    }
    if not changes:
        raise typer.BadParameter("nothing to change; see --help")
    with client() as sky:
        detail(sky.update_network(network, **changes), as_json)


@net_app.command("delete")
def net_delete(
    network: str, force: Annotated[bool, typer.Option(help="Also detach every node.")] = False
) -> None:
    """Delete a network."""
    with client() as sky:
        sky.delete_network(network, force=force)
    console.print(f"deleted network {network}")


# -- nodes ------------------------------------------------------------------------

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


# -- join tokens ------------------------------------------------------------------

TOKEN_COLUMNS = [
    ("id", lambda t: t.id),
    ("state", lambda t: t.state),
    ("uses", lambda t: f"{t.uses}/{t.max_uses if t.max_uses else '∞'}"),
    ("expires", lambda t: t.expires_at),
    ("networks", lambda t: t.networks),
    ("approval", lambda t: t.needs_approval),
    ("description", lambda t: t.description),
]


@token_app.command("create")
def token_create(
    network: Annotated[
        list[str] | None,
        typer.Option("--network", help="Join this network on enrollment (repeatable)."),
    ] = None,
    uses: Annotated[int | None, typer.Option(help="How many enrollments (default 1).")] = 1,
    unlimited: Annotated[bool, typer.Option(help="Any number of enrollments.")] = False,
    expires_in: Annotated[int, typer.Option(help="Seconds until it expires.")] = 86_400,
    approval: Annotated[bool, typer.Option(help="Nodes wait for approval.")] = False,
    description: Annotated[str, typer.Option()] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a join token; prints the `skylan agent join` command once."""
    with client() as sky:
        tok = sky.create_token(
            description=description,
            max_uses=None if unlimited else uses,
            expires_in_s=expires_in,
            networks=network or [],
            needs_approval=approval,
        )
    if as_json:
        emit(tok, True)
        return
    console.print("Run this on each machine to join (the token is not shown again):")
    console.print(f"  [bold]{tok.join_command}[/]")


@token_app.command("list")
def token_list(as_json: JsonFlag = False) -> None:
    """List join tokens (their secrets are never shown again)."""
    with client() as sky:
        emit(sky.tokens(), as_json, TOKEN_COLUMNS)


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a join token."""
    with client() as sky:
        sky.revoke_token(token_id)
    console.print(f"revoked {token_id}")


# -- ports ------------------------------------------------------------------------

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
    as_json: JsonFlag = False,
) -> None:
    """Attach a node to a network."""
    with client() as sky:
        emit(sky.attach(network, node, ipv4=ip, extra_ips=extra_ip), as_json, PORT_COLUMNS)


@port_app.command("set")
def port_set(
    network: str,
    port: str,
    ip: Annotated[str | None, typer.Option(help="New static IPv4.")] = None,
    extra_ip: Annotated[
        list[str] | None, typer.Option(help="Replace the floating addresses (repeatable).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change a port's address or floating addresses (port id or node name)."""
    with client() as sky:
        emit(sky.update_port(network, port, ipv4=ip, extra_ips=extra_ip), as_json, PORT_COLUMNS)


@port_app.command("detach")
def port_detach(network: str, port: str) -> None:
    """Detach a node from a network (port id or node name)."""
    with client() as sky:
        sky.detach(network, port)
    console.print(f"detached {port} from {network}")


# -- gateways and cloaking ---------------------------------------------------------

gateway_app = typer.Typer(help="Gateways from a network to physical LANs.", no_args_is_help=True)
cloak_app = typer.Typer(help="Cloaking exception rules.", no_args_is_help=True)

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


CLOAK_COLUMNS = [
    ("protocol", lambda r: r.protocol),
    ("ports", lambda r: f"{r.port_from}-{r.port_to}" if r.port_from else "-"),
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
    port_from = port_to = None
    if port is not None:
        low, _, high = port.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise typer.BadParameter(f"--port {port!r}: expected 443 or 8000-8100")
        port_from, port_to = int(low), int(high or low)
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

"""``skylan net``: virtual networks."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from skylan.cli.context import client
from skylan.cli.output import JsonFlag, console, detail, emit

net_app = typer.Typer(help="Virtual networks.", no_args_is_help=True)


NET_COLUMNS = [
    ("name", lambda n: n.name),
    ("cidr4", lambda n: n.cidr4),
    ("cidr6", lambda n: n.cidr6),
    ("mtu", lambda n: n.mtu),
    ("encrypted", lambda n: n.encrypted),
    ("cloaked", lambda n: n.cloaked),
    ("policy", lambda n: n.policy),
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
    policy: Annotated[
        str | None, typer.Option(help="Security groups: allow (default) or deny.")
    ] = None,
    dns_domain: Annotated[
        str | None, typer.Option(help="Members are NODE.NAME.<domain>; default skylan.internal.")
    ] = None,
    no_dns: Annotated[bool, typer.Option("--no-dns", help="No DNS names.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a network."""
    if dns_domain is not None and no_dns:
        raise typer.BadParameter("give --dns-domain or --no-dns, not both")
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
                policy=policy,
                dns_domain=dns_domain,
                dns=not no_dns,
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
    policy: Annotated[str | None, typer.Option(help="Security groups: allow or deny.")] = None,
    dns_domain: Annotated[str | None, typer.Option(help="Members are NODE.NAME.<domain>.")] = None,
    no_dns: Annotated[bool, typer.Option("--no-dns", help="No DNS names.")] = False,
    cidr6: Annotated[
        str | None, typer.Option("--cidr6", help="IPv6 prefix: every member gets an address")
    ] = None,
    no_ipv6: Annotated[bool, typer.Option("--no-ipv6", help="Drop the IPv6 prefix")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Change a network's settings."""
    changes: dict[str, Any] = {
        k: v
        for k, v in {
            "name": name,
            "description": description,
            "mtu": mtu,
            "cloaked": cloaked,
            "encrypted": encrypted,
            "storm_pps": storm_pps,
            "policy": policy,
        }.items()
        if v is not None
    }
    if dns_domain is not None and no_dns:
        raise typer.BadParameter("give --dns-domain or --no-dns, not both")
    if dns_domain is not None or no_dns:
        changes["dns_domain"] = dns_domain
    if cidr6 is not None and no_ipv6:
        raise typer.BadParameter("give --cidr6 or --no-ipv6, not both")
    if cidr6 is not None or no_ipv6:
        changes["cidr6"] = cidr6
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

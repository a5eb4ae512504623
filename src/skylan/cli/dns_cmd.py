"""``skylan dns``: names in a network's zone for addresses that are not a
member's own (members are NODE.NETWORK.DOMAIN by themselves)."""

from __future__ import annotations

from typing import Annotated

import typer

from skylan.cli.context import client
from skylan.cli.output import JsonFlag, console, emit

dns_app = typer.Typer(help="DNS names for floating IPs and other addresses.", no_args_is_help=True)

DNS_COLUMNS = [
    ("name", lambda r: r.fqdn),
    ("address", lambda r: r.address),
    ("id", lambda r: r.id),
]


@dns_app.command("list")
def dns_list(network: str, as_json: JsonFlag = False) -> None:
    """The network's zone and the names given in it (members have theirs)."""
    with client() as sky:
        net = sky.network(network)
        records = sky.dns_records(network)
    if not as_json:
        console.print(
            f"zone: {net.dns_zone} (members are NODE.{net.dns_zone})" if net.dns_zone else "DNS off"
        )
    emit(records, as_json, DNS_COLUMNS)


@dns_app.command("add")
def dns_add(
    network: str,
    name: Annotated[str, typer.Argument(help="Relative: vip is vip.NETWORK.DOMAIN.")],
    address: Annotated[str, typer.Argument(help="An address in the network.")],
    as_json: JsonFlag = False,
) -> None:
    """Name an address, e.g. a floating IP (`skylan dns add prod vip 172.16.1.100`)."""
    with client() as sky:
        emit(sky.add_dns_record(network, name, address), as_json, DNS_COLUMNS)


@dns_app.command("set")
def dns_set(
    network: str,
    record: Annotated[str, typer.Argument(help="The name (or its id).")],
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    address: Annotated[str | None, typer.Option(help="A new address.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Rename a name or move it to another address (`skylan dns set prod vip --name db`)."""
    if name is None and address is None:
        raise typer.BadParameter("give --name, --address or both")
    with client() as sky:
        emit(
            sky.update_dns_record(network, record, name=name, address=address), as_json, DNS_COLUMNS
        )


@dns_app.command("remove")
def dns_remove(
    network: str, record: Annotated[str, typer.Argument(help="The name (or its id).")]
) -> None:
    """Remove a name."""
    with client() as sky:
        sky.delete_dns_record(network, record)
    console.print(f"removed {record}")

"""``skylan policy``: security groups, who may open connections to whom
inside a network, and the dry run that says whether one would get through."""

from __future__ import annotations

from typing import Annotated

import typer

from skylan.cli import portrange
from skylan.cli.context import client
from skylan.cli.output import JsonFlag, console, emit

policy_app = typer.Typer(
    help="Security groups: rules, the default policy, and dry runs.", no_args_is_help=True
)

RULE_COLUMNS = [
    ("protocol", lambda r: r.protocol),
    ("ports", lambda r: portrange.shown(r.port_from, r.port_to)),
    ("from", lambda r: r.source),
    ("to", lambda r: r.target),
    ("description", lambda r: r.description),
    ("id", lambda r: r.id),
]


@policy_app.command("list")
def policy_list(network: str, as_json: JsonFlag = False) -> None:
    """The network's default policy and its rules."""
    with client() as sky:
        net = sky.network(network)
        rules = sky.security_rules(network)
    if not as_json:
        console.print(f"default policy: {net.policy}")
    emit(rules, as_json, RULE_COLUMNS)


@policy_app.command("allow")
def policy_allow(
    network: str,
    protocol: Annotated[str, typer.Argument(help="tcp, udp, icmp or any")],
    port: Annotated[
        str | None, typer.Option(help="A port or range, e.g. 5432 or 8000-8100.")
    ] = None,
    source: Annotated[
        str, typer.Option("--from", help="any, tag:NAME, node:NAME or a CIDR.")
    ] = "any",
    target: Annotated[str, typer.Option("--to", help="all, tag:NAME or node:NAME.")] = "all",
    description: Annotated[str, typer.Option()] = "",
    as_json: JsonFlag = False,
) -> None:
    """Allow connections (e.g. `skylan policy allow prod tcp --port 5432 --from tag:web
    --to tag:db`). Rules only matter once the default policy is deny."""
    port_from, port_to = portrange.parse(port)
    with client() as sky:
        emit(
            sky.add_security_rule(
                network,
                protocol,
                port_from=port_from,
                port_to=port_to,
                source=source,
                target=target,
                description=description,
            ),
            as_json,
            RULE_COLUMNS,
        )


@policy_app.command("remove")
def policy_remove(network: str, rule_id: str) -> None:
    """Remove a rule."""
    with client() as sky:
        sky.delete_security_rule(network, rule_id)
    console.print(f"removed {rule_id}")


@policy_app.command("default")
def policy_default(
    network: str,
    policy: Annotated[str, typer.Argument(help="allow (everything) or deny (all but the rules)")],
) -> None:
    """Set the network's default policy."""
    with client() as sky:
        net = sky.set_policy(network, policy)
    console.print(f"{net.name}: default policy {net.policy}")


@policy_app.command("check")
def policy_check(
    network: str,
    source: Annotated[str, typer.Argument(help="A member (name or id) or an IP address.")],
    target: Annotated[
        str, typer.Argument(help="A member (name, id or address), or an address behind a gateway.")
    ],
    service: Annotated[str, typer.Argument(help="tcp/5432, udp/53, icmp or any.")],
    as_json: JsonFlag = False,
) -> None:
    """Dry run: would a new connection get through now? Exits 0 if it would,
    1 if it would not."""
    protocol, _, port_text = service.partition("/")
    if port_text and not port_text.isdigit():
        raise typer.BadParameter(f"{service!r}: expected e.g. tcp/5432, udp/53 or icmp")
    with client() as sky:
        answer = sky.check_reachability(
            network, source, target, protocol, int(port_text) if port_text else None
        )
    if as_json:
        console.print_json(answer.model_dump_json())
    else:
        what = f"{answer.protocol}/{answer.port}" if answer.port else answer.protocol
        verdict = "[green]allowed[/]" if answer.allowed else "[red]denied[/]"
        to = f"{target} via gateway {answer.target}" if answer.via else answer.target
        console.print(f"{answer.source} -> {to} {what}: {verdict} ({answer.reason})")
    raise typer.Exit(0 if answer.allowed else 1)

"""The ``skylan`` entry point: the root Typer app and its command groups."""

from __future__ import annotations

from typing import Annotated

import typer

from skylan import __version__
from skylan.cli import (
    agent_cmd,
    audit_cmd,
    cloak_cmd,
    controller_cmd,
    demo_cmd,
    dns_cmd,
    gateway_cmd,
    lab_cmd,
    login_cmd,
    net_cmd,
    node_cmd,
    policy_cmd,
    port_cmd,
    relay_cmd,
    token_cmd,
)
from skylan.cli.errors import run_app

app = typer.Typer(
    name="skylan",
    help="Encrypted layer-2 virtual private clouds that span providers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(controller_cmd.app, name="controller")
app.add_typer(agent_cmd.app, name="agent")
app.command("status")(agent_cmd.status)
app.command("login")(login_cmd.login)
app.add_typer(net_cmd.net_app, name="net")
app.add_typer(node_cmd.node_app, name="node")
app.add_typer(token_cmd.token_app, name="token")
app.add_typer(port_cmd.port_app, name="port")
app.add_typer(gateway_cmd.gateway_app, name="gateway")
app.add_typer(cloak_cmd.cloak_app, name="cloak")
app.add_typer(policy_cmd.policy_app, name="policy")
app.add_typer(dns_cmd.dns_app, name="dns")
app.add_typer(relay_cmd.relay_app, name="relay")
app.command("audit")(audit_cmd.audit)
app.add_typer(lab_cmd.app, name="lab")
app.command("demo")(demo_cmd.demo)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"skylan {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Encrypted layer-2 virtual private clouds that span providers."""


def main() -> None:
    run_app(app)

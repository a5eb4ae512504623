"""``skylan token``: join tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from skylan.cli.context import client
from skylan.cli.output import JsonFlag, console, emit

token_app = typer.Typer(help="Join tokens for enrolling agents.", no_args_is_help=True)


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

"""``skylan login``: check an API token against a controller and remember it."""

from __future__ import annotations

from typing import Annotated

import typer

from skylan.cli.context import CliConfig
from skylan.cli.output import console
from skylan.client import Skylan


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

"""``skylan demo``; the tour itself is :mod:`skylan.cli.demotour`, loaded only
when it runs (it brings the lab and the controller's TLS, which every other
command would pay for at start-up)."""

from __future__ import annotations

from typing import Annotated

import typer


def demo(
    console: Annotated[
        bool, typer.Option("--console", help="Stay up and serve the web console on loopback.")
    ] = False,
    console_port: Annotated[int, typer.Option(help="Loopback port for --console.")] = 8443,
) -> None:
    """Controller, a relay and four agents (two behind NATs) in namespaces; then tear down."""
    from skylan.cli.demotour import tour

    tour(console, console_port)

"""Turns expected failures into one-line errors and a non-zero exit.

A user of the CLI should never see a traceback for a bad argument, a missing
privilege or a controller that said no; bugs still surface as tracebacks.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from skylan.agent.controlplane import ControlPlaneError
from skylan.agent.state import KeyFileError, NotEnrolled
from skylan.cli.context import NotLoggedIn
from skylan.client.errors import SkylanError
from skylan.controller.settings import ConfigError
from skylan.dataplane.tunnelporterror import TunnelPortError
from skylan.lab.errors import LabError
from skylan.model.jointoken import JoinTokenFormatError
from skylan.relay.errors import RelayStartError

# soft_wrap: an error stays one line however narrow the terminal (or log) is
_stderr = Console(stderr=True, highlight=False, soft_wrap=True)

EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    LabError,
    SkylanError,
    ConfigError,
    NotLoggedIn,
    ControlPlaneError,
    NotEnrolled,
    JoinTokenFormatError,
    KeyFileError,
    TunnelPortError,
    RelayStartError,
    PermissionError,
    FileNotFoundError,
)


def fail(message: str, code: int = 1) -> None:
    _stderr.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def run_app(app: typer.Typer) -> None:
    try:
        app(standalone_mode=True)
    except EXPECTED_ERRORS as exc:
        _stderr.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)

"""Turns expected failures into one-line errors and a non-zero exit.

A user of the CLI should never see a traceback for a bad argument, a missing
privilege or a controller that said no; bugs still surface as tracebacks.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

# soft_wrap: an error stays one line however narrow the terminal (or log) is
_stderr = Console(stderr=True, highlight=False, soft_wrap=True)

# Named, not imported: importing them would load the agent, the controller's
# settings, the lab and the relay on every command (a third of the CLI's start-up).
# A class whose module was never imported cannot have been raised.
EXPECTED_ERRORS: tuple[tuple[str, str], ...] = (
    ("skylan.lab.errors", "LabError"),
    ("skylan.client.errors", "SkylanError"),
    ("skylan.controller.settings", "ConfigError"),
    ("skylan.cli.context", "NotLoggedIn"),
    ("skylan.agent.controlplane", "ControlPlaneError"),
    ("skylan.agent.state", "NotEnrolled"),
    ("skylan.model.jointoken", "JoinTokenFormatError"),
    ("skylan.agent.state", "KeyFileError"),
    ("skylan.dataplane.tunnelporterror", "TunnelPortError"),
    ("skylan.relay.errors", "RelayStartError"),
    ("builtins", "PermissionError"),
    ("builtins", "FileNotFoundError"),
)


def expected(exc: BaseException) -> bool:
    """A failure the user can act on (one line), not a bug (a traceback)."""
    for module_name, name in EXPECTED_ERRORS:
        module = sys.modules.get(module_name)
        kind = getattr(module, name, None) if module is not None else None
        if isinstance(kind, type) and isinstance(exc, kind):
            return True
    return False


def fail(message: str, code: int = 1) -> None:
    _stderr.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def run_app(app: typer.Typer) -> None:
    try:
        app(standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        if not expected(exc):
            raise
        _stderr.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)

"""``skylan controller``: initialise and run the controller."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from skylan.cli.output import console
from skylan.controller.settings import DEFAULT_DATA_DIR, ControllerSettings

app = typer.Typer(help="Run the skylan controller.", no_args_is_help=True)

DataDir = Annotated[
    Path,
    typer.Option(help="State directory (database, TLS certificate).", envvar="SKYLAN_DATA_DIR"),
]
DbUrl = Annotated[
    str | None,
    typer.Option(
        help="SQLAlchemy URL; default SQLite in the data dir. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
        envvar="SKYLAN_DATABASE_URL",
    ),
]


def _settings(
    data_dir: Path,
    database_url: str | None,
    public_url: str | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    poll_interval: float = 2.0,
) -> ControllerSettings:
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("give both --tls-cert and --tls-key, or neither")
    return ControllerSettings(
        data_dir=data_dir,
        database_url=database_url,
        public_url=public_url,
        tls_cert=tls_cert,
        tls_key=tls_key,
        poll_interval_s=poll_interval,
    )


def _announce(app_fingerprint: str, secret: str | None, url: str) -> None:
    console.print(f"TLS certificate fingerprint (sha256): [bold]{app_fingerprint}[/]")
    if secret is not None:
        console.print("Bootstrap admin token (shown once, store it now):")
        console.print(f"  [bold]{secret}[/]")
        console.print(f"  skylan login {url} --token {secret} --fingerprint {app_fingerprint}")


@app.command()
def init(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DbUrl = None,
    public_url: Annotated[str, typer.Option(help="URL agents use.")] = "https://localhost:8443",
) -> None:
    """Create the database, the TLS certificate and the first admin token."""
    from skylan.controller.app import bootstrap_admin, create_app

    app = create_app(_settings(data_dir, database_url))
    secret = bootstrap_admin(app)
    app.state.engine.dispose()
    _announce(app.state.cert_fingerprint, secret, public_url)
    if secret is None:
        console.print("(an admin token already exists; none created)")


@app.command()
def serve(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DbUrl = None,
    listen: Annotated[str, typer.Option(help="host:port to listen on.")] = "0.0.0.0:8443",
    public_url: Annotated[
        str | None, typer.Option(help="URL agents use (shown in join commands).")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key.")] = None,
    poll_interval: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Seconds between fallback reads of the change log "
            "(changes from other replicas normally arrive by NOTIFY).",
        ),
    ] = 2.0,
) -> None:
    """Serve the API over HTTPS (self-signed certificate unless one is given)."""
    import uvicorn

    from skylan.controller.app import bootstrap_admin, create_app, tls_files

    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise typer.BadParameter(f"--listen {listen!r}: expected host:port")
    settings = _settings(data_dir, database_url, public_url, tls_cert, tls_key, poll_interval)
    app = create_app(settings)
    secret = bootstrap_admin(app)
    shown_host = "localhost" if host in ("0.0.0.0", "::") else host
    _announce(app.state.cert_fingerprint, secret, public_url or f"https://{shown_host}:{port}")
    files = tls_files(settings)
    uvicorn.run(
        app,
        host=host,
        port=int(port),
        ssl_certfile=str(files.cert),
        ssl_keyfile=str(files.key),
        log_level=os.environ.get("SKYLAN_LOG", "info"),
        timeout_graceful_shutdown=3,
    )


@app.command()
def fingerprint(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Print the SHA-256 fingerprint of the controller's certificate."""
    cert = data_dir / "tls.crt"
    if not cert.exists():
        raise FileNotFoundError(f"{cert}: run `skylan controller init` first")
    from skylan.controller.tls import fingerprint_of_pem

    typer.echo(fingerprint_of_pem(cert.read_bytes()))

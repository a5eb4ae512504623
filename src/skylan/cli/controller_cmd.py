"""``skylan controller``: initialise and run the controller."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from skylan.cli.output import console
from skylan.controller.lockout import LockoutPolicy
from skylan.controller.settings import DEFAULT_DATA_DIR, DEFAULT_MAX_BODY, ControllerSettings

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
    max_body_bytes: int = DEFAULT_MAX_BODY,
    auth_failure_burst: int = LockoutPolicy.burst,
    max_busy: int = ControllerSettings.max_busy,
    audit_days: float = ControllerSettings.audit_days,
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
        max_body_bytes=max_body_bytes,
        lockout=LockoutPolicy(burst=auth_failure_burst),
        max_busy=max_busy,
        audit_days=audit_days,
    )


def _host_port(option: str, value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"{option} {value!r}: expected host:port")
    return host.strip("[]"), int(port)


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
    metrics_listen: Annotated[
        str | None,
        typer.Option(
            help="Also serve /metrics WITHOUT authentication, over plain HTTP, on this "
            "host:port (a private address for Prometheus scrapers). Without it, /metrics "
            "needs an API token.",
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            help="Address of a reverse proxy whose X-Forwarded-For/-Proto headers to "
            "believe (repeatable). Without it no proxy header is trusted.",
        ),
    ] = None,
    max_body_bytes: Annotated[
        int,
        typer.Option(min=1024, help="Refuse request bodies larger than this (413)."),
    ] = DEFAULT_MAX_BODY,
    auth_failure_burst: Annotated[
        int,
        typer.Option(
            min=1,
            help="Failed authentications (wrong tokens, logins, node credentials) a source "
            "address may make before it must wait; one more is forgiven every 6 s.",
        ),
    ] = LockoutPolicy.burst,
    max_busy: Annotated[
        int,
        typer.Option(
            min=1,
            help="Requests in progress (parked long-polls apart) beyond which more are "
            "answered 503 with Retry-After at once, rather than queued.",
        ),
    ] = ControllerSettings.max_busy,
    audit_days: Annotated[
        float,
        typer.Option(min=1, help="Keep audit-log events this many days."),
    ] = ControllerSettings.audit_days,
) -> None:
    """Serve the API over HTTPS (self-signed certificate unless one is given)."""
    import uvicorn
    from prometheus_client import start_http_server

    from skylan.controller.app import bootstrap_admin, create_app, tls_files
    from skylan.controller.httpsserver import HttpsServer

    host, port = _host_port("--listen", listen)
    scrape = _host_port("--metrics-listen", metrics_listen) if metrics_listen else None
    settings = _settings(
        data_dir,
        database_url,
        public_url,
        tls_cert,
        tls_key,
        poll_interval,
        max_body_bytes,
        auth_failure_burst,
        max_busy,
        audit_days,
    )
    app = create_app(settings)
    secret = bootstrap_admin(app)
    shown_host = "localhost" if host in ("0.0.0.0", "::") else host
    _announce(app.state.cert_fingerprint, secret, public_url or f"https://{shown_host}:{port}")
    files = tls_files(settings)
    if scrape is not None:
        start_http_server(scrape[1], scrape[0], registry=app.state.metrics_registry)
        console.print(f"unauthenticated metrics on http://{metrics_listen}/metrics")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(files.cert),
        ssl_keyfile=str(files.key),
        log_level=os.environ.get("SKYLAN_LOG", "info"),
        timeout_graceful_shutdown=3,
        # the client address is the TCP peer's unless a named proxy vouches for
        # another (a forged X-Forwarded-For would let a node choose the address
        # cloaked peers admit)
        proxy_headers=bool(trusted_proxy),
        forwarded_allow_ips=",".join(trusted_proxy) if trusted_proxy else "",
    )
    server = HttpsServer(
        config,
        app.state.agent_front,
        app.state.reflector,
        stopping=app.state.controller.feed.stop_waits,
    )
    server.run()
    if not server.started:
        raise SystemExit(3)


@app.command()
def fingerprint(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Print the SHA-256 fingerprint of the controller's certificate."""
    cert = data_dir / "tls.crt"
    if not cert.exists():
        raise FileNotFoundError(f"{cert}: run `skylan controller init` first")
    from skylan.controller.tls import fingerprint_of_pem

    typer.echo(fingerprint_of_pem(cert.read_bytes()))

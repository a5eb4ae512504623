"""The controller's FastAPI application."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from skylan import __version__
from skylan.controller.api import (
    agent,
    api_tokens,
    cloak_rules,
    errors,
    networks,
    nodes,
    ports,
    routes,
    stats,
    tokens,
)
from skylan.controller.auth import Scope, create_api_token, has_tokens
from skylan.controller.console import mount as console
from skylan.controller.feed import NetmapFeed, listen_url_for
from skylan.controller.gate import Gate
from skylan.controller.lockout import Lockout
from skylan.controller.metrics import ControllerCollector
from skylan.controller.settings import ControllerSettings, check_admin_token
from skylan.controller.storage.database import make_engine, migrate, session_factory
from skylan.controller.tls import TlsFiles, ensure_certificate
from skylan.privatefile import private_dir

log = logging.getLogger("skylan.controller")

API_PREFIX = "/api/v1"
BOOTSTRAP_ENV = "SKYLAN_ADMIN_TOKEN"


def tls_files(settings: ControllerSettings) -> TlsFiles:
    if settings.tls_cert is not None and settings.tls_key is not None:
        return TlsFiles(settings.tls_cert, settings.tls_key)
    return ensure_certificate(settings.data_dir)


def bootstrap_admin(app: FastAPI) -> str | None:
    """Create the first admin token if there is none; returns its secret.

    Taken from ``$SKYLAN_ADMIN_TOKEN`` when set (for automation), otherwise
    random; either way it is the caller's job to show it once.
    """
    given = os.environ.get(BOOTSTRAP_ENV) or None
    with app.state.sessions() as db:
        if has_tokens(db):
            return None
        _, secret = create_api_token(
            db, "bootstrap-admin", Scope.ADMIN, check_admin_token(given) if given else None
        )
        return secret


def create_app(settings: ControllerSettings) -> FastAPI:
    private_dir(settings.data_dir)  # the TLS key and, by default, the database live here
    engine = make_engine(settings.db_url)
    migrate(engine)
    sessions = session_factory(engine)
    feed = NetmapFeed(
        sessions,
        coalesce=settings.coalesce_s,
        poll_interval=settings.poll_interval_s,
        listen_url=listen_url_for(settings.db_url),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await feed.start()
        try:
            yield
        finally:
            await feed.stop()

    app = FastAPI(
        title="skylan controller",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.feed = feed
    app.state.cert_fingerprint = tls_files(settings).fingerprint
    app.state.public_url = settings.public_url
    errors.install(app)
    app.state.lockout = Lockout(settings.lockout)
    app.add_middleware(
        Gate, sessions=sessions, lockout=app.state.lockout, max_body=settings.max_body_bytes
    )
    for module in (networks, ports, routes, cloak_rules, tokens, nodes, stats, api_tokens, agent):
        app.include_router(module.router, prefix=API_PREFIX, responses=errors.ERROR_RESPONSES)

    console.install(app)

    registry = app.state.metrics_registry = CollectorRegistry()
    registry.register(ControllerCollector(sessions, feed))

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Needs an API token (the gate checks it); for scrapers without one,
        ``skylan controller serve --metrics-listen`` serves the same on its own
        address."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get(f"{API_PREFIX}/health", tags=["meta"], responses=errors.ERROR_RESPONSES)
    def health() -> dict[str, str | int]:
        return {"status": "ok", "version": __version__, "netmap_change": feed.last_change}

    return app

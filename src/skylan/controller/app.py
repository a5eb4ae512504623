"""The controller's FastAPI application."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from skylan import __version__
from skylan.controller.api import errors, networks
from skylan.controller.settings import ControllerSettings
from skylan.controller.storage.database import make_engine, migrate, session_factory

log = logging.getLogger("skylan.controller")

API_PREFIX = "/api/v1"


def create_app(settings: ControllerSettings) -> FastAPI:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    migrate(engine)
    app = FastAPI(
        title="skylan controller",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    errors.install(app)
    app.include_router(networks.router, prefix=API_PREFIX)

    @app.get(f"{API_PREFIX}/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app

"""The API suite runs twice: against SQLite and against a real PostgreSQL.

PostgreSQL is a private cluster started once per test session (Unix socket
only), with a fresh database per test.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from skylan.controller.app import create_app
from skylan.controller.auth import Scope, create_api_token
from skylan.controller.settings import ControllerSettings
from skylan.lab import postgres

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[postgres.PostgresCluster]:
    reason = postgres.available()
    if reason is not None:
        pytest.skip(reason)
    with postgres.PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'controller.db'}"
    cluster: postgres.PostgresCluster = request.getfixturevalue("pg_cluster")
    return cluster.create_database(f"t{next(_db_counter)}")


@dataclass
class Api:
    client: TestClient
    admin: dict[str, str]
    read: dict[str, str]

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.client.post(path, json=body, headers=kw.pop("headers", self.admin), **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, headers=kw.pop("headers", self.read), **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        return self.client.patch(path, json=body, headers=kw.pop("headers", self.admin), **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.delete(path, headers=kw.pop("headers", self.admin), **kw)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def other_client(self, **kw: Any) -> TestClient:
        """Another client of the same running app (another address, say). It
        shares this client's event loop: the controller's feed and writer live
        on it, and a second lifespan would start a second controller."""
        client = TestClient(self.client.app, **kw)
        client.portal = self.client.portal
        return client


def make_settings(tmp_path: Path, url: str) -> ControllerSettings:
    return ControllerSettings(
        data_dir=tmp_path, database_url=url, coalesce_s=0.05, poll_interval_s=0.5
    )


@pytest.fixture
def api(tmp_path: Path, database_url: str) -> Iterator[Api]:
    app = create_app(make_settings(tmp_path, database_url))
    with app.state.sessions() as db:
        _, admin = create_api_token(db, "test-admin", Scope.ADMIN)
        _, read = create_api_token(db, "test-read", Scope.READ)
    try:
        with TestClient(app) as client:
            yield Api(
                client, {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {read}"}
            )
    finally:
        app.state.engine.dispose()

"""An in-process controller on a fresh SQLite database, with admin and read tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from skylan.controller.app import create_app
from skylan.controller.auth import Scope, create_api_token
from skylan.controller.settings import ControllerSettings


@dataclass
class Api:
    client: TestClient
    admin: dict[str, str]
    read: dict[str, str]

    def post(self, path: str, body: object) -> object:
        return self.client.post(path, json=body, headers=self.admin)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    app = create_app(ControllerSettings(data_dir=tmp_path))
    with app.state.sessions() as db:
        _, admin = create_api_token(db, "test-admin", Scope.ADMIN)
        _, read = create_api_token(db, "test-read", Scope.READ)
    with TestClient(app) as client:
        yield Api(
            client,
            {"Authorization": f"Bearer {admin}"},
            {"Authorization": f"Bearer {read}"},
        )

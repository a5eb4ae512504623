"""Two controllers in one process on one PostgreSQL database: what an agent
reports to one (liveness, its tunnels, its OS) shows on the other, and a
replica does not overwrite fresher news of its own with older news from the
database."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skylan.controller.app import create_app
from skylan.controller.auth import Scope, create_api_token
from skylan.lab.postgres import PostgresCluster

from .conftest import Api, make_settings
from .helpers import enroll, join_token, network


@pytest.fixture
def pair(pg_cluster: PostgresCluster, tmp_path: Path) -> Iterator[tuple[Api, Api]]:
    url = pg_cluster.create_database("heartbeats")
    apps = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        apps.append(create_app(replace(make_settings(tmp_path / name, url), flush_s=0.2)))
    with apps[0].state.sessions() as db:
        _, admin = create_api_token(db, "test-admin", Scope.ADMIN)
    auth = {"Authorization": f"Bearer {admin}"}
    try:
        with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
            yield Api(a, auth, auth), Api(b, auth, auth)
    finally:
        for app in apps:
            app.state.engine.dispose()


def until(check: Any, seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def tunnel(peer: str, rtt: float) -> dict[str, Any]:
    return {"node_id": peer, "established": True, "endpoint": "198.18.0.9:51820", "rtt_ms": rtt}


def test_what_one_replica_hears_the_other_shows(pair: tuple[Api, Api]) -> None:
    a, b = pair
    network(a)
    token = join_token(a, max_uses=2)["token"]
    first = a.ok(enroll(a, token, "first"), 201)
    second = a.ok(enroll(a, token, "second"), 201)
    heard = {"Authorization": f"Bearer {first['credential']}"}
    beat = {"os": "Linux 6.1", "agent_version": "9.9.9", "peers": [tunnel(second["node_id"], 0.7)]}
    a.ok(a.client.post("/api/v1/agent/heartbeat", json=beat, headers=heard))

    def on_b() -> Any:
        # the tunnel list is read from the database as the page is asked for;
        # the other details reach B's memory with its next read of what other
        # replicas heard (flush_s later): for a moment B may show one, not both
        node = b.ok(b.get(f"/api/v1/nodes/{first['node_id']}"))
        return node if node["online"] and node["peers"] and node["os"] == "Linux 6.1" else None

    node = until(on_b)
    assert node is not None, "B never showed what A heard"
    assert node["agent_version"] == "9.9.9"
    assert [(p["node"], p["rtt_ms"]) for p in node["peers"]] == [("second", 0.7)]

    # the agent moves to B and its tunnels change there: A follows
    beat["peers"] = [tunnel(second["node_id"], 2.5)]
    b.ok(b.client.post("/api/v1/agent/heartbeat", json=beat, headers=heard))
    assert until(
        lambda: a.ok(a.get(f"/api/v1/nodes/{first['node_id']}"))["peers"][0]["rtt_ms"] == 2.5
    ), "A never showed what B heard"
    # while it stays on B with unchanged details, A keeps them (only its
    # liveness is read again) and B's own view is never replaced by older news
    time.sleep(1.0)
    for replica in (a, b):
        node = replica.ok(replica.get(f"/api/v1/nodes/{first['node_id']}"))
        assert node["online"] and node["peers"][0]["rtt_ms"] == 2.5 and node["os"] == "Linux 6.1"

"""The in-memory state is the database, as of the last change: after every
kind of change (through the API, as users make them) the controller's state
and every node's netmap equal what a fresh load of the database gives; and a
restarted controller serves the same netmaps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from skylan.controller.app import create_app
from skylan.controller.auth import Scope, create_api_token
from skylan.controller.netmaps import NetmapBook
from skylan.controller.runtime import Controller
from skylan.controller.state import loader
from skylan.controller.state.store import State

from .conftest import Api, make_settings
from .helpers import enroll, enrolled, join_token, network

INDEXES = (
    "networks",
    "network_by_name",
    "nodes",
    "node_by_name",
    "node_by_key",
    "node_by_credential",
    "lane_key_owner",
    "ports",
    "members",
    "memberships",
    "routes",
    "rules",
    "api_tokens",
    "api_token_ids",
)


def controller_of(client: TestClient) -> Controller:
    ctl: Controller = client.app.state.controller  # type: ignore[attr-defined]
    return ctl


def from_database(ctl: Controller) -> tuple[State, NetmapBook]:
    with ctl.sessions() as db:
        changes = loader.load_everything(db)
    state = State()
    state.apply(changes.loaded)
    book = NetmapBook()
    book.rebuild(state, changes.last)
    return state, book


def without_versions(raw: bytes | None) -> Any:
    """A netmap's content: versions say when, not what."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "version"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(raw)) if raw is not None else None


def assert_same_as_database(client: TestClient, step: str) -> None:
    ctl = controller_of(client)
    fresh, book = from_database(ctl)
    memory = ctl.memory
    for index in INDEXES:
        assert getattr(memory, index) == getattr(fresh, index), f"{index} after {step}"
    assert set(memory.pools) == set(fresh.pools), step
    for net_id, pool in fresh.pools.items():
        mine = memory.pools[net_id]
        assert (len(mine), mine.candidates(8)) == (len(pool), pool.candidates(8)), step
    assert set(ctl.feed.book.headers) == set(book.headers), step
    assert set(ctl.feed.book.sections) == set(book.sections), step
    for net_id in book.sections:  # kept up to date member by member
        assert ctl.feed.book.receivers(net_id) == book.receivers(net_id), f"{net_id} {step}"
    for node_id in book.headers:
        served = without_versions(ctl.feed.book.netmap(node_id))
        assert served == without_versions(book.netmap(node_id)), f"{node_id} after {step}"


def test_memory_equals_database_after_every_kind_of_change(api: Api) -> None:
    def check(step: str) -> None:
        assert_same_as_database(api.client, step)

    check("start")
    net = network(api, "prod", "172.16.1.0/24")
    other = network(api, "lab", "172.16.9.0/24", cloaked=True)
    check("networks created")
    a = enrolled(api, "a", networks=["prod", "lab"])
    b = enrolled(api, "b", networks=["prod"])
    check("enrolments with auto-join")
    tok = join_token(api, needs_approval=True)
    pending = api.ok(enroll(api, tok["token"], "c"), 201)
    check("enrolment awaiting approval")
    api.ok(api.post(f"/api/v1/nodes/{pending['node_id']}/approve"))
    check("approval")
    denied = api.ok(enroll(api, join_token(api, needs_approval=True)["token"], "d"), 201)
    api.ok(api.post(f"/api/v1/nodes/{denied['node_id']}/deny"))
    check("denial")
    api.ok(api.patch("/api/v1/networks/prod", {"mtu": 1300, "storm_pps": 50, "description": "x"}))
    api.ok(api.patch("/api/v1/networks/lab", {"name": "lab2", "cloaked": False}))
    check("network updates and a rename")
    api.ok(api.patch("/api/v1/nodes/b", {"name": "b2", "tags": ["db", "eu"]}))
    check("node rename and tags")
    port = api.ok(
        api.post("/api/v1/networks/lab2/ports", {"node": "b2", "ipv4": "172.16.9.40"}), 201
    )
    check("port created with a static address")
    api.ok(api.patch(f"/api/v1/networks/lab2/ports/{port['id']}", {"extra_ips": ["172.16.9.200"]}))
    check("floating address")
    api.ok(api.patch(f"/api/v1/networks/lab2/ports/{port['id']}", {"ipv4": "172.16.9.41"}))
    check("port address changed")
    route = api.ok(
        api.post("/api/v1/networks/prod/routes", {"prefix": "192.168.50.0/24", "via": "a"}), 201
    )
    check("gateway route")
    rule = api.ok(
        api.post(
            "/api/v1/networks/lab2/cloak-rules",
            {"protocol": "tcp", "port_from": 22, "port_to": 22, "node": "a"},
        ),
        201,
    )
    check("cloak rule")
    heartbeat = {"endpoints": ["198.18.3.3:51820"], "uptime_s": 5}
    r = api.client.post("/api/v1/agent/heartbeat", json=heartbeat, headers=a["auth"])
    assert r.status_code == 200, r.text
    check("a heartbeat that moves an endpoint")
    token = api.ok(api.post("/api/v1/api-tokens", {"name": "ci", "scope": "read"}), 201)
    check("api token created")
    api.ok(api.delete(f"/api/v1/api-tokens/{token['id']}"), 204)
    check("api token revoked")
    api.ok(api.delete(f"/api/v1/networks/prod/routes/{route['id']}"), 204)
    api.ok(api.delete(f"/api/v1/networks/lab2/cloak-rules/{rule['id']}"), 204)
    check("route and rule deleted")
    api.ok(api.delete(f"/api/v1/networks/lab2/ports/{port['id']}"), 204)
    check("port deleted")
    api.ok(api.delete(f"/api/v1/nodes/{b['node_id']}"), 204)
    check("node deleted")
    api.ok(api.delete(f"/api/v1/networks/{other['id']}", params={"force": "true"}), 204)
    check("network with members deleted")
    del net


def test_a_restarted_controller_serves_the_same_netmaps(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'controller.db'}"
    served: dict[str, Any] = {}
    settings = make_settings(tmp_path, url)
    app = create_app(settings)
    with app.state.sessions() as db:
        _, secret = create_api_token(db, "admin", Scope.ADMIN)
    admin = {"Authorization": f"Bearer {secret}"}
    with TestClient(app) as client:
        api = Api(client, admin, admin)
        network(api, "prod")
        network(api, "lab", "172.16.9.0/24")
        nodes = [enrolled(api, f"n{i}", networks=["prod", "lab"]) for i in range(5)]
        api.ok(api.patch("/api/v1/nodes/n1", {"tags": ["x"]}))
        api.ok(
            api.post("/api/v1/networks/prod/routes", {"prefix": "10.9.0.0/16", "via": "n2"}), 201
        )
        api.ok(api.delete("/api/v1/nodes/n3"), 204)
        ctl = controller_of(client)
        for node in nodes:
            served[node["node_id"]] = without_versions(ctl.feed.book.netmap(node["node_id"]))
    with TestClient(create_app(settings)) as client:
        assert_same_as_database(client, "restart")
        ctl = controller_of(client)
        for node_id, before in served.items():
            assert without_versions(ctl.feed.book.netmap(node_id)) == before, node_id

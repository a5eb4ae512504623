"""/api/v1/networks on SQLite: CRUD, validation, auth, and errors as JSON."""

from __future__ import annotations

import pytest

from .conftest import Api
from .helpers import enrolled, netmap_until, network

NET = {"name": "prod", "cidr4": "172.16.1.0/24"}


def test_create_list_show_update_delete(api: Api) -> None:
    c = api.client
    r = c.post("/api/v1/networks", json={**NET, "description": "the VPC"}, headers=api.admin)
    assert r.status_code == 201, r.text
    net = r.json()
    assert net["mtu"] == 1420 and net["encrypted"] is True and net["cloaked"] is False
    assert [n["name"] for n in c.get("/api/v1/networks", headers=api.read).json()] == ["prod"]
    assert c.get(f"/api/v1/networks/{net['id']}", headers=api.read).json()["name"] == "prod"
    assert c.get("/api/v1/networks/prod", headers=api.read).json()["id"] == net["id"]
    r = c.patch("/api/v1/networks/prod", json={"cloaked": True, "mtu": 1380}, headers=api.admin)
    assert r.status_code == 200 and r.json()["cloaked"] is True and r.json()["mtu"] == 1380
    assert c.delete("/api/v1/networks/prod", headers=api.admin).status_code == 204
    r = c.get("/api/v1/networks/prod", headers=api.read)
    assert r.status_code == 404 and r.json()["error"] == "network 'prod' not found"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "cidr4": "10.0.0.0/33"}, "cidr4"),
        ({"name": "x", "cidr4": "172.16.1.5/24"}, "host bits set"),
        ({"name": "x", "cidr4": "banana"}, "not an IPv4 network"),
        ({"name": "x", "cidr4": "172.16.1.0/31"}, "/30 or shorter"),
        ({"name": "x", "cidr4": "fd00::/64"}, "not an IPv4 network"),
        ({"name": "bad name!", "cidr4": "172.16.1.0/24"}, "letters, digits"),
        ({"name": "x", "cidr4": "172.16.1.0/24", "mtu": 100}, "mtu"),
        ({"name": "x", "cidr4": "172.16.1.0/24", "cidr6": "fd00::/64", "mtu": 1000}, "1280"),
        ({"name": "x", "cidr4": "172.16.1.0/24", "cidr6": "nope"}, "not an IPv6 network"),
        ({"name": "x", "cidr4": "172.16.1.0/24", "colour": "red"}, "colour"),
        ({"cidr4": "172.16.1.0/24"}, "name"),
    ],
)
def test_bad_input_is_a_clear_422(api: Api, body: dict[str, object], message: str) -> None:
    r = api.client.post("/api/v1/networks", json=body, headers=api.admin)
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]
    assert api.client.get("/api/v1/networks", headers=api.read).json() == []  # nothing made


def test_malformed_json_is_a_4xx(api: Api) -> None:
    r = api.client.post(
        "/api/v1/networks",
        content=b"{not json",
        headers={**api.admin, "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert "error" in r.json()


def test_duplicate_name_is_a_409(api: Api) -> None:
    assert api.client.post("/api/v1/networks", json=NET, headers=api.admin).status_code == 201
    r = api.client.post("/api/v1/networks", json=NET, headers=api.admin)
    assert r.status_code == 409
    assert "already exists" in r.json()["error"]
    other = {"name": "other", "cidr4": "172.16.2.0/24"}
    r = api.client.post(
        "/api/v1/networks", json={**other, "cidr4": "172.16.0.0/16"}, headers=api.admin
    )
    assert r.status_code == 409 and "overlaps network 'prod'" in r.json()["error"]
    assert api.client.post("/api/v1/networks", json=other, headers=api.admin).status_code == 201
    r = api.client.patch("/api/v1/networks/other", json={"name": "prod"}, headers=api.admin)
    assert r.status_code == 409


def test_update_validation(api: Api) -> None:
    api.client.post("/api/v1/networks", json=NET, headers=api.admin)
    r = api.client.patch(
        "/api/v1/networks/prod", json={"cidr6": "fd00::/64", "mtu": 1000}, headers=api.admin
    )
    assert r.status_code == 422 and "1280" in r.json()["error"]
    r = api.client.patch("/api/v1/networks/prod", json={"name": None}, headers=api.admin)
    assert r.status_code == 422
    assert api.client.get("/api/v1/networks/prod", headers=api.read).json()["mtu"] == 1420


def test_auth_is_required_and_scoped(api: Api) -> None:
    c = api.client
    r = c.get("/api/v1/networks")
    assert r.status_code == 401 and "Bearer" in r.json()["error"]
    r = c.get("/api/v1/networks", headers={"Authorization": "Bearer skyadm_wrong"})
    assert r.status_code == 401 and "invalid" in r.json()["error"]
    r = c.post("/api/v1/networks", json=NET, headers=api.read)
    assert r.status_code == 403 and "read-only" in r.json()["error"]
    assert c.delete("/api/v1/networks/prod", headers=api.read).status_code == 403


def test_openapi_and_health(api: Api) -> None:
    spec = api.client.get("/api/v1/openapi.json").json()
    assert "/api/v1/networks" in spec["paths"]
    assert api.client.get("/api/v1/health").json()["status"] == "ok"
    r = api.get("/api/v1/nope")
    assert r.status_code == 404 and "error" in r.json()
    r = api.client.get("/api/v1/nope")  # no credentials: nothing is said of what exists
    assert r.status_code == 401 and "error" in r.json()


def test_migrations_match_the_models(api: Api) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from skylan.controller.storage.tables import Base

    engine = api.client.app.state.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_the_openapi_document_declares_every_error_and_timestamps_carry_a_zone(api: Api) -> None:
    spec = api.client.get("/api/v1/openapi.json").json()
    error_ref = "#/components/schemas/ErrorBody"
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            for status in ("400", "401", "403", "404", "409", "413", "422", "429"):
                schema = op["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": error_ref}, (method, path, status)
    tok = api.ok(api.post("/api/v1/tokens", {"expires_in_s": 3600}), 201)
    for listed in (api.ok(api.get(f"/api/v1/tokens/{tok['id']}")), tok):
        for key in ("expires_at", "created_at"):
            assert listed[key].endswith("Z") or listed[key].endswith("+00:00"), listed[key]


def test_a_method_the_path_lacks_is_405_with_allow(api: Api) -> None:
    r = api.client.put("/api/v1/networks", headers=api.admin, json={})
    assert r.status_code == 405 and r.json()["error"]
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    r = api.client.put("/api/v1/networks/prod", headers=api.admin, json={})
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "PATCH", "DELETE"}


def test_an_ipv6_prefix_gives_every_member_an_address(api: Api) -> None:
    bad = api.post(
        "/api/v1/networks", {"name": "big", "cidr4": "10.0.0.0/16", "cidr6": "fd00:9::/120"}
    )
    assert bad.status_code == 422 and "room for every one" in bad.json()["error"]
    network(api, cidr6="fd00:1::/64")
    a = enrolled(api, "a", networks=["prod"])
    nm = netmap_until(api, a, lambda m: m["networks"] and m["networks"][0]["peers"])
    port = nm["networks"][0]["peers"][0]["port"]
    assert port["ipv6"] == "fd00:1::" + port["ipv4"].rsplit(".", 1)[1]
    assert port["prefixlen6"] == 64
    (member,) = api.ok(api.get("/api/v1/networks/prod/ports"))
    assert member["ipv6"] == port["ipv6"]
    small = api.patch("/api/v1/networks/prod", {"cidr6": "fd00:9::/125"})
    assert small.status_code == 422
    api.ok(api.patch("/api/v1/networks/prod", {"cidr6": "fd00:2::/64"}))
    nm = netmap_until(
        api, a, lambda m: m["networks"][0]["peers"][0]["port"]["ipv6"].startswith("fd00:2::")
    )
    api.ok(api.patch("/api/v1/networks/prod", {"cidr6": None}))
    netmap_until(api, a, lambda m: m["networks"][0]["peers"][0]["port"]["ipv6"] is None)

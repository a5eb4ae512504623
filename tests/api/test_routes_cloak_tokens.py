"""Routes, cloak exception rules, API tokens and scopes."""

from __future__ import annotations

from .conftest import Api
from .helpers import enroll, enrolled, netmap_until, network


def test_routes(api: Api) -> None:
    network(api)
    gw = enrolled(api, "gw", networks=["prod"])
    route = api.ok(
        api.post("/api/v1/networks/prod/routes", {"prefix": "192.168.10.0/24", "via": "gw"}), 201
    )
    assert route["metric"] == 100
    nm = netmap_until(api, gw, lambda m: m["networks"] and m["networks"][0]["routes"])
    assert nm["networks"][0]["routes"][0]["via_ipv4"] == "172.16.1.1"
    admin_view = api.ok(api.get(f"/api/v1/nodes/{gw['node_id']}/netmap"))
    assert admin_view["version"] >= nm["version"]
    for body, status, msg in [
        ({"prefix": "192.168.10.5/24", "via": "gw"}, 422, "host bits"),
        ({"prefix": "172.16.1.0/25", "via": "gw"}, 422, "overlaps the network"),
        ({"prefix": "10.1.0.0/16", "via": "nobody"}, 404, "not found"),
        ({"prefix": "10.1.0.0/16", "via": "gw", "metric": -1}, 422, "metric"),
    ]:
        r = api.post("/api/v1/networks/prod/routes", body)
        assert r.status_code == status and msg in r.json()["error"], r.text
    assert len(api.ok(api.get("/api/v1/networks/prod/routes"))) == 1
    assert api.delete(f"/api/v1/networks/prod/routes/{route['id']}").status_code == 204
    assert api.delete(f"/api/v1/networks/prod/routes/{route['id']}").status_code == 404


def test_cloak_rules(api: Api) -> None:
    network(api, cloaked=True)
    enrolled(api, "web", networks=["prod"])
    enrolled(api, "outsider")
    rule = api.ok(
        api.post(
            "/api/v1/networks/prod/cloak-rules",
            {
                "node": "web",
                "protocol": "tcp",
                "port_from": 443,
                "source_cidr": "0.0.0.0/0",
                "description": "https",
            },
        ),
        201,
    )
    assert rule["port_to"] == 443
    every = api.ok(
        api.post(
            "/api/v1/networks/prod/cloak-rules",
            {"protocol": "icmp", "source_cidr": "198.18.0.0/15"},
        ),
        201,
    )
    assert every["node_id"] is None
    for body, status, msg in [
        ({"protocol": "tcp"}, 422, "need port_from"),
        ({"protocol": "udp", "port_from": 10, "port_to": 5}, 422, "port_to"),
        ({"protocol": "icmp", "port_from": 1}, 422, "take no ports"),
        ({"protocol": "gre"}, 422, "protocol"),
        ({"protocol": "tcp", "port_from": 70000}, 422, "port_from"),
        ({"protocol": "any", "source_cidr": "nope"}, 422, "not an IP prefix"),
        ({"protocol": "any", "node": "outsider"}, 422, "not a member"),
    ]:
        r = api.post("/api/v1/networks/prod/cloak-rules", body)
        assert r.status_code == status and msg in r.json()["error"], (body, r.text)
    rules = api.ok(api.get("/api/v1/networks/prod/cloak-rules"))
    assert [r["protocol"] for r in rules] == ["tcp", "icmp"]
    assert api.delete(f"/api/v1/networks/prod/cloak-rules/{rule['id']}").status_code == 204
    assert api.delete("/api/v1/networks/prod/cloak-rules/nope").status_code == 404


def test_api_tokens_and_scopes(api: Api) -> None:
    created = api.ok(api.post("/api/v1/api-tokens", {"name": "ci", "scope": "read"}), 201)
    ci = {"Authorization": f"Bearer {created['secret']}"}
    assert api.client.get("/api/v1/networks", headers=ci).status_code == 200
    r = api.client.post("/api/v1/networks", json={"name": "x", "cidr4": "10.9.0.0/24"}, headers=ci)
    assert r.status_code == 403
    assert api.get("/api/v1/api-tokens").status_code == 403  # read tokens cannot list tokens
    listed = api.ok(api.get("/api/v1/api-tokens", headers=api.admin))
    assert "secret" not in listed[0]
    assert api.delete(f"/api/v1/api-tokens/{created['id']}").status_code == 204
    r = api.client.get("/api/v1/networks", headers=ci)
    assert r.status_code == 401 and "revoked" in r.json()["error"]
    assert api.post("/api/v1/api-tokens", {"name": "x", "scope": "god"}).status_code == 422
    assert api.delete("/api/v1/api-tokens/nope").status_code == 404


def test_every_write_needs_admin(api: Api) -> None:
    network(api)
    enrolled(api, "a", networks=["prod"])
    writes = [
        ("post", "/api/v1/networks", {"name": "y", "cidr4": "10.8.0.0/24"}),
        ("patch", "/api/v1/networks/prod", {"mtu": 1400}),
        ("delete", "/api/v1/networks/prod", None),
        ("post", "/api/v1/tokens", {}),
        ("post", "/api/v1/networks/prod/ports", {"node": "a"}),
        ("patch", "/api/v1/nodes/a", {"name": "z"}),
        ("post", "/api/v1/nodes/a/approve", None),
        ("delete", "/api/v1/nodes/a", None),
        ("post", "/api/v1/networks/prod/routes", {"prefix": "10.1.0.0/16", "via": "a"}),
        ("post", "/api/v1/networks/prod/cloak-rules", {"protocol": "any"}),
    ]
    for method, path, body in writes:
        kwargs = {"json": body} if body is not None else {}
        r = api.client.request(method, path, headers=api.read, **kwargs)
        assert r.status_code == 403, (method, path, r.text)
        r = api.client.request(method, path, **kwargs)
        assert r.status_code == 401, (method, path, r.text)
    assert api.ok(api.get("/api/v1/networks/prod"))["mtu"] == 1420


def test_route_options_and_gateway_candidates(api: Api) -> None:
    network(api)
    tok = api.ok(api.post("/api/v1/tokens", {"max_uses": None, "networks": ["prod"]}), 201)
    office = [
        {"name": "eth0", "addresses": ["198.18.1.5/16"], "default_route": True},
        {"name": "eth1", "addresses": ["192.168.10.1/24"]},
    ]
    cloud = [{"name": "eth0", "addresses": ["198.18.1.6/16"], "default_route": True}]
    api.ok(enroll(api, tok["token"], "office-gw", interfaces=office), 201)
    api.ok(enroll(api, tok["token"], "cloud-1", interfaces=cloud), 201)
    candidates = api.ok(api.get("/api/v1/networks/prod/gateway-candidates"))
    assert [(c["node"], c["prefix"], c["interface"]) for c in candidates] == [
        ("office-gw", "192.168.10.0/24", "eth1")
    ]  # the shared underlay is not a LAN
    r = api.post(
        "/api/v1/networks/prod/routes",
        {"prefix": "192.168.10.0/24", "via": "office-gw", "masquerade": False},
    )
    route = api.ok(r, 201)
    assert route["via_node"] == "office-gw" and route["masquerade"] is False
    r = api.post("/api/v1/networks/prod/routes", {"prefix": "192.168.10.0/24", "via": "office-gw"})
    assert r.status_code == 409 and "already goes via" in r.json()["error"]
    r = api.post("/api/v1/networks/prod/routes", {"prefix": "0.0.0.0/0", "via": "office-gw"})
    assert r.status_code == 422 and "default route" in r.json()["error"]
    backup = api.ok(
        api.post(
            "/api/v1/networks/prod/routes",
            {"prefix": "192.168.10.0/24", "via": "cloud-1", "metric": 200},
        ),
        201,
    )
    assert [r["metric"] for r in api.ok(api.get("/api/v1/networks/prod/routes"))] == [100, 200]
    assert backup["masquerade"] is True
    assert api.get("/api/v1/networks/ghost/gateway-candidates").status_code == 404

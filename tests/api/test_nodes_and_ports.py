"""Nodes and ports: status, rename/tag, delete revokes, IPAM under concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .conftest import Api
from .helpers import enroll, enrolled, network


def test_node_details_status_and_heartbeat(api: Api) -> None:
    node = enrolled(api, "db-1")
    out = api.ok(api.get(f"/api/v1/nodes/{node['node_id']}"))
    assert out["name"] == "db-1" and out["online"] is True and out["status"] == "approved"
    assert out["endpoints"] == ["198.18.1.1:51820"]
    assert out["interfaces"][0]["name"] == "eth0"
    hb = {"uptime_s": 120, "agent_version": "0.2.0", "endpoints": ["198.18.1.9:51820"]}
    api.ok(api.client.post("/api/v1/agent/heartbeat", json=hb, headers=node["auth"]))
    out = api.ok(api.get("/api/v1/nodes/db-1"))
    assert out["agent_version"] == "0.2.0" and out["endpoints"] == ["198.18.1.9:51820"]
    assert 119 <= out["uptime_s"] <= 125
    r = api.client.post("/api/v1/agent/heartbeat", json={"endpoints": ["x"]}, headers=node["auth"])
    assert r.status_code == 422


def test_rename_tag_and_conflicts(api: Api) -> None:
    a = enrolled(api, "a")
    enrolled(api, "b")
    out = api.ok(
        api.patch(f"/api/v1/nodes/{a['node_id']}", {"name": "web-1", "tags": ["env=prod", "web"]})
    )
    assert out["name"] == "web-1" and out["tags"] == ["env=prod", "web"]
    r = api.patch("/api/v1/nodes/web-1", {"name": "b"})
    assert r.status_code == 409 and "already exists" in r.json()["error"]
    assert api.patch("/api/v1/nodes/web-1", {"tags": ["no spaces"]}).status_code == 422
    assert api.patch("/api/v1/nodes/web-1", {"name": None}).status_code == 422
    assert api.patch("/api/v1/nodes/ghost", {"name": "x"}).status_code == 404


def test_delete_node_revokes_its_credential_at_once(api: Api) -> None:
    network(api)
    node = enrolled(api, "gone", networks=["prod"])
    assert api.delete("/api/v1/nodes/gone").status_code == 204
    r = api.client.get("/api/v1/agent/netmap", headers=node["auth"], params={"timeout": 0})
    assert r.status_code == 401 and "re-enroll" in r.json()["error"]
    assert api.ok(api.get("/api/v1/networks/prod/ports")) == []
    assert api.get("/api/v1/nodes/gone").status_code == 404


def test_attach_static_and_pool_addresses(api: Api) -> None:
    network(api, cidr4="172.16.1.0/29")
    nodes = [enrolled(api, f"n{i}") for i in range(7)]
    api.ok(api.post("/api/v1/networks/prod/ports", {"node": "n0", "ipv4": "172.16.1.3"}), 201)
    got = [
        api.ok(api.post("/api/v1/networks/prod/ports", {"node": f"n{i}"}), 201)["ipv4"]
        for i in range(1, 6)
    ]
    assert got == ["172.16.1.1", "172.16.1.2", "172.16.1.4", "172.16.1.5", "172.16.1.6"]
    r = api.post("/api/v1/networks/prod/ports", {"node": "n6"})
    assert r.status_code == 409 and "no free addresses" in r.json()["error"]
    assert len(nodes) == 7


def test_bad_addresses_are_refused(api: Api) -> None:
    network(api)
    enrolled(api, "a")
    enrolled(api, "b")
    api.ok(api.post("/api/v1/networks/prod/ports", {"node": "a", "ipv4": "172.16.1.10"}), 201)
    cases = [
        ({"node": "b", "ipv4": "172.16.1.10"}, 409, "already taken"),
        ({"node": "b", "ipv4": "172.16.2.1"}, 422, "outside the network"),
        ({"node": "b", "ipv4": "172.16.1.0"}, 422, "network or broadcast"),
        ({"node": "b", "ipv4": "172.16.1.255"}, 422, "network or broadcast"),
        ({"node": "b", "ipv4": "banana"}, 422, "not an IPv4 address"),
        ({"node": "b", "extra_ips": ["nope"]}, 422, "not an IP address"),
        ({"node": "ghost"}, 404, "node 'ghost' not found"),
        ({"node": "a"}, 409, "already attached"),
        ({"node": "b", "ipv4": 17}, 422, "ipv4"),
    ]
    for body, status, msg in cases:
        r = api.post("/api/v1/networks/prod/ports", body)
        assert r.status_code == status, (body, r.text)
        assert msg in r.json()["error"], (body, r.text)
    assert len(api.ok(api.get("/api/v1/networks/prod/ports"))) == 1
    assert api.post("/api/v1/networks/ghost/ports", {"node": "b"}).status_code == 404


def test_update_and_detach_port(api: Api) -> None:
    network(api)
    enrolled(api, "a")
    enrolled(api, "b")
    api.ok(api.post("/api/v1/networks/prod/ports", {"node": "a"}), 201)
    api.ok(api.post("/api/v1/networks/prod/ports", {"node": "b"}), 201)
    out = api.ok(
        api.patch(
            "/api/v1/networks/prod/ports/a", {"ipv4": "172.16.1.50", "extra_ips": ["172.16.1.100"]}
        )
    )
    assert out["ipv4"] == "172.16.1.50" and out["extra_ips"] == ["172.16.1.100/32"]
    r = api.patch("/api/v1/networks/prod/ports/b", {"ipv4": "172.16.1.50"})
    assert r.status_code == 409
    node = api.ok(api.get("/api/v1/nodes/a"))
    assert node["networks"][0]["ipv4"] == "172.16.1.50"
    assert api.delete("/api/v1/networks/prod/ports/a").status_code == 204
    assert api.get("/api/v1/networks/prod/ports/a").status_code == 404


def test_concurrent_attachments_never_share_an_address(api: Api) -> None:
    network(api)
    names = [f"c{i}" for i in range(24)]
    for n in names:
        enrolled(api, n)

    def attach(name: str) -> int:
        return api.post("/api/v1/networks/prod/ports", {"node": name}).status_code

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(attach, names))
    assert codes == [201] * len(names)
    ips = [p["ipv4"] for p in api.ok(api.get("/api/v1/networks/prod/ports"))]
    assert len(ips) == len(set(ips)) == len(names)

    # and the same static address asked for twice at once: exactly one wins
    network(api, "other", "172.16.9.0/24")

    def static(name: str) -> int:
        return api.post(
            "/api/v1/networks/other/ports", {"node": name, "ipv4": "172.16.9.9"}
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(static, names[:8]))
    assert sorted(codes) == [201] + [409] * 7


def test_delete_network_with_members_needs_force(api: Api) -> None:
    network(api)
    enrolled(api, "a", networks=["prod"])
    r = api.delete("/api/v1/networks/prod")
    assert r.status_code == 409 and "force" in r.json()["error"]
    assert api.ok(api.get("/api/v1/networks/prod"))["members"] == 1
    assert api.delete("/api/v1/networks/prod", params={"force": "true"}).status_code == 204
    assert api.ok(api.get("/api/v1/nodes/a"))["networks"] == []


def test_names_with_a_trailing_newline_are_refused_everywhere(api: Api) -> None:
    """``re.match(...$)`` let "a1\\n" enroll beside "a1"; every name is checked whole."""
    tok = api.ok(api.post("/api/v1/tokens", {"max_uses": None}), 201)
    assert enroll(api, tok["token"], "a1").status_code == 201
    r = enroll(api, tok["token"], "a1\n")
    assert r.status_code == 422 and "hostname" in r.json()["error"], r.text
    for path, body in (
        ("/api/v1/networks", {"name": "net\n", "cidr4": "10.9.0.0/24"}),
        ("/api/v1/api-tokens", {"name": "ci\n"}),
    ):
        r = api.post(path, body)
        assert r.status_code == 422, (path, r.text)
    for body in ({"name": "a2\n"}, {"tags": ["web\n"]}):
        r = api.patch("/api/v1/nodes/a1", body)
        assert r.status_code == 422, (body, r.text)
    assert [n["name"] for n in api.ok(api.get("/api/v1/nodes"))] == ["a1"]

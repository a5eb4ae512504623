"""Security group rules through the API, the netmap that carries them, and
the dry run (on SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

from .conftest import Api
from .helpers import enrolled, netmap_until, network

RULES = "/api/v1/networks/prod/security-rules"


def check(api: Api, source: str, target: str, protocol: str, port: int | None = None) -> Any:
    params: dict[str, Any] = {"source": source, "target": target, "protocol": protocol}
    if port is not None:
        params["port"] = port
    return api.ok(api.get(f"{RULES}/check", params=params))


def test_rules_policy_netmap_and_dry_run(api: Api) -> None:
    network(api, cidr6="fd00:1::/64")
    web = enrolled(api, "web", networks=["prod"])
    db = enrolled(api, "db", networks=["prod"])
    enrolled(api, "ops", networks=["prod"])
    api.ok(api.patch(f"/api/v1/nodes/{web['node_id']}", {"tags": ["web"]}))
    api.ok(api.patch(f"/api/v1/nodes/{db['node_id']}", {"tags": ["db"]}))

    # allow (the default): everything, whatever the rules say
    assert check(api, "ops", "db", "tcp", 5432)["allowed"] is True
    pg = api.ok(
        api.post(
            RULES,
            {"protocol": "tcp", "port_from": 5432, "source": "tag:web", "target": "tag:db"},
        ),
        201,
    )
    assert (pg["source"], pg["target"], pg["port_to"]) == ("tag:web", "tag:db", 5432)
    ping = api.ok(api.post(RULES, {"protocol": "icmp", "source": "any", "target": "all"}), 201)
    ssh = api.ok(
        api.post(RULES, {"protocol": "tcp", "port_from": 22, "source": "10.8.0.0/16"}), 201
    )
    own = api.ok(
        api.post(
            RULES,
            {
                "protocol": "udp",
                "port_from": 5000,
                "port_to": 5010,
                "source": "node:ops",
                "target": "node:db",
                "description": "metrics",
            },
        ),
        201,
    )
    assert own["source"] == "node:ops" and own["target"] == "node:db"
    assert ssh["target"] == "all" and ssh["source"] == "10.8.0.0/16"
    listed = api.ok(api.get(RULES))
    assert [r["id"] for r in listed] == [pg["id"], ping["id"], ssh["id"], own["id"]]

    api.ok(api.patch("/api/v1/networks/prod", {"policy": "deny"}))
    assert api.ok(api.get("/api/v1/networks/prod"))["policy"] == "deny"
    nm = netmap_until(
        api, web, lambda m: m["networks"] and m["networks"][0].get("policy") == "deny"
    )
    section = nm["networks"][0]
    assert [r["id"] for r in section["security_rules"]] == [r["id"] for r in listed]
    compiled = {r["id"]: r for r in section["security_rules"]}
    # nodes are named by id in the netmap, tags stay tags and members carry theirs
    assert compiled[own["id"]]["source"] == {"kind": "node", "value": api_node_id(api, "ops")}
    assert compiled[pg["id"]]["source"] == {"kind": "tag", "value": "web"}
    tags = {p["name"]: p["tags"] for p in section["peers"]}
    assert tags == {"web": ["web"], "db": ["db"], "ops": []}

    answer = check(api, "web", "db", "tcp", 5432)
    assert answer["allowed"] and answer["rule_id"] == pg["id"]
    assert answer["source"] == "172.16.1.1" and answer["target"] == "db"
    assert not check(api, "ops", "db", "tcp", 5432)["allowed"]
    assert not check(api, "web", "db", "tcp", 5433)["allowed"]
    assert not check(api, "db", "web", "tcp", 5432)["allowed"]  # the other way
    assert check(api, "ops", "web", "icmp")["rule_id"] == ping["id"]
    assert check(api, "10.8.3.4", "web", "tcp", 22)["rule_id"] == ssh["id"]
    assert not check(api, "10.9.3.4", "web", "tcp", 22)["allowed"]
    assert check(api, "ops", "db", "udp", 5005)["rule_id"] == own["id"]
    assert not check(api, "ops", "web", "udp", 5005)["allowed"]
    # a member by one of its addresses, and IPv6
    assert check(api, "172.16.1.1", "172.16.1.2", "tcp", 5432)["allowed"]
    assert check(api, "fd00:1::1", "db", "tcp", 5432)["source"] == "fd00:1::1"
    assert check(api, "web", "web", "tcp", 9)["allowed"]  # itself

    # a new tag on a member reaches the netmap as its entry
    api.ok(api.patch(f"/api/v1/nodes/{db['node_id']}", {"tags": ["db", "web"]}))
    assert check(api, "db", "db", "tcp", 5432)["allowed"]
    netmap_until(
        api,
        web,
        lambda m: any(p["tags"] == ["db", "web"] for p in m["networks"][0]["peers"] or []),
    )

    # deleting a rule, and a rule naming a node goes with the node
    assert api.delete(f"{RULES}/{ping['id']}").status_code == 204
    assert api.delete(f"{RULES}/{ping['id']}").status_code == 404
    assert not check(api, "ops", "web", "icmp")["allowed"]
    assert api.delete(f"/api/v1/nodes/{api_node_id(api, 'ops')}").status_code == 204
    assert [r["id"] for r in api.ok(api.get(RULES))] == [pg["id"], ssh["id"]]

    # audited like every change
    events = api.ok(api.get("/api/v1/audit", params={"action": "security_rule."}))["events"]
    assert {e["action"] for e in events} >= {"security_rule.create", "security_rule.delete"}


def api_node_id(api: Api, name: str) -> str:
    return str(api.ok(api.get(f"/api/v1/nodes/{name}"))["id"])


def test_bad_rules_and_questions_are_clear_4xx(api: Api) -> None:
    network(api)
    enrolled(api, "web", networks=["prod"])
    enrolled(api, "outsider")
    for body, status, msg in [
        ({"protocol": "tcp"}, 422, "need port_from"),
        ({"protocol": "udp", "port_from": 10, "port_to": 5}, 422, "port_to"),
        ({"protocol": "icmp", "port_from": 1}, 422, "take no ports"),
        ({"protocol": "gre"}, 422, "protocol"),
        ({"protocol": "any", "source": "nope"}, 422, "is not a source"),
        ({"protocol": "any", "source": "tag:"}, 422, "is not a source"),
        ({"protocol": "any", "source": "tag:bad tag"}, 422, "tag"),
        ({"protocol": "any", "target": "10.0.0.0/8"}, 422, "is not a target"),
        ({"protocol": "any", "target": "node:outsider"}, 422, "not a member"),
        ({"protocol": "any", "source": "node:ghost"}, 404, "not found"),
        ({"protocol": "any", "source": "x" * 200}, 422, "source"),
        ({"protocol": "any", "extra": 1}, 422, "extra"),
    ]:
        r = api.post(RULES, body)
        assert r.status_code == status and msg in r.json()["error"], (body, r.text)
    for params, status, msg in [
        ({"source": "web", "target": "web", "protocol": "tcp"}, 422, "needs a port"),
        ({"source": "web", "target": "web", "protocol": "icmp", "port": 3}, 422, "takes no port"),
        ({"source": "nobody", "target": "web", "protocol": "any"}, 422, "neither a member"),
        ({"source": "web", "target": "outsider", "protocol": "any"}, 422, "nor behind"),
        ({"source": "web", "target": "192.0.2.1", "protocol": "any"}, 422, "nor behind"),
        ({"source": "web", "target": "web", "protocol": "tcp", "port": 0}, 422, "port"),
        ({"source": "web", "target": "web", "protocol": "sctp"}, 422, "protocol"),
        ({"target": "web", "protocol": "any"}, 422, "source"),
    ]:
        r = api.get(f"{RULES}/check", params=params)
        assert r.status_code == status and msg in r.json()["error"], (params, r.text)
    r = api.patch("/api/v1/networks/prod", {"policy": "block"})
    assert r.status_code == 422 and "policy" in r.json()["error"]
    assert api.get("/api/v1/networks/nope/security-rules").status_code == 404


def test_the_dry_run_asks_the_gateway_for_an_address_behind_it(api: Api) -> None:
    """A LAN address behind a gateway member: the gateway's rules decide (its chain
    sees the connection pass), and the route the members' kernels would pick says
    which gateway: online first, then the longest prefix, then the lowest metric."""
    network(api)
    web = enrolled(api, "web", networks=["prod"])
    gw1 = enrolled(api, "gw1", networks=["prod"])
    enrolled(api, "gw2", networks=["prod"])
    for node, tags in ((web, ["web"]), (gw1, ["office"])):
        api.ok(api.patch(f"/api/v1/nodes/{node['node_id']}", {"tags": tags}))
    api.ok(api.patch("/api/v1/networks/prod", {"policy": "deny"}))
    rule = api.ok(
        api.post(
            RULES, {"protocol": "tcp", "port_from": 22, "source": "tag:web", "target": "tag:office"}
        ),
        201,
    )
    routes = "/api/v1/networks/prod/routes"
    api.ok(api.post(routes, {"prefix": "192.168.0.0/16", "via": "gw1", "metric": 100}), 201)
    api.ok(api.post(routes, {"prefix": "192.168.10.0/24", "via": "gw2", "metric": 200}), 201)
    api.ok(api.post(routes, {"prefix": "192.168.10.0/24", "via": "gw1", "metric": 100}), 201)

    def beat(node: dict[str, Any]) -> None:
        api.ok(api.client.post("/api/v1/agent/heartbeat", json={}, headers=node["auth"]))

    ctl = api.client.app.state.controller  # type: ignore[attr-defined]
    ctl.memory.liveness[gw1["node_id"]].last_seen = time.time() - 3600  # gw1 went quiet
    answer = check(api, "web", "192.168.10.5", "tcp", 22)
    assert (answer["target"], answer["via"], answer["allowed"]) == ("gw2", "192.168.10.0/24", False)
    beat(gw1)  # back: the /24's lower metric wins
    answer = check(api, "web", "192.168.10.5", "tcp", 22)
    assert (answer["target"], answer["via"], answer["rule_id"]) == (
        "gw1",
        "192.168.10.0/24",
        rule["id"],
    )
    answer = check(api, "web", "192.168.77.5", "tcp", 22)
    assert (answer["target"], answer["via"], answer["allowed"]) == ("gw1", "192.168.0.0/16", True)
    assert not check(api, "web", "192.168.77.5", "tcp", 23)["allowed"]
    # a member's own address is the member, not a route
    assert check(api, "web", "gw2", "icmp")["via"] is None

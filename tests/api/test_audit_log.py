"""The audit log: every administrator's change, with who, when, from where,
before and after; enrolments; never a secret; read-only and paged."""

from __future__ import annotations

import json
from typing import Any

from .conftest import Api
from .helpers import enroll, join_token, network


def events(api: Api, **params: Any) -> list[dict[str, Any]]:
    return list(api.ok(api.get("/api/v1/audit", params=params))["events"])


def test_changes_are_recorded_with_who_what_and_before_after(api: Api) -> None:
    net = network(api, name="prod")
    api.ok(api.patch("/api/v1/networks/prod", {"mtu": 1300}))
    api.ok(api.delete("/api/v1/networks/prod?force=true"), 204)
    created, updated, deleted = reversed(events(api, target=net["id"]))
    assert created["action"] == "network.create" and created["before"] is None
    assert created["after"]["cidr4"] == "172.16.1.0/24" and created["target"] == "prod"
    assert created["actor_kind"] == "token" and created["actor"] == "test-admin"
    assert created["request"] == "POST /api/v1/networks" and created["source"]
    assert updated["action"] == "network.update"
    assert updated["before"]["mtu"] == 1420 and updated["after"]["mtu"] == 1300
    assert "cidr4" not in updated["after"]  # only what changed
    assert deleted["action"] == "network.delete" and deleted["after"] is None
    assert deleted["before"]["mtu"] == 1300


def test_enrolment_and_approval_are_recorded_and_secrets_never_are(api: Api) -> None:
    network(api)
    tok = join_token(api, networks=["prod"], needs_approval=True, description="web fleet")
    node = api.ok(enroll(api, tok["token"], "web-1"), 201)
    api.ok(api.post(f"/api/v1/nodes/{node['node_id']}/approve"))
    minted = api.ok(api.post("/api/v1/api-tokens", {"name": "ci", "scope": "read"}), 201)
    log = events(api)
    (enrolled,) = [e for e in log if e["action"] == "node.enroll"]
    assert enrolled["actor_kind"] == "join-token" and enrolled["actor"] == "web fleet"
    assert enrolled["after"]["name"] == "web-1" and enrolled["target_id"] == node["node_id"]
    approved = [e for e in log if e["action"] == "node.update" and e["target"] == "web-1"]
    assert any(e["before"].get("status") == "pending" for e in approved)
    assert any(e["after"].get("status") == "approved" for e in approved)
    text = json.dumps(log)
    for secret in (tok["token"], node["credential"], minted["secret"]):
        assert secret not in text
    assert "hash" not in text  # no hash of one either


def test_a_nodes_first_contact_is_recorded_once(api: Api) -> None:
    network(api)
    tok = join_token(api, networks=["prod"])
    node = api.ok(enroll(api, tok["token"], "db-1"), 201)
    auth = {"Authorization": f"Bearer {node['credential']}"}
    liveliness = api.client.app.state.controller.liveliness  # type: ignore[attr-defined]
    for _ in range(3):  # (heartbeats are written in batches: write each one's now)
        api.ok(api.client.post("/api/v1/agent/heartbeat", json={"uptime_s": 5}, headers=auth))
        api.client.portal.call(liveliness.flush)  # type: ignore[union-attr]
    liveliness._contacted.clear()  # as after a restart: the database still knows
    api.ok(api.client.post("/api/v1/agent/heartbeat", json={"uptime_s": 6}, headers=auth))
    api.client.portal.call(liveliness.flush)  # type: ignore[union-attr]
    firsts = events(api, action="node.first_contact")
    assert len(firsts) == 1 and firsts[0]["target"] == "db-1"
    assert firsts[0]["actor_kind"] == "node" and firsts[0]["source"]


def test_paging_filtering_and_read_only(api: Api) -> None:
    for i in range(7):
        network(api, name=f"n{i}", cidr4=f"10.{i}.0.0/24")
    first = api.ok(api.get("/api/v1/audit", params={"limit": 3, "action": "network."}))
    assert len(first["events"]) == 3 and first["next_before"] is not None
    second = api.ok(
        api.get(
            "/api/v1/audit",
            params={"limit": 3, "action": "network.", "before": first["next_before"]},
        )
    )
    ids = [e["id"] for e in first["events"] + second["events"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6
    assert [e["target"] for e in events(api, target="n3")] == ["n3"]
    assert events(api, actor="nobody") == []
    assert events(api, action="network.delete") == []
    # a read-only token reads it; nobody writes or deletes it through the API
    assert api.get("/api/v1/audit", headers=api.read).status_code == 200
    assert api.post("/api/v1/audit", {}).status_code == 405
    assert api.delete("/api/v1/audit").status_code == 405
    assert len(events(api, since="2000-01-01T00:00:00Z", action="network.")) == 7
    assert events(api, until="2000-01-01") == []
    bads = [{"limit": 0}, {"limit": 10_000}, {"before": -1}, {"since": "yesterday"}]
    bads += [{"until": "5"}, {"since": "2026-13-45"}]
    for bad in bads:
        r = api.get("/api/v1/audit", params=bad)
        assert r.status_code == 422, (bad, r.text)
    assert api.client.get("/api/v1/audit").status_code == 401

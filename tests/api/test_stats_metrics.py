"""Statistics ingest and history, Prometheus metrics, health and OpenAPI."""

from __future__ import annotations

import time
from typing import Any

from skylan.model.agentapi import MAX_REPORTED, REPORTS_PER_MINUTE

from .conftest import Api
from .helpers import enrolled, network


def test_stats_ingest_and_history(api: Api) -> None:
    net_id = network(api)["id"]
    a = enrolled(api, "a", networks=["prod"])
    b = enrolled(api, "b", networks=["prod"])
    report = {
        "total": {
            "rx_bytes": 1000,
            "tx_bytes": 2000,
            "rx_packets": 10,
            "tx_packets": 20,
            "drops": 1,
        },
        "peers": [{"peer_id": b["node_id"], "rx_bytes": 1000, "tx_bytes": 2000, "rtt_ms": 0.4}],
        "drops_by_reason": {"replay": 1},
        "ports": [{"network_id": net_id, "rx_bytes": 900, "tx_bytes": 1900}],
    }
    for _ in range(3):
        r = api.client.post("/api/v1/agent/stats", json=report, headers=a["auth"])
        assert r.status_code == 204, r.text
    out = api.ok(api.get("/api/v1/nodes/a/stats", params={"minutes": 5}))
    assert out["buckets"][-1]["rx_bytes"] == 3000 and out["buckets"][-1]["drops"] == 3
    assert out["peers"][b["node_id"]]["tx_bytes"] == 6000
    assert out["peers"][b["node_id"]]["rtt_ms"] == 0.4
    assert set(out["peers"]) == {b["node_id"]}  # per-network rows are not peers
    b_report = {"total": {"rx_bytes": 5}, "ports": [{"network_id": net_id, "rx_bytes": 5}]}
    api.client.post("/api/v1/agent/stats", json=b_report, headers=b["auth"])
    net = api.ok(api.get("/api/v1/networks/prod/stats"))
    assert net["buckets"][-1]["rx_bytes"] == 3 * 900 + 5  # each member's count in this network
    # samples outside the 24 h window are ignored, not stored
    old = {"at": time.time() - 3 * 86400, "total": {"rx_bytes": 99}}
    assert api.client.post("/api/v1/agent/stats", json=old, headers=a["auth"]).status_code == 204
    assert api.ok(api.get("/api/v1/nodes/a/stats"))["buckets"][-1]["rx_bytes"] == 3000


def test_stats_validation(api: Api) -> None:
    a = enrolled(api, "a")
    for body in [{"total": {"rx_bytes": -1}}, {"total": {"rx_bytes": "lots"}}, {"bogus": 1}]:
        r = api.client.post("/api/v1/agent/stats", json=body, headers=a["auth"])
        assert r.status_code == 422 and r.json()["error"]
    assert api.get("/api/v1/nodes/a/stats", params={"minutes": 0}).status_code == 422
    assert api.get("/api/v1/nodes/a/stats", params={"minutes": 99999}).status_code == 422
    assert api.get("/api/v1/nodes/ghost/stats").status_code == 404


def test_prometheus_metrics(api: Api) -> None:
    network(api)
    a = enrolled(api, "a", networks=["prod"])
    api.client.post("/api/v1/agent/stats", json={"total": {"rx_bytes": 42}}, headers=a["auth"])
    # node names and traffic are not for anyone who can reach the port
    assert api.client.get("/metrics").status_code == 401
    assert api.client.get("/metrics", headers=a["auth"]).status_code == 401  # nor for agents
    text = api.get("/metrics").text  # a read-only token will do
    assert "skylan_networks 1.0" in text
    assert 'skylan_nodes{status="approved"} 1.0' in text
    assert "skylan_nodes_online 1.0" in text
    assert 'skylan_node_traffic_bytes_total{direction="rx",node="a"} 42.0' in text
    assert "skylan_netmap_longpolls" in text


def test_openapi_covers_every_router(api: Api) -> None:
    paths = api.client.get("/api/v1/openapi.json").json()["paths"]
    for path in [
        "/api/v1/networks",
        "/api/v1/tokens",
        "/api/v1/nodes",
        "/api/v1/networks/{network}/ports",
        "/api/v1/networks/{network}/routes",
        "/api/v1/networks/{network}/cloak-rules",
        "/api/v1/agent/enroll",
        "/api/v1/agent/netmap",
        "/api/v1/agent/heartbeat",
        "/api/v1/agent/stats",
        "/api/v1/nodes/{ident}/stats",
        "/api/v1/api-tokens",
    ]:
        assert path in paths, path


MAX_I64 = 2**63 - 1


def test_node_supplied_numbers_are_bounded(api: Api) -> None:
    """Huge, infinite and NaN numbers from a node are a 422 naming the field,
    never a 500 (SQLite and PostgreSQL both overflowed on them)."""
    a = enrolled(api, "a")

    def post(path: str, raw: str) -> Any:
        return api.client.post(
            f"/api/v1/agent/{path}",
            content=raw,
            headers={**a["auth"], "content-type": "application/json"},
        )

    for raw in (
        '{"uptime_s": 1e12}',
        '{"uptime_s": 1e308}',
        '{"uptime_s": Infinity}',
        '{"uptime_s": NaN}',
        '{"peers": [{"node_id": "x", "rtt_ms": Infinity}]}',
        '{"peers": [{"node_id": "x", "handshake_age_s": 1e300}]}',
    ):
        r = post("heartbeat", raw)
        assert r.status_code == 422 and r.json()["error"], (raw, r.text)
    for raw in (
        f'{{"total": {{"rx_bytes": {MAX_I64 + 1}}}}}',
        f'{{"peers": [{{"peer_id": "p", "tx_bytes": {10**30}}}]}}',
        '{"at": NaN}',
        '{"at": Infinity}',
        '{"at": 1e300}',
        '{"peers": [{"peer_id": "p", "rtt_ms": NaN}]}',
        f'{{"drops_by_reason": {{"x": {10**30}}}}}',
        '{"drops_by_reason": {"' + "x" * 200 + '": 1}}',
    ):
        r = post("stats", raw)
        assert r.status_code == 422 and r.json()["error"], (raw, r.text)
    # per report at most MAX_REPORTED, per minute at most REPORTS_PER_MINUTE
    # reports: no minute's total can pass 2**63 - 1
    assert REPORTS_PER_MINUTE * MAX_REPORTED < MAX_I64
    stats = api.client.app.state.controller.stats  # type: ignore[attr-defined]
    frozen = time.time()
    stats.clock = lambda: frozen  # all in one minute, however long the test takes
    r = post("stats", f'{{"total": {{"rx_bytes": {MAX_REPORTED + 1}}}}}')
    assert r.status_code == 422 and "rx_bytes" in r.json()["error"], r.text
    codes = [
        post("stats", f'{{"total": {{"rx_bytes": {MAX_REPORTED}}}}}').status_code
        for _ in range(REPORTS_PER_MINUTE + 5)
    ]
    assert 429 in codes and set(codes) <= {204, 429}, codes
    assert codes.count(204) <= REPORTS_PER_MINUTE
    buckets = api.ok(api.get("/api/v1/nodes/a/stats"))["buckets"]
    assert sum(b["rx_bytes"] for b in buckets) == codes.count(204) * MAX_REPORTED
    assert post("heartbeat", '{"uptime_s": 86400.5}').status_code == 200


def test_sync_from_an_agent_whose_reports_another_process_holds_takes_none(api: Api) -> None:
    """Its earlier reports may be lost with that process: taking a later one
    now would make the resent earlier ones look like repeats (seq high-water)."""
    network(api)
    a = enrolled(api, "a", networks=["prod"])

    def sync(seq: int, held_by: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"stats": [{"seq": seq, "total": {"tx_bytes": seq}}]}
        if held_by is not None:
            body["held_by"] = held_by
        r = api.client.post("/api/v1/agent/sync", params={"wait": 0}, json=body, headers=a["auth"])
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer

    def stored() -> int:
        buckets = api.ok(api.get("/api/v1/nodes/a/stats", params={"minutes": 5}))["buckets"]
        return sum(int(b["tx_bytes"]) for b in buckets)

    epoch = sync(7, "a-replica-that-died")["epoch"]
    assert epoch and stored() == 0
    sync(5, None)  # everything again, oldest first
    sync(7, epoch)
    sync(6, epoch)  # below the high-water mark: a repeat
    assert stored() == 12

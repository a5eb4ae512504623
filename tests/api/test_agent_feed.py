"""The netmap feed as agents see it: content, long-poll, coalescing, scoping."""

from __future__ import annotations

import threading
import time
from typing import Any

from skylan.model.netmap import NetMap
from skylan.model.publickey import encode_public
from skylan.tunnel.keys import StaticKeypair

from .conftest import Api
from .helpers import enroll, enrolled, join_token, netmap_until, network


def poll(api: Api, node: dict[str, Any], since: int, timeout: float) -> Any:
    return api.client.get(
        "/api/v1/agent/netmap", headers=node["auth"], params={"since": since, "timeout": timeout}
    )


def test_netmap_content(api: Api) -> None:
    network(api, cidr6="fd00:1::/64", storm_pps=500)
    a = enrolled(api, "a", networks=["prod"])
    b = enrolled(api, "b", networks=["prod"])
    raw = netmap_until(api, a, lambda m: m["networks"] and len(m["networks"][0]["peers"]) == 2)
    nm = NetMap.model_validate(raw)
    assert nm.node.node_id == a["node_id"] and nm.node.name == "a"
    (net,) = nm.networks
    assert (net.name, net.cidr6, net.storm_pps, net.encrypted) == ("prod", "fd00:1::/64", 500, True)
    assert {p.name for p in net.peers} == {"a", "b"}
    own = nm.own_port(net)
    assert own is not None and own.ipv4 == "172.16.1.1" and own.prefixlen == 24
    peer_b = next(p for p in net.peers if p.node_id == b["node_id"])
    assert peer_b.endpoints == ["198.18.1.1:51820"] and len(peer_b.public_key) == 44


def test_long_poll_answers_now_blocks_then_wakes_and_times_out(api: Api) -> None:
    network(api)
    a = enrolled(api, "a", networks=["prod"])
    first = netmap_until(api, a, lambda m: m["networks"])
    v = first["version"]
    t0 = time.monotonic()
    r = poll(api, a, v, 0.5)
    assert r.status_code == 304 and 0.4 < time.monotonic() - t0 < 3
    result: dict[str, Any] = {}

    def waiter() -> None:
        t = time.monotonic()
        resp = poll(api, a, v, 20)
        result["elapsed"] = time.monotonic() - t
        result["resp"] = resp

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.5)
    changed = time.monotonic()
    api.ok(api.patch("/api/v1/networks/prod", {"mtu": 1300}))
    thread.join(20)
    assert result["resp"].status_code == 200
    assert result["resp"].json()["networks"][0]["mtu"] == 1300
    assert result["resp"].json()["version"] > v
    assert time.monotonic() - changed < 1.5  # the change reached the long-poll quickly
    # a poll with an old version answers at once
    t0 = time.monotonic()
    assert poll(api, a, v, 20).status_code == 200 and time.monotonic() - t0 < 1


def test_bursts_are_coalesced(api: Api) -> None:
    network(api)
    a = enrolled(api, "a", networks=["prod"])
    v = netmap_until(api, a, lambda m: m["networks"])["version"]
    versions = []
    stop = threading.Event()

    def follow() -> None:
        since = v
        while not stop.is_set():
            r = poll(api, a, since, 2)
            if r.status_code == 200:
                since = r.json()["version"]
                versions.append(since)

    thread = threading.Thread(target=follow)
    thread.start()
    for i in range(20):  # edits every member's netmap shows
        api.ok(api.patch("/api/v1/networks/prod", {"storm_pps": 100 + i}))
    netmap_until(api, a, lambda m: m["networks"][0]["storm_pps"] == 119 and m["version"] >= v + 20)
    stop.set()
    thread.join(10)
    assert 1 <= len(versions) < 20  # 20 changes, far fewer wake-ups


def test_changes_no_netmap_shows_wake_nobody(api: Api) -> None:
    """A network's description is not in any netmap: editing it is recorded
    (replicas learn of it) but no agent is woken for a netmap just like its last."""
    network(api)
    a = enrolled(api, "a", networks=["prod"])
    v = netmap_until(api, a, lambda m: m["networks"])["version"]
    api.ok(api.patch("/api/v1/networks/prod", {"description": "only for people"}))
    assert api.ok(api.get("/api/v1/networks/prod"))["description"] == "only for people"
    assert poll(api, a, v, 0.8).status_code == 304


def test_unaffected_nodes_are_not_woken(api: Api) -> None:
    network(api, "x", "172.16.1.0/24")
    network(api, "y", "172.16.2.0/24")
    a = enrolled(api, "a", networks=["x"])
    b = enrolled(api, "b", networks=["y"])
    netmap_until(api, a, lambda m: m["networks"])
    netmap_until(api, b, lambda m: m["networks"])
    va = poll(api, a, 0, 1).json()["version"]  # a's settled version
    api.ok(api.patch("/api/v1/networks/y", {"mtu": 1300}))
    netmap_until(api, b, lambda m: m["networks"][0]["mtu"] == 1300)
    late = poll(api, a, va, 0.5)
    assert late.status_code == 304, (va, late.json())


def test_endpoint_changes_reach_peers(api: Api) -> None:
    network(api)
    a = enrolled(api, "a", networks=["prod"])
    b = enrolled(api, "b", networks=["prod"])
    api.ok(
        api.client.post(
            "/api/v1/agent/heartbeat", json={"endpoints": ["198.18.2.7:4000"]}, headers=a["auth"]
        )
    )
    nm = netmap_until(
        api,
        b,
        lambda m: any(
            p["node_id"] == a["node_id"] and p["endpoints"] == ["198.18.2.7:4000"]
            for n in m["networks"]
            for p in n["peers"]
        ),
    )
    assert nm["node"]["name"] == "b"


ZERO_KEY = "A" * 43 + "="
ORDER_8_KEY = "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA="  # a point of order 8


def test_low_order_keys_do_not_enroll(api: Api) -> None:
    """A key every DH with gives zero: such a member would share no secret with
    anyone and used to make the other members' engines raise."""
    tok = join_token(api, max_uses=3)
    for key in (ZERO_KEY, ORDER_8_KEY):
        r = enroll(api, tok["token"], "evil", public_key=key)
        assert r.status_code == 422 and "low-order" in r.json()["error"], r.text
    assert api.ok(api.get(f"/api/v1/tokens/{tok['id']}"))["uses"] == 0


def test_lane_keys_reach_peers_and_bad_ones_are_refused(api: Api) -> None:
    network(api)
    a = enrolled(api, "a", networks=["prod"])
    b = enrolled(api, "b", networks=["prod"])
    lanes = [encode_public(StaticKeypair.generate().public) for _ in range(3)]

    def beat(body: dict[str, Any]) -> Any:
        return api.client.post("/api/v1/agent/heartbeat", json=body, headers=a["auth"])

    api.ok(beat({"lane_keys": lanes}))
    netmap_until(
        api,
        b,
        lambda m: any(p["lane_keys"] == lanes for n in m["networks"] for p in n["peers"]),
    )
    for bad, message in (
        (["not base64!"], "lane_keys"),
        ([ZERO_KEY], "low-order"),
        ([lanes[0], ORDER_8_KEY], "low-order"),
        ([lanes[0], lanes[0]], "distinct"),
        ([lanes[0]] * 64, "lane_keys"),
    ):
        r = beat({"lane_keys": bad})
        assert r.status_code == 422 and message in r.text, r.text
    # no node may claim another's key (its own, a peer's, or a peer's lane key)
    b_key = next(
        p["public_key"]
        for n in netmap_until(api, a, lambda m: m["networks"])["networks"]
        for p in n["peers"]
        if p["node_id"] == b["node_id"]
    )
    r = api.client.post(
        "/api/v1/agent/heartbeat", json={"lane_keys": [lanes[0]]}, headers=b["auth"]
    )
    assert r.status_code == 409 and "already a node's key" in r.json()["error"], r.text
    r = beat({"lane_keys": [b_key]})
    assert r.status_code == 409, r.text
    thief = enroll(api, join_token(api)["token"], "c", public_key=lanes[1])
    assert thief.status_code == 409 and "lane key" in thief.json()["error"], thief.text
    api.ok(beat({"lane_keys": []}))  # back to one lane
    netmap_until(
        api,
        b,
        lambda m: all(p["lane_keys"] == [] for n in m["networks"] for p in n["peers"]),
    )


def test_agent_endpoints_need_a_node_credential(api: Api) -> None:
    r = api.client.get("/api/v1/agent/netmap", params={"timeout": 0})
    assert r.status_code == 401
    r = api.client.get("/api/v1/agent/netmap", headers=api.admin, params={"timeout": 0})
    assert r.status_code == 401 and "node credential" in r.json()["error"]
    a = enrolled(api, "a")
    for path in ("/api/v1/networks", "/api/v1/nodes", "/metrics"):  # not a key to the admin API
        assert api.client.get(path, headers=a["auth"]).status_code == 401, path
    r = poll(api, a, -1, 0)
    assert r.status_code == 422
    r = poll(api, a, 0, 1000)
    assert r.status_code == 422
    r = api.client.post("/api/v1/agent/heartbeat", json={"uptime_s": "long"}, headers=a["auth"])
    assert r.status_code == 422


def test_peer_lists_travel_as_changes(api: Api) -> None:
    """An agent that names the version it holds gets only what changed in each
    member list: the members added or changed, and the ones that left."""
    import pytest

    from skylan.model.netmap import NetMap

    network(api)
    a = enrolled(api, "a", networks=["prod"])
    held = NetMap.model_validate(
        netmap_until(api, a, lambda m: m["networks"] and m["networks"][0]["peers"])
    )
    api.ok(api.patch("/api/v1/networks/prod", {"mtu": 1300}))
    delta = poll(api, a, held.version, 10).json()
    section = delta["networks"][0]
    assert section["mtu"] == 1300 and section["peers"] is None
    assert section["peer_updates"] == [] and section["peer_removals"] == []
    held = NetMap.model_validate(delta).merged_with(held)
    assert [p.name for p in held.networks[0].peers or []] == ["a"]
    # a fresh agent (since=0) always gets everything
    assert poll(api, a, 0, 1).json()["networks"][0]["peers"]
    # a member joining: one entry, not the list again
    b = enrolled(api, "b", networks=["prod"])
    delta = poll(api, a, held.version, 10).json()
    section = delta["networks"][0]
    assert section["peers"] is None
    assert [p["name"] for p in section["peer_updates"]] == ["b"]
    held = NetMap.model_validate(delta).merged_with(held)
    assert [p.name for p in held.networks[0].peers or []] == ["a", "b"]
    # a member leaving: its id
    assert api.delete(f"/api/v1/nodes/{b['node_id']}").status_code == 204
    delta = poll(api, a, held.version, 10).json()
    assert delta["networks"][0]["peer_removals"] == [b["node_id"]]
    held = NetMap.model_validate(delta).merged_with(held)
    assert [p.name for p in held.networks[0].peers or []] == ["a"]
    with pytest.raises(ValueError, match="omits the peers"):
        NetMap.model_validate(delta).merged_with(None)


def test_large_answers_reach_the_server_in_pieces() -> None:
    """A connection keeps buffers the size of the largest piece written to it
    (4.3 MB per agent after a 4 MB netmap, measured), so bodies go out in
    pieces of at most CHUNK bytes, the last one ending the body."""
    import asyncio

    from skylan.controller.gate import CHUNK, send_in_chunks

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    body = bytes(range(256)) * 100  # 25,600 bytes
    asyncio.run(send_in_chunks(send, {"type": "http.response.body", "body": body}))
    assert [len(m["body"]) for m in sent] == [CHUNK, CHUNK, CHUNK, len(body) - 3 * CHUNK]
    assert [m["more_body"] for m in sent] == [True, True, True, False]
    assert b"".join(m["body"] for m in sent) == body
    sent.clear()
    asyncio.run(send_in_chunks(send, {"type": "http.response.body", "body": b"small"}))
    assert sent == [{"type": "http.response.body", "body": b"small"}]

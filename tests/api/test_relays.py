"""Relays in the controller: the administrator's list, a relay's sync (its
key into every node's netmap, the nodes' keys out), and credentials kept
apart; against SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from skylan.tunnel.keys import StaticKeypair

from .conftest import Api
from .helpers import enrolled, netmap_until, network


def relay(api: Api, name: str = "r1", address: str = "198.18.0.9:3478") -> Any:
    return api.ok(api.post("/api/v1/relays", {"name": name, "address": address}), 201)


def key_of(api: Api, node: dict[str, Any]) -> str:
    return str(api.ok(api.get(f"/api/v1/nodes/{node['node_id']}"))["public_key"])


def sync(api: Api, credential: str, key: str, held: str = "", **kw: Any) -> Any:
    body = {"public_key": key, "keys_version": held, **kw}
    return api.client.post(
        "/api/v1/relay/sync", json=body, headers={"Authorization": f"Bearer {credential}"}
    )


def test_a_relay_reaches_every_netmap_once_it_has_said_its_key(api: Api) -> None:
    network(api)
    a = enrolled(api, "a", networks=["prod"])
    made = relay(api)
    assert made["credential"].startswith("skyrelay_") and made["public_key"] is None
    assert netmap_until(api, a, lambda m: m["networks"])["relays"] == []
    key = StaticKeypair.generate().public_b64
    answer = api.ok(sync(api, made["credential"], key, nodes=2, forwarded_bytes=1000, tls_port=443))
    assert key_of(api, a) in answer["keys"] and answer["keys_version"]
    nm = netmap_until(api, a, lambda m: m["relays"])
    assert nm["relays"] == [
        {
            "id": made["id"],
            "name": "r1",
            "address": "198.18.0.9:3478",
            "public_key": key,
            "tls_port": 443,
        }
    ]
    # holding the current list: nothing sent again
    again = api.ok(
        sync(
            api,
            made["credential"],
            key,
            answer["keys_version"],
            nodes=2,
            forwarded_bytes=1000,
            tls_port=443,
        )
    )
    assert again["keys"] is None and again["keys_version"] == answer["keys_version"]
    (listed,) = api.ok(api.get("/api/v1/relays"))
    assert listed["online"] and listed["nodes"] == 2 and listed["forwarded_bytes"] == 1000
    metrics = api.client.get("/metrics", headers=api.read).text
    assert 'skylan_relay_forwarded_bytes_total{relay="r1"} 1000.0' in metrics
    assert 'skylan_relay_nodes{relay="r1"} 2.0' in metrics
    # a new node changes the list
    b = enrolled(api, "b", networks=["prod"])
    fresh = api.ok(sync(api, made["credential"], key, answer["keys_version"]))
    assert fresh["keys"] is not None and key_of(api, b) in fresh["keys"]


def test_deleting_a_relay_takes_it_out_of_netmaps_and_ends_its_credential(api: Api) -> None:
    network(api)
    a = enrolled(api, "a", networks=["prod"])
    made = relay(api)
    key = StaticKeypair.generate().public_b64
    api.ok(sync(api, made["credential"], key))
    netmap_until(api, a, lambda m: m["relays"])
    api.ok(api.delete("/api/v1/relays/r1"), 204)
    netmap_until(api, a, lambda m: m["relays"] == [])
    assert sync(api, made["credential"], key).status_code == 401
    assert api.delete("/api/v1/relays/r1").status_code == 404


def test_bad_relay_input_gets_clear_errors(api: Api) -> None:
    relay(api)
    dup = api.post("/api/v1/relays", {"name": "r1", "address": "198.18.0.9:3478"})
    assert dup.status_code == 409 and "exists" in dup.json()["error"]
    for body in (
        {"name": "r2", "address": "nowhere"},
        {"name": "r2", "address": "198.18.0.9:0"},
        {"name": "", "address": "198.18.0.9:3478"},
        {"name": "r2"},
    ):
        r = api.post("/api/v1/relays", body)
        assert r.status_code == 422, (body, r.text)
    read_only = api.post(
        "/api/v1/relays", {"name": "r3", "address": "198.18.0.9:1"}, headers=api.read
    )
    assert read_only.status_code == 403


def test_credentials_do_not_cross(api: Api) -> None:
    network(api)
    a = enrolled(api, "a", networks=["prod"])
    made = relay(api)
    key = StaticKeypair.generate().public_b64
    # a node's credential is no relay's, and the other way round
    assert sync(api, a["credential"], key).status_code == 401
    relay_auth = {"Authorization": f"Bearer {made['credential']}"}
    assert api.get("/api/v1/relays", headers=relay_auth).status_code == 401
    assert api.client.get("/api/v1/agent/netmap", headers=relay_auth).status_code == 401
    assert sync(api, "skyrelay_wrong", key).status_code == 401
    # junk from a relay: 422, and a node's own key refused
    r = api.client.post(
        "/api/v1/relay/sync",
        json={"public_key": "not a key"},
        headers=relay_auth,
    )
    assert r.status_code == 422
    assert sync(api, made["credential"], key_of(api, a)).status_code == 409
    assert sync(api, made["credential"], key, nodes=-1).status_code == 422


def test_a_relay_waiting_for_keys_hears_of_a_new_node_at_once(api: Api) -> None:
    import threading
    import time

    network(api)
    enrolled(api, "a", networks=["prod"])
    made = relay(api)
    key = StaticKeypair.generate().public_b64
    held = api.ok(sync(api, made["credential"], key))["keys_version"]
    result: dict[str, Any] = {}

    def wait() -> None:
        started = time.monotonic()
        r = api.client.post(
            "/api/v1/relay/sync",
            json={"public_key": key, "keys_version": held},
            params={"wait": 10},
            headers={"Authorization": f"Bearer {made['credential']}"},
        )
        result["took"], result["answer"] = time.monotonic() - started, r.json()

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.5)
    b = enrolled(api, "b", networks=["prod"])
    thread.join(15)
    assert result["answer"]["keys"] is not None and key_of(api, b) in result["answer"]["keys"]
    assert result["took"] < 5
    # nothing new: it waits the time asked, then says so
    started = time.monotonic()
    quiet = api.client.post(
        "/api/v1/relay/sync",
        json={"public_key": key, "keys_version": result["answer"]["keys_version"]},
        params={"wait": 1},
        headers={"Authorization": f"Bearer {made['credential']}"},
    )
    assert quiet.json()["keys"] is None and 0.9 < time.monotonic() - started < 5
    bad = api.client.post(
        "/api/v1/relay/sync",
        json={"public_key": key},
        params={"wait": 1000},
        headers={"Authorization": f"Bearer {made['credential']}"},
    )
    assert bad.status_code == 422

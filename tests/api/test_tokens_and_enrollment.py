"""Join tokens and enrollment: single/multi use, expiry, revocation, approval."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import update

from skylan.controller.storage.tables import JoinTokenRow
from skylan.model.jointoken import JoinToken

from .conftest import Api
from .helpers import enroll, enrolled, join_token, network


def test_token_is_shown_once_and_embeds_the_certificate_fingerprint(api: Api) -> None:
    tok = join_token(api, description="laptops")
    parsed = JoinToken.parse(tok["token"])
    assert parsed.fingerprint == api.client.app.state.cert_fingerprint  # type: ignore[attr-defined]
    assert tok["join_command"].endswith(tok["token"])
    listed = api.ok(api.get("/api/v1/tokens"))
    assert listed[0]["state"] == "active"
    assert "token" not in listed[0]
    assert "token" not in api.ok(api.get(f"/api/v1/tokens/{tok['id']}"))


def test_single_use_token(api: Api) -> None:
    tok = join_token(api)
    assert enroll(api, tok["token"], "a").status_code == 201
    r = enroll(api, tok["token"], "b")
    assert r.status_code == 401 and "used up" in r.json()["error"]
    assert api.ok(api.get(f"/api/v1/tokens/{tok['id']}"))["state"] == "used up"


def test_token_uses_are_never_overspent_concurrently(api: Api) -> None:
    tok = join_token(api, max_uses=3)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: enroll(api, tok["token"], f"n{i}").status_code, range(8)))
    assert sorted(codes) == [201] * 3 + [401] * 5


def test_expired_revoked_malformed_and_unknown_tokens(api: Api) -> None:
    tok = join_token(api)
    with api.client.app.state.sessions() as db:  # type: ignore[attr-defined]
        db.execute(update(JoinTokenRow).values(expires_at=JoinTokenRow.created_at))
        db.commit()
    r = enroll(api, tok["token"])
    assert r.status_code == 401 and "expired" in r.json()["error"]
    tok2 = join_token(api, max_uses=None, expires_in_s=None)
    assert api.delete(f"/api/v1/tokens/{tok2['id']}").status_code == 204
    r = enroll(api, tok2["token"])
    assert r.status_code == 401 and "revoked" in r.json()["error"]
    r = enroll(api, "not-a-token")
    assert r.status_code == 401 and "not a skylan join token" in r.json()["error"]
    own = api.client.app.state.cert_fingerprint  # type: ignore[attr-defined]
    fake = str(JoinToken.new(own))
    r = enroll(api, fake)
    assert r.status_code == 401 and "unknown join token" in r.json()["error"]
    assert api.delete("/api/v1/tokens/nope").status_code == 404


def test_token_validation(api: Api) -> None:
    for body, msg in [
        ({"max_uses": 0}, "max_uses"),
        ({"expires_in_s": 5}, "expires_in_s"),
        ({"max_uses": "many"}, "max_uses"),
        ({"networks": ["ghost"]}, "network 'ghost' not found"),
        ({"bogus": 1}, "bogus"),
    ]:
        r = api.post("/api/v1/tokens", body)
        assert r.status_code in (404, 422), r.text
        assert msg in r.json()["error"]
    assert api.ok(api.get("/api/v1/tokens")) == []


def test_enrollment_validation(api: Api) -> None:
    tok = join_token(api, max_uses=None)
    for override, msg in [
        ({"public_key": "short"}, "public key"),
        ({"hostname": "bad host"}, "hostname"),
        ({"endpoints": ["nowhere"]}, "endpoint"),
        ({"endpoints": ["198.18.1.1:99999"]}, "endpoint"),
        ({"interfaces": [{"name": "eth0", "addresses": ["x"]}]}, "not an address"),
    ]:
        r = enroll(api, tok["token"], **override)
        assert r.status_code == 422, r.text
        assert msg in r.json()["error"]
    assert api.ok(api.get(f"/api/v1/tokens/{tok['id']}"))["uses"] == 0


def test_enroll_auto_joins_networks_and_dedups_names(api: Api) -> None:
    network(api)
    tok = join_token(api, max_uses=2, networks=["prod"])
    a = api.ok(enroll(api, tok["token"], "web"), 201)
    b = api.ok(enroll(api, tok["token"], "web"), 201)
    assert (a["name"], b["name"]) == ("web", "web-2")
    ports = api.ok(api.get("/api/v1/networks/prod/ports"))
    assert [p["ipv4"] for p in ports] == ["172.16.1.1", "172.16.1.2"]
    assert all(p["mac"].startswith("02:") for p in ports)


def test_same_public_key_cannot_enroll_twice(api: Api) -> None:
    tok = join_token(api, max_uses=None)
    from skylan.tunnel.keys import StaticKeypair

    key = StaticKeypair.generate().public_b64
    assert enroll(api, tok["token"], "a", public_key=key).status_code == 201
    r = enroll(api, tok["token"], "b", public_key=key)
    assert r.status_code == 409 and "already enrolled" in r.json()["error"]


def test_approval_queue(api: Api) -> None:
    network(api)
    node = enrolled(api, "laptop", needs_approval=True, networks=["prod"])
    assert node["status"] == "pending"
    pending = api.ok(api.get("/api/v1/nodes", params={"status": "pending"}))
    assert [n["name"] for n in pending] == ["laptop"]
    nm = api.client.get("/api/v1/agent/netmap", headers=node["auth"], params={"timeout": 5})
    assert nm.json()["networks"] == []  # pending: in no network yet
    v = nm.json()["version"]
    api.ok(api.post(f"/api/v1/nodes/{node['node_id']}/approve"))
    nm = api.client.get(
        "/api/v1/agent/netmap", headers=node["auth"], params={"since": v, "timeout": 5}
    )
    assert nm.status_code == 200 and [n["name"] for n in nm.json()["networks"]] == ["prod"]
    api.ok(api.post(f"/api/v1/nodes/{node['node_id']}/deny"))
    time.sleep(0.3)
    nm = api.client.get("/api/v1/agent/netmap", headers=node["auth"], params={"timeout": 5})
    assert nm.json()["node"]["status"] == "denied" and nm.json()["networks"] == []
    r = api.get("/api/v1/nodes", params={"status": "weird"})
    assert r.status_code == 422


def test_concurrent_enrollments_with_one_hostname_all_succeed(api: Api) -> None:
    tok = join_token(api, max_uses=None)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: enroll(api, tok["token"], "autoscaled"), range(8)))
    assert [r.status_code for r in results] == [201] * 8, [r.text for r in results]
    names = {r.json()["name"] for r in results}
    assert len(names) == 8 and "autoscaled" in names
    # an unlimited token's uses are counted once per batch of enrolments
    assert api.ok(api.get(f"/api/v1/tokens/{tok['id']}"))["uses"] == 8


def test_a_token_naming_another_certificate_is_refused_and_keeps_its_use(api: Api) -> None:
    """The fingerprint part is what the agent pinned: a token whose fingerprint is
    not this controller's certificate was never checked against us, so it does
    not enroll (and spends nothing), even with a valid secret."""
    tok = join_token(api)
    secret = JoinToken.parse(tok["token"]).secret
    for other in ("0" * 64, "f" * 64):
        r = enroll(api, str(JoinToken(other, secret)))
        assert r.status_code == 401, r.text
        assert "another controller" in r.json()["error"]
    assert api.ok(api.get(f"/api/v1/tokens/{tok['id']}"))["uses"] == 0
    assert enroll(api, tok["token"]).status_code == 201


def test_pending_nodes_take_no_addresses_until_approved(api: Api) -> None:
    """A /30 has two addresses: two nodes waiting for approval hold none of
    them, so an approved node gets the first; approval then attaches the
    waiting ones, and when the pool is full it fails whole (retryable)."""
    network(api, "tiny", "10.77.0.0/30")
    waiting = [enrolled(api, f"w{i}", needs_approval=True, networks=["tiny"]) for i in (1, 2, 3)]
    assert all(w["status"] == "pending" for w in waiting)
    assert api.ok(api.get("/api/v1/networks/tiny/ports")) == []
    direct = enrolled(api, "direct", networks=["tiny"])
    assert [p["ipv4"] for p in api.ok(api.get("/api/v1/networks/tiny/ports"))] == ["10.77.0.1"]
    node = api.ok(api.post(f"/api/v1/nodes/{waiting[0]['node_id']}/approve"))
    assert node["status"] == "approved"
    assert [m["ipv4"] for m in node["networks"]] == ["10.77.0.2"]
    r = api.post(f"/api/v1/nodes/{waiting[1]['node_id']}/approve")
    assert r.status_code == 409 and "no free addresses" in r.json()["error"], r.text
    still = api.ok(api.get(f"/api/v1/nodes/{waiting[1]['node_id']}"))
    assert still["status"] == "pending" and still["networks"] == []  # nothing half-done
    api.delete(f"/api/v1/networks/tiny/ports/{direct['node_id']}")
    node = api.ok(api.post(f"/api/v1/nodes/{waiting[1]['node_id']}/approve"))
    assert [m["ipv4"] for m in node["networks"]] == ["10.77.0.1"]

"""The console's server side without a browser: logins, CSRF, the cookie on the
REST API, and forms that put the API's refusals next to the right field.

Runs against SQLite and PostgreSQL like the rest of the API suite.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from skylan.controller import logins
from skylan.controller.app import create_app

from .conftest import Api, make_settings
from .helpers import enrolled, network


def _secret(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def log_in(client: TestClient, token: str) -> str:
    """Log in like a browser; returns the page's CSRF token."""
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    resp = client.post(
        "/login", data={"token": token, "csrf": csrf.group(1), "next": "/"}, follow_redirects=False
    )
    assert resp.status_code == 303, resp.text
    home = client.get("/")
    assert home.status_code == 200
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
    assert found is not None
    return found.group(1)


@pytest.fixture
def browser(api: Api) -> Iterator[TestClient]:
    """A second client on the same app, over https so Secure cookies flow (not
    entered as a context manager: the app's lifespan already runs for ``api``)."""
    client = api.other_client(base_url="https://testserver")
    yield client
    client.close()


def test_pages_need_a_login_and_bad_tokens_are_refused(api: Api, browser: TestClient) -> None:
    resp = browser.get("/networks/x", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/login?next=/networks/x"
    resp = browser.get("/nodes", headers={"HX-Request": "true"})
    assert resp.headers["HX-Redirect"].startswith("/login")

    page = browser.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    bad = browser.post("/login", data={"token": "skyadm_nope", "csrf": csrf.group(1)})
    assert bad.status_code == 401 and "not valid or has been revoked" in bad.text
    forged = browser.post("/login", data={"token": _secret(api.admin), "csrf": "forged"})
    assert forged.status_code == 401 and "expired" in forged.text
    assert logins.COOKIE not in browser.cookies
    # an open redirect is not possible through ?next=
    log_in(browser, _secret(api.admin))
    page = browser.get("/login?next=//evil.example/")
    assert 'name="next" value="/"' in page.text


def test_the_cookie_works_on_the_api_and_changes_need_csrf(api: Api, browser: TestClient) -> None:
    csrf = log_in(browser, _secret(api.admin))
    assert browser.get("/api/v1/networks").status_code == 200
    body = {"name": "web", "cidr4": "10.9.0.0/24"}
    no_csrf = browser.post("/api/v1/networks", json=body)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["error"]
    wrong = browser.post("/api/v1/networks", json=body, headers={"X-CSRF-Token": "x" * 40})
    assert wrong.status_code == 403
    ok = browser.post("/api/v1/networks", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201


def test_revoking_the_token_ends_the_session(api: Api, browser: TestClient) -> None:
    created = api.ok(api.post("/api/v1/api-tokens", {"name": "ops", "scope": "admin"}), 201)
    log_in(browser, created["secret"])
    assert browser.get("/").status_code == 200
    api.ok(api.delete(f"/api/v1/api-tokens/{created['id']}"), 204)
    assert browser.get("/", follow_redirects=False).status_code == 303
    resp = browser.get("/api/v1/networks")
    assert resp.status_code == 401 and "log in again" in resp.json()["error"]


def test_logout_needs_the_csrf_token(api: Api, browser: TestClient) -> None:
    csrf = log_in(browser, _secret(api.admin))
    cookie = browser.cookies[logins.COOKIE]
    browser.post("/logout", data={"csrf": "wrong"}, follow_redirects=False)
    # a forged logout only drops this browser's cookie; the session itself lives on
    browser.cookies.set(logins.COOKIE, cookie, domain="testserver.local")
    with api.client.app.state.sessions() as db:
        assert logins.lookup(db, cookie) is not None
    browser.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    with api.client.app.state.sessions() as db:
        assert logins.lookup(db, cookie) is None


def test_forms_show_api_errors_next_to_the_field(api: Api, browser: TestClient) -> None:
    csrf = log_in(browser, _secret(api.admin))
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    bad = browser.post("/networks", data={"name": "x", "cidr4": "10.0.0.0/33"}, headers=hx)
    assert bad.status_code == 422
    assert re.search(
        r'id="net-create-cidr4-error"[^>]*hx-swap-oob="true">[^<]*10\.0\.0\.0/33', bad.text
    )

    made = browser.post(
        "/networks", data={"name": "prod", "cidr4": "172.16.1.0/24", "encrypted": "on"}, headers=hx
    )
    assert made.status_code == 204 and made.headers["HX-Trigger"] == "changed"
    net = api.ok(api.get("/api/v1/networks/prod"))
    assert made.headers["HX-Redirect"] == f"/networks/{net['id']}" and net["encrypted"]

    dup = browser.post("/networks", data={"name": "prod", "cidr4": "172.16.2.0/24"}, headers=hx)
    assert dup.status_code == 409 and 'id="net-create-name-error"' in dup.text

    a = enrolled(api, "a")
    b = enrolled(api, "b")
    base = f"/networks/{net['id']}"
    assert (
        browser.post(
            f"{base}/ports", data={"node": a["node_id"], "ipv4": "172.16.1.10"}, headers=hx
        ).status_code
        == 204
    )
    taken = browser.post(
        f"{base}/ports", data={"node": b["node_id"], "ipv4": "172.16.1.10"}, headers=hx
    )
    assert taken.status_code == 409
    assert re.search(r'id="attach-ipv4-error"[^>]*>172\.16\.1\.10 is already taken', taken.text)

    # a DNS name is renamed from its row; a taken name is shown next to the field
    api.ok(
        api.post("/api/v1/networks/prod/dns-records", {"name": "db", "address": "172.16.1.50"}), 201
    )
    vip = api.ok(
        api.post("/api/v1/networks/prod/dns-records", {"name": "vip", "address": "172.16.1.100"}),
        201,
    )
    page = browser.get(base)
    assert f'hx-post="{base}/dns-records/{vip["id"]}/edit"' in page.text
    edit = f"{base}/dns-records/{vip['id']}/edit"
    clash = browser.post(edit, data={"name": "db", "address": "172.16.1.100"}, headers=hx)
    assert clash.status_code == 409
    assert re.search(rf'id="dns-{vip["id"]}-name-error"[^>]*>[^<]*already names', clash.text)
    renamed = browser.post(edit, data={"name": "app", "address": "172.16.1.101"}, headers=hx)
    assert renamed.status_code == 204
    assert [
        (r["name"], r["address"]) for r in api.ok(api.get("/api/v1/networks/prod/dns-records"))
    ] == [
        ("app", "172.16.1.101"),
        ("db", "172.16.1.50"),
    ]

    # a button (no form) reports in the page's flash area; no stack trace anywhere
    gone = browser.post(f"{base}/routes/nope/delete", headers=hx)
    assert gone.status_code == 404 and 'id="flash"' in gone.text and "Traceback" not in gone.text


def test_read_only_logins_can_look_but_not_change(api: Api, browser: TestClient) -> None:
    network(api)
    csrf = log_in(browser, _secret(api.read))
    assert "prod" in browser.get("/").text
    refused = browser.post(
        "/networks",
        data={"name": "x", "cidr4": "10.1.0.0/24"},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )
    assert refused.status_code == 403 and "admin token" in refused.text


def test_every_page_renders_and_parts_refresh(api: Api, browser: TestClient) -> None:
    net = network(api)
    node = enrolled(api, "web-1", networks=["prod"])
    tok = api.ok(api.post("/api/v1/tokens", {"description": "spare"}), 201)
    log_in(browser, _secret(api.admin))
    for path, expect in [
        ("/", "prod"),
        (f"/networks/{net['id']}", "web-1"),
        ("/nodes", "web-1"),
        (f"/nodes/{node['node_id']}", "Tunnels to peers"),
        ("/approvals", "Nothing is waiting"),
        ("/tokens", tok["id"][:8]),
    ]:
        resp = browser.get(path)
        assert resp.status_code == 200 and expect in resp.text, path
    part = browser.get(f"/networks/{net['id']}?part=live_members")
    assert part.text.lstrip().startswith('<div id="members"') and "<html" not in part.text
    # a subject that disappears stops its section's polling instead of erroring
    api.ok(api.delete(f"/api/v1/networks/{net['id']}?force=true"), 204)
    assert browser.get(f"/networks/{net['id']}?part=live_members").status_code == 286
    missing = browser.get(f"/networks/{net['id']}")
    assert missing.status_code == 404 and "not found" in missing.text


def test_heartbeat_reports_tunnels_and_floating_ips(api: Api) -> None:
    net = network(api)
    a = enrolled(api, "a", networks=["prod"])
    b = enrolled(api, "b", networks=["prod"])
    a_ip = api.ok(api.get(f"/api/v1/nodes/{a['node_id']}"))["networks"][0]["ipv4"]
    beat = {
        "peers": [
            {
                "node_id": b["node_id"],
                "established": True,
                "endpoint": "198.18.0.3:51820",
                "handshake_age_s": 12.5,
                "rtt_ms": 0.4,
                "dead": False,
                "path": "relay",
                "relay": "r1",
            }
        ],
        "seen_ips": {net["id"]: [a_ip, "172.16.1.200"]},
    }
    api.ok(api.client.post("/api/v1/agent/heartbeat", json=beat, headers=a["auth"]))
    node = api.ok(api.get(f"/api/v1/nodes/{a['node_id']}"))
    assert node["networks"][0]["floating_ips"] == ["172.16.1.200"]
    assert node["peers"] == [{**beat["peers"][0], "node": "b"}]
    bad = api.client.post(
        "/api/v1/agent/heartbeat", json={"seen_ips": {net["id"]: ["nope"]}}, headers=a["auth"]
    )
    assert bad.status_code == 422 and "IPv4" in bad.json()["error"]


def test_token_form_shows_a_join_command_for_this_controller(api: Api, browser: TestClient) -> None:
    network(api)
    csrf = log_in(browser, _secret(api.admin))
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    made = browser.post(
        "/tokens",
        data={"description": "web", "max_uses": "2", "expires_hours": "1", "networks": "prod"},
        headers=hx,
    )
    assert made.status_code == 200, made.text
    assert re.search(
        r'id="join-command"[^>]*>skylan agent join https://testserver sky1\.', made.text
    )
    bad = browser.post("/tokens", data={"max_uses": "0", "expires_hours": "soon"}, headers=hx)
    assert bad.status_code == 422 and 'id="token-expires_hours-error"' in bad.text
    short = browser.post("/tokens", data={"max_uses": "1", "expires_hours": "0.001"}, headers=hx)
    assert short.status_code == 422 and 'id="token-expires_hours-error"' in short.text
    zero = browser.post("/tokens", data={"max_uses": "0", "expires_hours": "1"}, headers=hx)
    assert zero.status_code == 422 and 'id="token-max_uses-error"' in zero.text


def test_approval_queue_and_token_revocation(api: Api, browser: TestClient) -> None:
    csrf = log_in(browser, _secret(api.admin))
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    waiting = enrolled(api, "newcomer", needs_approval=True)
    assert "newcomer" in browser.get("/approvals?part=live_pending").text
    assert browser.post(f"/nodes/{waiting['node_id']}/approve", headers=hx).status_code == 204
    assert "Nothing is waiting" in browser.get("/approvals?part=live_pending").text
    assert api.ok(api.get(f"/api/v1/nodes/{waiting['node_id']}"))["status"] == "approved"

    tok = api.ok(api.post("/api/v1/tokens", {"description": "spare"}), 201)
    assert browser.post(f"/tokens/{tok['id']}/revoke", headers=hx).status_code == 204
    assert api.ok(api.get(f"/api/v1/tokens/{tok['id']}"))["state"] == "revoked"
    renamed = browser.post(
        f"/nodes/{waiting['node_id']}/rename", data={"name": "bad name!"}, headers=hx
    )
    assert renamed.status_code == 422 and 'id="rename-name-error"' in renamed.text


def test_an_api_failure_is_a_page_not_a_traceback(
    api: Api, browser: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skylan.controller.api import networks

    network(api)
    log_in(browser, _secret(api.admin))

    def broken(*_args: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(networks, "network_out", broken)
    page = browser.get("/")
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "see the controller log" in page.text
    assert "database on fire" not in page.text and "Traceback" not in page.text


def test_odd_names_in_page_urls_are_404_pages(api: Api, browser: TestClient) -> None:
    """A name from the URL is one segment of the API call: "?" or "#" must not
    cut the API's path short (``/networks/%3F`` asked for the network list and
    failed to render it as one network: a 500)."""
    network(api)
    log_in(browser, _secret(api.admin))
    for url in ("/networks/%3F", "/networks/%23", "/nodes/%3F", "/nodes/%23x", "/networks/a%2Fb"):
        page = browser.get(url)
        assert page.status_code == 404, (url, page.status_code, page.text[:300])
        assert "not found" in page.text.lower()


def test_tunnel_lists_live_in_the_database_and_survive_a_restart(
    api: Api, tmp_path: Path, database_url: str
) -> None:
    """Memory keeps only a digest of each node's tunnel list: a node's page
    shows the list from the heartbeat not yet written, then from the
    database, and a restarted controller shows it too; a changed list
    replaces it."""
    network(api)
    a = enrolled(api, "a", networks=["prod"])
    b = enrolled(api, "b", networks=["prod"])

    def tunnel(endpoint: str) -> dict[str, object]:
        return {
            "node_id": b["node_id"],
            "established": True,
            "endpoint": endpoint,
            "handshake_age_s": 3.0,
            "rtt_ms": 0.7,
            "dead": False,
        }

    def shown() -> list[str]:
        node = api.ok(api.get(f"/api/v1/nodes/{a['node_id']}"))
        listed = next(n for n in api.ok(api.get("/api/v1/nodes")) if n["id"] == a["node_id"])
        assert listed["peers"] == node["peers"]
        return [p["endpoint"] for p in node["peers"]]

    ctl = api.client.app.state.controller  # type: ignore[attr-defined]
    beat = {"peers": [tunnel("198.18.0.3:51820")]}
    api.ok(api.client.post("/api/v1/agent/heartbeat", json=beat, headers=a["auth"]))
    assert shown() == ["198.18.0.3:51820"]  # not written yet: from memory
    api.client.portal.call(ctl.liveliness.flush)  # type: ignore[union-attr]
    assert shown() == ["198.18.0.3:51820"]  # from the database
    assert not hasattr(ctl.memory.liveness[a["node_id"]], "peers")
    beat = {"peers": [tunnel("198.18.0.4:51820")]}
    api.ok(api.client.post("/api/v1/agent/heartbeat", json=beat, headers=a["auth"]))
    api.client.portal.call(ctl.liveliness.flush)  # type: ignore[union-attr]
    assert shown() == ["198.18.0.4:51820"]
    again = create_app(make_settings(tmp_path / "again", database_url))
    with TestClient(again) as client:
        client.post("/api/v1/agent/heartbeat", json={}, headers=a["auth"])  # online again
        node = client.get(f"/api/v1/nodes/{a['node_id']}", headers=api.read)
        assert [p["endpoint"] for p in node.json()["peers"]] == ["198.18.0.4:51820"]
    again.state.engine.dispose()


def test_relays_page_adds_lists_and_deletes(api: Api, browser: TestClient) -> None:
    csrf = log_in(browser, _secret(api.admin))
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    made = browser.post("/relays", data={"name": "r1", "address": "198.18.0.9:3478"}, headers=hx)
    assert made.status_code == 200, made.text
    assert re.search(
        r'id="serve-command"[^>]*>skylan relay serve https://testserver skyrelay_', made.text
    )
    bad = browser.post("/relays", data={"name": "r2", "address": "nowhere"}, headers=hx)
    assert bad.status_code == 422 and 'id="relay-address-error"' in bad.text
    page = browser.get("/relays")
    assert page.status_code == 200 and "r1" in page.text and "not started" in page.text
    (relay,) = api.ok(api.get("/api/v1/relays"))
    gone = browser.post(f"/relays/{relay['id']}/delete", headers=hx)
    assert gone.status_code == 204
    assert "No relays yet" in browser.get("/relays?part=live_relays").text


def test_audit_page_shows_who_changed_what(api: Api, browser: TestClient) -> None:
    network(api, name="prod")
    api.ok(api.patch("/api/v1/networks/prod", {"mtu": 1300}))
    log_in(browser, _secret(api.admin))
    page = browser.get("/audit")
    assert page.status_code == 200
    assert "network.update" in page.text and "mtu=1300" in page.text and "test-admin" in page.text
    only = browser.get("/audit", params={"action": "network.create"})
    assert "network.create" in only.text and "network.update" not in only.text
    assert "for these filters" in browser.get("/audit", params={"actor": "nobody"}).text
    assert browser.get("/audit", params={"before": "x"}).status_code == 422


def test_a_change_made_in_the_console_is_audited_as_the_console_login(
    api: Api, browser: TestClient
) -> None:
    csrf = log_in(browser, _secret(api.admin))
    hx = {"HX-Request": "true", "X-CSRF-Token": csrf}
    made = browser.post("/networks", data={"name": "web", "cidr4": "172.16.7.0/24"}, headers=hx)
    assert made.status_code == 204
    (event,) = api.ok(api.get("/api/v1/audit", params={"action": "network.create"}))["events"]
    assert event["actor_kind"] == "console" and event["actor"] == "test-admin"
    assert event["target"] == "web" and event["request"] == "POST /api/v1/networks"

"""Hostile API clients: guessing tokens, huge bodies, forged proxy headers,
scraping metrics, and a controller's secrets at rest."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from skylan.controller.app import bootstrap_admin, create_app
from skylan.controller.settings import ConfigError
from skylan.tunnel.keys import StaticKeypair

from .conftest import Api, make_settings
from .helpers import enrolled, network
from .served import Served, free_port, serve

ADMIN = "skyadm_hostile-clients-admin-token-0123456789"


def test_guessing_tokens_is_locked_out_per_source(api: Api) -> None:
    """100 wrong tokens: the first ten are checked, then the source waits,
    longer each time; a correct token from there is refused too while it waits
    (so a lucky guess tells nothing), and other sources are unaffected."""
    codes = []
    for i in range(100):
        r = api.client.get("/api/v1/networks", headers={"Authorization": f"Bearer skyadm_{i}"})
        codes.append(r.status_code)
        assert r.json()["error"]
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            assert "too many failed" in r.json()["error"]
    assert codes[:10] == [401] * 10
    assert codes.count(401) <= 11 and codes.count(429) >= 89
    assert api.get("/api/v1/networks").status_code == 429  # the real token: refused too
    other = api.other_client(client=("198.18.7.7", 40000))
    assert other.get("/api/v1/networks", headers=api.read).status_code == 200
    # missing credentials are not guesses
    other = api.other_client(client=("198.18.7.8", 40000))
    assert {other.get("/api/v1/networks").status_code for _ in range(30)} == {401}


def test_console_logins_and_node_credentials_count_too(api: Api) -> None:
    c = api.other_client(client=("198.18.7.9", 40000))
    form = c.get("/login")
    csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
    codes = [
        c.post("/login", data={"token": f"skyadm_{i}", "csrf": csrf}).status_code for i in range(15)
    ]
    assert codes[:10] == [401] * 10 and 429 in codes
    c = api.other_client(client=("198.18.7.10", 40000))
    codes = [
        c.get(
            "/api/v1/agent/netmap",
            params={"timeout": 0},
            headers={"Authorization": f"Bearer skynode_{i}"},
        ).status_code
        for i in range(15)
    ]
    assert codes[:10] == [401] * 10 and codes[-1] == 429


def test_metrics_need_a_token(api: Api) -> None:
    assert api.client.get("/metrics").status_code == 401
    assert api.get("/metrics").status_code == 200


def test_a_weak_bootstrap_token_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'c.db'}"))
    try:
        for weak in ("a", "skyadm_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "short-but-varied-123"):
            monkeypatch.setenv("SKYLAN_ADMIN_TOKEN", weak)
            with pytest.raises(ConfigError, match="too weak"):
                bootstrap_admin(app)
        monkeypatch.setenv("SKYLAN_ADMIN_TOKEN", ADMIN)
        assert bootstrap_admin(app) == ADMIN
    finally:
        app.state.engine.dispose()


def test_secrets_at_rest_are_the_owners_whatever_the_umask(tmp_path: Path) -> None:
    data = tmp_path / "ctl"
    old = os.umask(0o002)
    try:
        app = create_app(make_settings(data, f"sqlite:///{data / 'controller.db'}"))
        with TestClient(app) as client:  # the app writes: WAL files appear
            client.get("/api/v1/health")
        app.state.engine.dispose()
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = [p for p in data.iterdir() if p.name.startswith("controller.db")]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), files
    assert stat.S_IMODE((data / "tls.key").stat().st_mode) == 0o600


# -- a real controller process -------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, int]]:
    scrape = free_port()
    s = serve(
        tmp_path_factory.mktemp("hostile"),
        ADMIN,
        extra=["--metrics-listen", f"127.0.0.1:{scrape}"],
    )
    try:
        yield s, scrape
    finally:
        s.stop()


def _raw(served: Served, head: str, body_chunks: Iterable[bytes] = ()) -> tuple[str, int]:
    """Send a request by hand; the status line, and how many body bytes were
    sent before the controller answered (or closed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    port = int(served.url.rsplit(":", 1)[1])
    sent = 0
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        tls.sendall(head.encode())
        tls.setblocking(False)
        answer = b""
        for chunk in body_chunks:
            try:
                answer += tls.recv(65536)
            except ssl.SSLWantReadError:
                pass
            except OSError:
                break
            if answer:
                break
            try:
                tls.sendall(chunk)
            except (ssl.SSLWantWriteError, BlockingIOError):
                time.sleep(0.01)
                continue
            except OSError:
                break
            sent += len(chunk)
        tls.setblocking(True)
        tls.settimeout(10)
        while b"\r\n" not in answer:
            more = tls.recv(65536)
            if not more:
                break
            answer += more
    return answer.split(b"\r\n", 1)[0].decode(), sent


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_declared_huge_body_is_refused_before_it_is_sent(served: tuple[Served, int]) -> None:
    s, _ = served
    size = 200 << 20
    for auth, status in (("", "401"), (f"Authorization: Bearer {ADMIN}\r\n", "413")):
        head = (
            f"POST /api/v1/networks HTTP/1.1\r\nHost: x\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
        )
        line, _ = _raw(s, head)  # not one body byte: the answer must not wait for it
        assert f" {status} " in line, line
    for path in ("/api/v1/agent/enroll", "/login"):
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n"
        line, _ = _raw(s, head)
        assert " 413 " in line, (path, line)


def test_a_streamed_huge_body_stops_at_the_limit(served: tuple[Served, int]) -> None:
    s, _ = served
    before = _rss_kib(s.proc.pid)
    chunk = b"[" + b"1," * (512 * 1024) + b"1]"  # ~1 MiB of valid-looking JSON per chunk

    def chunked(n: int) -> Iterator[bytes]:
        for _ in range(n):
            yield b"%x\r\n%s\r\n" % (len(chunk), chunk)

    for auth, path, status in (
        ("", "/api/v1/networks", "401"),
        (f"Authorization: Bearer {ADMIN}\r\n", "/api/v1/networks", "413"),
        ("", "/api/v1/agent/enroll", "413"),
    ):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        line, sent = _raw(s, head, chunked(200))
        assert f" {status} " in line, (path, line)
        assert sent < 64 << 20, f"{path}: the controller took {sent >> 20} MiB before answering"
    grown = _rss_kib(s.proc.pid) - before
    assert grown < 60 * 1024, f"the controller grew by {grown} KiB"


def test_forged_forwarded_for_does_not_move_a_node(served: tuple[Served, int]) -> None:
    """The address cloaked peers admit is the one the controller sees a node's
    requests come from; a node (or anyone) must not choose it with a header."""
    s, _ = served
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=s.url, verify=False, timeout=10) as http:
        http.post("/api/v1/networks", json={"name": "xff", "cidr4": "172.30.1.0/24"}, headers=admin)
        tok = http.post("/api/v1/tokens", json={"networks": ["xff"]}, headers=admin).json()
        body = {
            "token": tok["token"],
            "public_key": StaticKeypair.generate().public_b64,
            "hostname": "xff",
        }
        node = http.post("/api/v1/agent/enroll", json=body, headers=forged).json()
        auth = {"Authorization": f"Bearer {node['credential']}", **forged}
        assert http.post("/api/v1/agent/heartbeat", json={}, headers=auth).status_code == 200
        deadline = time.monotonic() + 10
        seen: set[str] = set()
        while time.monotonic() < deadline:
            r = http.get(f"/api/v1/nodes/{node['node_id']}/netmap", headers=admin)
            if r.status_code == 200 and r.json()["networks"]:
                seen |= {p["observed_ip"] for n in r.json()["networks"] for p in n["peers"]}
                if len(seen) and time.monotonic() > deadline - 8:
                    break
            time.sleep(0.2)
    assert seen == {"127.0.0.1"}


def test_metrics_listen_serves_scrapers_without_a_token(served: tuple[Served, int]) -> None:
    s, scrape = served
    text = httpx.get(f"http://127.0.0.1:{scrape}/metrics", timeout=10).text
    assert "skylan_networks" in text
    r = httpx.get(f"{s.url}/metrics", verify=False, timeout=10)
    assert r.status_code == 401


def test_network_helpers_still_work(api: Api) -> None:
    network(api)
    assert enrolled(api, "a", networks=["prod"])["status"] == "approved"

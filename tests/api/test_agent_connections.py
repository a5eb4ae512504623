"""Agents' lean connections (controller/agentconnection.py) at a real
controller process over TLS: long-polls served there, every other request
handed to uvicorn with the same answer it always had, and a parked poll whose
client is gone leaves nothing waiting.

Which path answered shows in the answer: uvicorn adds ``server: uvicorn``,
the lean path does not.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skylan.controller.agentconnection import parse_head

from .served import Served, enrol_nodes, free_port, serve

ADMIN = "skyadm_lean-connections-admin-0123456789"
SYNC = "/api/v1/agent/sync"


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, int, str]]:
    scrape = free_port()
    s = serve(
        tmp_path_factory.mktemp("lean"),
        ADMIN,
        extra=["--metrics-listen", f"127.0.0.1:{scrape}", "--max-body-bytes", "65536"],
    )
    try:
        yield s, scrape, enrol_nodes(s, "lean", "10.81.0.0/24", 1)[0]
    finally:
        s.stop()


class Conn:
    """One TLS connection, requests written by hand, answers read whole."""

    def __init__(self, s: Served, receive_buffer: int | None = None) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        port = int(s.url.rsplit(":", 1)[1])
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # (before connecting: the window follows it)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        raw.settimeout(10)
        raw.connect(("127.0.0.1", port))
        self.tls = ctx.wrap_socket(raw)
        self.pending = b""

    def send(self, data: bytes) -> None:
        self.tls.sendall(data)

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.pending:
            more = self.tls.recv(65536)
            if not more:
                raise ConnectionError("closed before an answer")
            self.pending += more
        head, _, rest = self.pending.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            more = self.tls.recv(65536)
            if not more:
                raise ConnectionError("closed mid-answer")
            rest += more
        self.pending = rest[length:]
        return int(lines[0].split()[1]), headers, rest[:length]

    def closed(self) -> bool:
        self.tls.settimeout(10)
        try:
            return self.pending == b"" and self.tls.recv(1) == b""
        except (ConnectionError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.tls.close()


def request(method: str, path: str, credential: str, body: bytes = b"", **extra: str) -> bytes:
    headers = {
        "Host": "controller",
        "Authorization": f"Bearer {credential}",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        **{k.replace("_", "-"): v for k, v in extra.items()},
    }
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


def sync(credential: str, query: str = "?wait=0", body: bytes = b"{}", **extra: str) -> bytes:
    return request("POST", SYNC + query, credential, body, **extra)


@pytest.fixture
def conn(controller: tuple[Served, int, str]) -> Iterator[Conn]:
    c = Conn(controller[0])
    yield c
    c.close()


def test_a_sync_is_served_lean_and_an_admin_request_after_it_by_uvicorn(
    controller: tuple[Served, int, str], conn: Conn
) -> None:
    _, _, credential = controller
    conn.send(sync(credential))
    status, headers, body = conn.answer()
    assert status == 200, body
    assert "server" not in headers  # the lean path
    assert json.loads(body)["status"] == "approved"
    conn.send(sync(credential))  # again, on the same connection
    assert conn.answer()[0] == 200
    conn.send(request("GET", "/api/v1/networks", ADMIN))
    status, headers, body = conn.answer()
    assert status == 200
    assert headers.get("server") == "uvicorn"  # handed over
    assert [n["name"] for n in json.loads(body)] == ["lean"]
    conn.send(sync(credential))  # uvicorn keeps the connection, and serves syncs too
    status, headers, body = conn.answer()
    assert (status, headers.get("server")) == (200, "uvicorn")
    assert json.loads(body)["status"] == "approved"


def test_pipelined_syncs_are_answered_in_order(
    controller: tuple[Served, int, str], conn: Conn
) -> None:
    _, _, credential = controller
    conn.send(sync(credential, "?wait=0&since=0") + sync(credential, "?wait=0&since=1"))
    first, second = conn.answer(), conn.answer()
    assert (first[0], second[0]) == (200, 200)
    assert "server" not in first[1]


def test_pipelined_requests_wait_for_a_client_that_does_not_read(
    controller: tuple[Served, int, str],
) -> None:
    """Whole netmaps asked for back to back, answers not read for a while:
    the controller takes the next request only as the answers drain, and all
    arrive, in order."""
    s, _, credential = controller
    conn = Conn(s, receive_buffer=4096)
    # 400 requests, far more than a head ahead (the reading pauses until
    # they are taken), each answered with a netmap
    many = b"".join(sync(credential, f"?wait=0&since=0&n={i}") for i in range(400))
    assert len(many) > 4 * 8192
    sender = threading.Thread(target=conn.send, args=(many,))
    sender.start()
    time.sleep(1.0)
    answers = [conn.answer() for _ in range(400)]
    sender.join(10)
    conn.close()
    assert sum(len(body) for _, _, body in answers) > 4 * 65536
    assert [status for status, _, _ in answers] == [200] * 400
    assert all(json.loads(body)["netmap"] for _, _, body in answers)


def test_answers_beyond_the_socket_buffers_pause_the_connection(tmp_path: Path) -> None:
    """Big netmaps asked for back to back by a client that reads nothing for
    a while: more than the kernel buffers between them hold, so the
    connection stops taking requests (a write pause, counted) until the
    client reads, and then answers every one, in order."""
    scrape = free_port()
    s = serve(tmp_path, ADMIN, extra=["--metrics-listen", f"127.0.0.1:{scrape}"])
    try:
        credential = enrol_nodes(s, "big", "10.82.0.0/24", 150, names="big")[0]
        assert metric(scrape, "skylan_agent_connection_write_pauses_total") == 0
        conn = Conn(s, receive_buffer=4096)
        many = b"".join(sync(credential, f"?wait=0&since=0&n={i}") for i in range(120))
        sender = threading.Thread(target=conn.send, args=(many,))
        sender.start()
        settle(lambda: metric(scrape, "skylan_agent_connection_write_pauses_total") > 0)
        answers = [conn.answer() for _ in range(120)]
        sender.join(10)
        conn.close()
    finally:
        s.stop()
    assert [status for status, _, _ in answers] == [200] * 120
    peers = {len(json.loads(body)["netmap"]["networks"][0]["peers"]) for _, _, body in answers}
    assert peers == {150}
    assert sum(len(body) for _, _, body in answers) > 5 * 2**20  # past 4 MiB of socket buffer


def test_a_request_for_uvicorn_amid_pipelined_syncs_is_answered(
    controller: tuple[Served, int, str],
) -> None:
    """Syncs, an admin request, more syncs, all pipelined far more than a
    head ahead (reading paused): uvicorn takes the connection at the admin
    request with the reading resumed, and answers the rest."""
    s, _, credential = controller
    conn = Conn(s)
    syncs = b"".join(sync(credential, f"?wait=0&n={i}") for i in range(100))
    conn.send(syncs + request("GET", "/api/v1/networks", ADMIN) + syncs)
    answers = [conn.answer() for _ in range(201)]
    conn.close()
    assert [status for status, _, _ in answers] == [200] * 201
    assert "server" not in answers[99][1]
    assert [n["name"] for n in json.loads(answers[100][2])] == ["lean"]
    assert {headers.get("server") for _, headers, _ in answers[100:]} == {"uvicorn"}


BAD_BODY = b'{"heartbeat": {"uptime_s": "soon"}}'


@pytest.mark.parametrize(
    ("query", "body"),
    [("?wait=soon", b"{}"), ("?wait=301", b"{}"), ("?wait=0", BAD_BODY), ("?wait=0", b"[")],
    ids=["query-not-a-number", "query-out-of-range", "invalid-field", "not-json"],
)
def test_the_lean_paths_errors_are_the_frameworks(
    controller: tuple[Served, int, str], query: str, body: bytes
) -> None:
    s, _, credential = controller
    answers = []
    for handed_over in (False, True):
        c = Conn(s)
        try:
            if handed_over:
                c.send(request("GET", "/api/v1/health", ADMIN))
                assert c.answer()[1].get("server") == "uvicorn"
            c.send(sync(credential, query, body))
            status, headers, raw = c.answer()
            assert ("server" in headers) == handed_over
            answers.append((status, json.loads(raw)))
        finally:
            c.close()
    assert answers[0] == answers[1]
    assert answers[0][0] == 422 and answers[0][1]["error"]


def chunked_sync(credential: str) -> bytes:
    head = (
        f"POST {SYNC}?wait=0 HTTP/1.1\r\nHost: c\r\nAuthorization: Bearer {credential}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    return head.encode() + b"2\r\n{}\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda c: sync("not-a-credential"), 401),
        (lambda c: sync(c, body=b"x" * 70000), 413),
        (chunked_sync, 200),
        (lambda c: sync(c, Expect="100-continue"), 200),
        (lambda c: sync(c).replace(b"HTTP/1.1\r\n", b"HTTP/1.0\r\n", 1), 200),
        (lambda c: sync(c, X_Padding="p" * 9000), 200),
        (lambda c: sync(c).replace(b"\r\n\r\n", b"\r\nContent-Length: 2\r\n\r\n", 1), 400),
        (lambda c: sync(c).replace(b"Host:", b"Host :", 1), 400),
    ],
    ids=[
        "wrong-credential",
        "body-over-the-limit",
        "chunked",
        "expect-continue",
        "http-1.0",
        "head-over-8-KiB",
        "content-length-twice",
        "space-before-colon",
    ],
)
def test_requests_outside_the_subset_get_uvicorns_answer(
    controller: tuple[Served, int, str], conn: Conn, make: Any, status: int
) -> None:
    _, _, credential = controller
    data = make(credential)
    if status == 200 and b"Expect" in data:
        conn.send(data)
        got, headers, _ = conn.answer()
        if got == 100:  # uvicorn asks for the body
            got, headers, _ = conn.answer()
    else:
        conn.send(data)
        try:
            got, headers, _ = conn.answer()
        except ConnectionError:  # (uvicorn may close at once on what it cannot parse)
            got, headers = 400, {"server": "uvicorn"}
    assert got == status
    assert headers.get("server") == "uvicorn"


def test_connection_close_is_honoured(controller: tuple[Served, int, str], conn: Conn) -> None:
    _, _, credential = controller
    conn.send(sync(credential, Connection="close"))
    assert conn.answer()[0] == 200
    assert conn.closed()


def metric(scrape: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{scrape}/metrics").text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in the metrics")


def longpolls(scrape: int) -> float:
    return metric(scrape, "skylan_netmap_longpolls")


def settle(check: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "did not settle"
        time.sleep(0.1)


def test_a_parked_poll_whose_client_left_stops_waiting(
    controller: tuple[Served, int, str],
) -> None:
    s, scrape, credential = controller
    conns = [Conn(s) for _ in range(20)]
    try:
        for c in conns:
            c.send(sync(credential, "?wait=300&since=999999999"))
        settle(lambda: longpolls(scrape) == 20)
    finally:
        for c in conns:
            c.close()
    settle(lambda: longpolls(scrape) == 0)


def test_an_idle_connection_is_closed_after_the_keep_alive(
    controller: tuple[Served, int, str], conn: Conn
) -> None:
    _, _, credential = controller
    conn.send(sync(credential))
    assert conn.answer()[0] == 200
    started = time.monotonic()
    assert conn.closed()
    assert time.monotonic() - started < 9  # uvicorn's keep-alive: 5 s


# -- the parser alone -------------------------------------------------------------


def test_parse_head_takes_the_agents_requests() -> None:
    head = sync("cred", "?wait=15&since=3", b"{}").split(b"\r\n\r\n")[0]
    parsed = parse_head(head, 1000)
    assert parsed is not None
    assert (parsed.sync, parsed.query, parsed.authorization, parsed.length) == (
        True,
        b"wait=15&since=3",
        "Bearer cred",
        2,
    )
    netmap = request("GET", "/api/v1/agent/netmap?since=1", "c").split(b"\r\n\r\n")[0]
    assert parse_head(netmap, 1000) is not None


@pytest.mark.parametrize(
    "head",
    [
        b"GET /api/v1/agent/sync HTTP/1.1",
        b"POST /api/v1/agent/netmap HTTP/1.1",
        b"POST /api/v1/agent/sync/ HTTP/1.1",
        b"POST /api/v1/agent/%73ync HTTP/1.1",
        b"POST /api/v1/agent/sync HTTP/1.1\r\nContent-Length: -1",
        b"POST /api/v1/agent/sync HTTP/1.1\r\nContent-Length: 1001",
        b"POST /api/v1/agent/sync HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1",
        b"POST /api/v1/agent/sync HTTP/1.1\r\nTransfer-Encoding: chunked",
        b"POST /api/v1/agent/sync HTTP/1.1\r\nX: a\nY: b",
        b"POST /api/v1/agent/sync HTTP/1.1\r\n folded: x",
        b"POST /api/v1/agent/sync HTTP/1.1\r\nConnection: upgrade",
        b"POST  /api/v1/agent/sync HTTP/1.1",
    ],
)
def test_parse_head_leaves_anything_else_to_uvicorn(head: bytes) -> None:
    assert parse_head(head, 1000) is None


@given(st.binary(max_size=600))
def test_parse_head_never_raises(head: bytes) -> None:
    prefix = b"POST /api/v1/agent/sync HTTP/1.1\r\n"
    for candidate in (head, prefix + head):
        parsed = parse_head(candidate, 1000)
        assert parsed is None or 0 <= parsed.length <= 1000

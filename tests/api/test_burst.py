"""A burst of 500 concurrent requests, each on its own TLS connection, at a
real controller process: reads, heartbeats and writes mixed. Every one gets
an answer or a 429/503 with Retry-After, promptly; none gets a 500, none is
dropped, none waits out a timeout. With a small ``--max-busy`` the excess is
refused at once with 503, and the controller serves normally afterwards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from skylan.client import Skylan

from .served import Served, enrol_nodes, serve

ADMIN = "skyadm_burst-test-admin-token-0123456789abc"
BURST = 500
NODES = 10
# far above the ~1 s this takes on a 2-core machine, far below the 30 s hang
# a pool deadlock gave: what is proven is "answered", not a speed
PROMPT_S = 10.0


@pytest.fixture(params=[None, 20], ids=["default", "max-busy-20"])
def controller(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    extra = [] if request.param is None else ["--max-busy", str(request.param)]
    served = serve(tmp_path / "ctl", ADMIN, log=tmp_path / "ctl.log", extra=extra)
    try:
        yield served
    finally:
        served.stop()


def enrol(s: Served) -> list[str]:
    return enrol_nodes(s, "prod", "10.80.0.0/24", NODES, names="b")


async def burst(s: Served, credentials: list[str]) -> list[tuple[str, int, float, Any]]:
    admin = {"Authorization": f"Bearer {ADMIN}"}

    def request(i: int) -> tuple[str, str, dict[str, str], Any]:
        kind = i % 5
        if kind == 3:  # a heartbeat
            auth = {"Authorization": f"Bearer {credentials[i % NODES]}"}
            return "heartbeat", "POST", auth, ("/api/v1/agent/heartbeat", {"uptime_s": i})
        if kind == 4:  # a write
            return "write", "PATCH", admin, (f"/api/v1/nodes/b{i % NODES}", {"tags": [f"t{i}"]})
        return "read", "GET", admin, ("/api/v1/networks", None)

    async def one(i: int) -> tuple[str, int, float, Any]:
        kind, method, headers, (path, body) = request(i)
        async with httpx.AsyncClient(
            base_url=s.url, verify=False, headers=headers, timeout=30
        ) as c:
            t0 = time.perf_counter()
            try:
                r = await c.request(method, path, json=body)
            except httpx.HTTPError as exc:
                return kind, 0, time.perf_counter() - t0, repr(exc)
            took = time.perf_counter() - t0
            detail = (r.headers.get("retry-after"), r.headers.get("content-type"), r.text[:200])
            return kind, r.status_code, took, detail

    return await asyncio.gather(*(one(i) for i in range(BURST)))


def test_a_burst_is_answered_or_refused_promptly_and_never_with_500(controller: Served) -> None:
    credentials = enrol(controller)
    results = asyncio.run(burst(controller, credentials))
    codes: dict[int, int] = {}
    for _, code, _, _ in results:
        codes[code] = codes.get(code, 0) + 1
    print(f"burst of {BURST}: {codes}, slowest {max(r[2] for r in results):.2f} s")
    unexpected = [r for r in results if r[1] not in (200, 429, 503)]
    assert not unexpected, unexpected[:5]
    for kind, code, took, detail in results:
        assert took < PROMPT_S, (kind, code, took)
        if code in (429, 503):
            retry_after, content_type, text = detail
            assert retry_after is not None and float(retry_after) > 0, detail
            assert content_type == "application/json" and '"error"' in text, detail
    if "--max-busy" in controller.proc.args:  # type: ignore[operator]
        assert codes.get(503, 0) > 0, "a small --max-busy refused nothing"
    assert codes.get(200, 0) > 0
    # and afterwards it serves normally: every write that was answered 200 stands
    with Skylan(controller.url, ADMIN, fingerprint=controller.fingerprint) as sky:
        assert [n.name for n in sky.networks()] == ["prod"]
        tags = {n.name: n.tags for n in sky.nodes()}
    written: dict[str, set[str]] = {}
    for i, (kind, code, _, _) in enumerate(results):
        if kind == "write" and code == 200:
            written.setdefault(f"b{i % NODES}", set()).add(f"t{i}")
    for name, candidates in written.items():
        assert len(tags[name]) == 1 and tags[name][0] in candidates, (name, tags[name])

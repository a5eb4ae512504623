"""How fast does one change reach every agent's long-poll, and what does a
node cost the controller in memory?

Starts a real controller (`skylan controller serve`, HTTPS, SQLite by default
or a private PostgreSQL with --postgres), enrolls N simulated nodes into one
network through the API, parks one netmap long-poll per node, changes the
network once and times until every long-poll has its answer. The baseline,
measured in the same run, is the same change reaching a single long-poll.

    .venv/bin/python benchmarks/netmap_fanout.py [--nodes 2000] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.api.served import Served, serve

import simagents
from skylan.lab.postgres import PostgresCluster
from skylan.tunnel.keys import StaticKeypair

ADMIN = "skyadm_benchmark-admin-token-0123456789abcdef"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def enroll_all(ctl: Served, token: str, n: int, first: int = 0) -> list[dict[str, Any]]:
    sem = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=ctl.url, verify=False, timeout=60) as http:

        async def one(i: int) -> dict[str, Any]:
            async with sem:
                r = await http.post(
                    "/api/v1/agent/enroll",
                    json={
                        "token": token,
                        "public_key": StaticKeypair.generate().public_b64,
                        "hostname": f"node{i}",
                        "endpoints": [f"198.18.{i // 250}.{i % 250 + 1}:51820"],
                    },
                )
                if r.status_code != 201:
                    raise RuntimeError(f"enrollment failed: {r.status_code} {r.text}")
                data: dict[str, Any] = r.json()
                return data

        return list(await asyncio.gather(*(one(i) for i in range(first, first + n))))


async def settled_version(admin: httpx.AsyncClient, want_nodes: int) -> int:
    """Wait until the feed has applied every change; return the newest version."""
    for _ in range(600):
        health = (await admin.get("/api/v1/health")).json()
        metrics = (await admin.get("/metrics")).text
        if f'skylan_nodes{{status="approved"}} {float(want_nodes)}' in metrics:
            await asyncio.sleep(0.5)
            again = (await admin.get("/api/v1/health")).json()
            if again["netmap_change"] == health["netmap_change"]:
                return int(again["netmap_change"])
        await asyncio.sleep(0.2)
    raise RuntimeError("the controller never settled")


async def waiting_polls(admin: httpx.AsyncClient) -> int:
    for line in (await admin.get("/metrics")).text.splitlines():
        if line.startswith("skylan_netmap_longpolls "):
            return int(float(line.split()[1]))
    return 0


async def fan_out(ctl: Served, nodes: list[dict[str, Any]], mtu: int) -> dict[str, float]:
    """Park one long-poll per node, make one change, time every answer.

    The long-polls are simagents' lean keep-alive connections on uvloop, not
    httpx: with httpx the client's own parsing of 2,000 answers on these two
    cores took most of the time measured."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    loop = asyncio.get_running_loop()
    host, port = "127.0.0.1", int(ctl.url.rsplit(":", 1)[1])
    opening = asyncio.Semaphore(64)

    async def connect() -> simagents._Http:
        async with opening:
            _, proto = await loop.create_connection(
                simagents._Http, host, port, ssl=simagents._tls()
            )
            return proto

    conns = await asyncio.gather(*(connect() for _ in nodes))
    async with httpx.AsyncClient(
        base_url=ctl.url, verify=False, timeout=60, headers=headers
    ) as admin:
        since = await settled_version(admin, len(nodes))
        arrivals: list[float] = []
        sizes: list[int] = []

        async def hold(conn: simagents._Http, node: dict[str, Any]) -> None:
            request = (
                f"GET /api/v1/agent/netmap?since={since}&timeout=100 HTTP/1.1\r\n"
                f"Host: {host}\r\nAuthorization: Bearer {node['credential']}\r\n\r\n"
            ).encode()
            status, body = await conn.request(request, 120)
            arrivals.append(time.perf_counter())
            sizes.append(len(body))
            if status != 200:
                raise RuntimeError(f"long-poll answered {status}")

        tasks = [asyncio.create_task(hold(c, n)) for c, n in zip(conns, nodes, strict=True)]
        deadline = time.monotonic() + 120
        while await waiting_polls(admin) < len(nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("long-polls never all parked")
            await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        r = await admin.patch("/api/v1/networks/bench", json={"mtu": mtu})
        r.raise_for_status()
        await asyncio.gather(*tasks)
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    lat = sorted(a - t0 for a in arrivals)
    return {"all": lat[-1], "p50": statistics.median(lat), "bytes": statistics.mean(sizes)}


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="skylan-bench-"))
    cluster = PostgresCluster() if args.postgres else None
    url = cluster.create_database("bench") if cluster else None
    ctl = serve(tmp / "ctl", ADMIN, url, log=tmp / "controller.log")
    try:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with httpx.AsyncClient(base_url=ctl.url, verify=False, headers=headers) as admin:
            (
                await admin.post(
                    "/api/v1/networks", json={"name": "bench", "cidr4": "10.64.0.0/16"}
                )
            ).raise_for_status()
            token = (
                await admin.post("/api/v1/tokens", json={"max_uses": None, "networks": ["bench"]})
            ).json()["token"]
        rss0 = rss_kib(ctl.proc.pid)
        first = await enroll_all(ctl, token, 1)
        baseline = await fan_out(ctl, first, 1400)
        t0 = time.perf_counter()
        rest = await enroll_all(ctl, token, args.nodes - 1, first=1)
        enroll_s = time.perf_counter() - t0
        nodes = first + rest
        result = await fan_out(ctl, nodes, 1300)
        rss1 = rss_kib(ctl.proc.pid)
    finally:
        ctl.stop()
        if cluster:
            cluster.close()
    db = "PostgreSQL" if args.postgres else "SQLite"
    print(f"netmap fan-out, {args.nodes} nodes in one network, {db}, HTTPS long-polls")
    print(f"{'measure':<44}{'value':>14}")
    print(f"{'enrollment rate (nodes/s)':<44}{(args.nodes - 1) / enroll_s:>14.0f}")
    print(f"{'baseline: change -> 1 long-poll (ms)':<44}{baseline['all'] * 1000:>14.0f}")
    print(f"{'change -> all long-polls answered (ms)':<44}{result['all'] * 1000:>14.0f}")
    print(f"{'change -> median long-poll (ms)':<44}{result['p50'] * 1000:>14.0f}")
    print(f"{'ratio all / baseline':<44}{result['all'] / baseline['all']:>14.1f}")
    print(f"{'response size per node (bytes)':<44}{result['bytes']:>14.0f}")
    print(f"{'controller memory per node (KiB)':<44}{(rss1 - rss0) / args.nodes:>14.1f}")
    print(f"target: all long-polls < 1000 ms -> {'met' if result['all'] < 1 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    if args.nodes < 2:
        parser.error("--nodes must be at least 2")
    uvloop.run(run(args))


if __name__ == "__main__":
    main()

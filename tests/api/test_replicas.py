"""Two controller processes on one PostgreSQL: a change made through one
reaches a long-poll held on the other within a second (LISTEN/NOTIFY)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from skylan.client import Skylan
from skylan.lab.postgres import PostgresCluster
from skylan.tunnel.keys import StaticKeypair

from .served import serve

ADMIN = "skyadm_replica-test-admin-token-0123456789"


def test_change_on_a_reaches_long_poll_on_b(pg_cluster: PostgresCluster, tmp_path: Path) -> None:
    url = pg_cluster.create_database("replicas")
    a = serve(tmp_path / "a", ADMIN, url, log=tmp_path / "a.log")
    # replica B shares the certificate (as replicas behind one name would)
    (tmp_path / "b").mkdir()
    for name in ("tls.crt", "tls.key"):
        (tmp_path / "b" / name).write_bytes((tmp_path / "a" / name).read_bytes())
    # B's fallback poll is slowed to 30 s: only NOTIFY can wake it in time
    b = serve(tmp_path / "b", ADMIN, url, log=tmp_path / "b.log", extra=["--poll-interval", "30"])
    try:
        assert a.fingerprint == b.fingerprint
        with Skylan(a.url, ADMIN, fingerprint=a.fingerprint) as sky_a:
            sky_a.create_network("prod", "172.16.1.0/24")
            tok = sky_a.create_token(networks=["prod"])
        enrolled = httpx.post(
            f"{b.url}/api/v1/agent/enroll",
            verify=False,
            json={
                "token": tok.token,
                "public_key": StaticKeypair.generate().public_b64,
                "hostname": "n1",
                "endpoints": ["198.18.1.1:51820"],
            },
        ).json()
        auth = {"Authorization": f"Bearer {enrolled['credential']}"}
        with httpx.Client(base_url=b.url, verify=False, headers=auth, timeout=30) as agent:
            since = 0
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # wait for B's first netmap with the network
                r = agent.get("/api/v1/agent/netmap", params={"since": since, "timeout": 5})
                if r.status_code == 200:
                    since = r.json()["version"]
                    if r.json()["networks"]:
                        break
            result: dict[str, float | int] = {}

            def hold() -> None:
                r = agent.get("/api/v1/agent/netmap", params={"since": since, "timeout": 20})
                result["at"] = time.monotonic()
                result["status"] = r.status_code
                if r.status_code == 200:
                    result["mtu"] = r.json()["networks"][0]["mtu"]

            poller = threading.Thread(target=hold)
            poller.start()
            time.sleep(1.0)  # the long-poll is now parked on B
            with Skylan(a.url, ADMIN, fingerprint=a.fingerprint) as sky_a:
                changed = time.monotonic()
                sky_a.update_network("prod", mtu=1300)
            poller.join(25)
        assert result["status"] == 200 and result["mtu"] == 1300
        latency = result["at"] - changed
        print(f"change through A reached a long-poll on B in {latency * 1000:.0f} ms")
        assert latency < 1.0
    finally:
        a.stop()
        b.stop()

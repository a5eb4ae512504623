"""Agents spread over two replicas on one PostgreSQL; one replica is killed
(SIGKILL: nothing flushed, nothing said goodbye). Its agents move to the other
with the agent's own control-plane client, a change made there reaches every
agent, and nothing is lost: every statistics report counts exactly once and
every node is seen online, also by a third replica started afterwards."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from skylan.agent.controlplane import ControlPlane, ControlPlaneError
from skylan.agent.reports import StatsReporter
from skylan.client import Skylan
from skylan.lab.postgres import PostgresCluster
from skylan.model.agentapi import EnrollRequest, Heartbeat, SyncRequest
from skylan.model.agentstatus import LaneStatus, TunnelStatus
from skylan.tunnel.keys import StaticKeypair

from .served import Served, serve

ADMIN = "skyadm_failover-test-admin-token-0123456789"
AGENTS = 12
STEP = 1000  # bytes each agent "sends" per sync


@dataclass
class SimAgent:
    """The agent's real control-plane client and statistics bookkeeping, with
    counters that grow by STEP per sync instead of a data plane."""

    name: str
    cp: ControlPlane
    node_id: str = ""
    peer: str = ""
    sent_bytes: int = 0
    since: int = 0
    storm_pps: int | None = None
    replicas: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    reporter: StatsReporter = field(default_factory=StatsReporter)

    def status(self) -> LaneStatus:
        tunnel = TunnelStatus(tx_bytes=self.sent_bytes, rtt_ms=1.0)
        return LaneStatus(lane=0, peers={self.peer: tunnel})

    async def sync_once(self, produce: bool) -> None:
        if produce:
            self.sent_bytes += STEP
            self.reporter.take(self.status())
        body = SyncRequest(
            heartbeat=Heartbeat(uptime_s=1.0),
            stats=self.reporter.unsent(),
            held_by=self.reporter.held_by(),
        )
        try:
            answer = await self.cp.sync(self.since, 0.5, body)
        except ControlPlaneError as exc:
            self.errors.append(str(exc))
            await asyncio.sleep(0.2)
            return
        self.replicas.add(self.cp.url)
        self.reporter.answered(body.stats, answer.stats_stored, answer.epoch, body.held_by)
        if answer.netmap is not None:
            self.since = answer.netmap.version
            for net in answer.netmap.networks:
                self.storm_pps = net.storm_pps


def replica_of(a: Served, where: Path, url: str) -> Served:
    """Another controller process on the same database and certificate."""
    where.mkdir()
    for name in ("tls.crt", "tls.key"):
        (where / name).write_bytes((a.data_dir / name).read_bytes())
    return serve(where, ADMIN, url, log=where.parent / f"{where.name}.log")


def test_agents_move_to_the_surviving_replica_and_nothing_is_lost(
    pg_cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = pg_cluster.create_database("failover")
    a = serve(tmp_path / "a", ADMIN, url, log=tmp_path / "a.log")
    b = replica_of(a, tmp_path / "b", url)
    c: Served | None = None
    try:
        with Skylan(a.url, ADMIN, fingerprint=a.fingerprint) as sky:
            sky.create_network("prod", "10.70.0.0/16")
            token = sky.create_token(networks=["prod"], max_uses=AGENTS).token
        # half the agents list A first, half B first: both replicas carry load
        agents = [
            SimAgent(
                f"f{i}",
                ControlPlane([a.url, b.url] if i % 2 else [b.url, a.url], a.fingerprint),
            )
            for i in range(AGENTS)
        ]
        killed_at, changed_at, reached_at = asyncio.run(run(agents, a, b, token))
        assert all(agent.storm_pps == 777 for agent in agents), [x.storm_pps for x in agents]
        assert reached_at - changed_at < 5.0
        assert {a.url, b.url} <= set().union(*(x.replicas for x in agents))
        # only the sync that was in flight on A when it died may have failed over
        # (the client moves on inside the call); nobody was refused
        assert not [e for x in agents for e in x.errors if "401" in e or "422" in e]

        b.stop()  # a clean stop writes what B holds in memory
        c = replica_of(a, tmp_path / "c", url)
        with Skylan(c.url, ADMIN, fingerprint=c.fingerprint) as sky:
            nodes = {n.id: n for n in sky.nodes()}
            for agent in agents:
                stored = sum(bk.tx_bytes for bk in sky.node_stats(agent.node_id).buckets)
                assert stored == agent.sent_bytes, (agent.name, stored, agent.sent_bytes)
                seen = nodes[agent.node_id].last_seen
                assert seen is not None and seen.timestamp() > killed_at, agent.name
    finally:
        for served in (a, b, c):
            if served is not None:
                served.stop()


async def run(agents: list[SimAgent], a: Served, b: Served, token: str) -> tuple[float, ...]:
    try:
        for agent in agents:
            enrolled = await agent.cp.enroll(
                EnrollRequest(
                    token=token,
                    public_key=StaticKeypair.generate().public_b64,
                    request_id=secrets.token_hex(16),
                    hostname=agent.name,
                    endpoints=["198.18.7.1:51820"],
                )
            )
            agent.node_id = enrolled.node_id
            agent.cp = ControlPlane(agent.cp.urls, a.fingerprint, enrolled.credential)
        for i, agent in enumerate(agents):
            agent.peer = agents[(i + 1) % len(agents)].node_id

        stop = asyncio.Event()

        async def live(agent: SimAgent) -> None:
            while not stop.is_set():
                await agent.sync_once(produce=True)

        tasks = [asyncio.create_task(live(agent)) for agent in agents]
        await asyncio.sleep(3)
        on_a = [x for x in agents if x.cp.url == a.url]
        assert on_a and len(on_a) < len(agents), "the agents did not spread"
        a.proc.kill()
        a.proc.wait()
        killed_at = time.time()
        await asyncio.sleep(3)
        assert all(x.cp.url == b.url for x in agents), "an agent did not move to B"

        changed_at = time.monotonic()
        with Skylan(b.url, ADMIN, fingerprint=b.fingerprint) as sky:
            await asyncio.to_thread(sky.update_network, "prod", storm_pps=777)
        deadline = changed_at + 10
        while time.monotonic() < deadline and any(x.storm_pps != 777 for x in agents):
            await asyncio.sleep(0.05)
        reached_at = time.monotonic()

        stop.set()
        await asyncio.gather(*tasks)
        # no new reports; sync until B has every pending one in hand
        for _ in range(20):
            if not any(x.reporter.unsent() for x in agents):
                break
            await asyncio.gather(*(x.sync_once(produce=False) for x in agents))
        assert not any(x.reporter.unsent() for x in agents)
        return killed_at, changed_at, reached_at
    finally:
        for agent in agents:
            await agent.cp.aclose()

"""The agent daemon: follows the netmap, heartbeats, reports traffic, and
keeps status.

All of its talk with the controller is one loop of ``sync`` calls: each
carries the heartbeat when one is due and the statistics reports not yet
stored, and waits (up to a heartbeat interval) for the next netmap. Control
plane trouble never stops the node: the last netmap is kept on disk and stays
in force while the controller is unreachable; the loop retries with backoff,
and moves to another controller replica if it knows several.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import random
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from skylan import __version__
from skylan.agent.controlplane import ControlPlane, ControlPlaneError
from skylan.agent.dnsmode import DnsMode
from skylan.agent.hostconfig import HostConfig
from skylan.agent.localdns import LocalDns
from skylan.agent.reports import PeerReports, StatsReporter, peer_reports
from skylan.agent.state import Enrollment, StateDir
from skylan.dataplane.discovery import ReflectorTarget
from skylan.dataplane.lane import Dataplane
from skylan.hostnet.interfaces import endpoints, physical_interfaces
from skylan.hostnet.kernellinks import KernelLinks
from skylan.model.agentapi import Heartbeat, SyncAnswer, SyncRequest
from skylan.model.agentstatus import AgentStatus, LaneStatus, NetworkEntry, PeerEntry
from skylan.model.netmap import MAX_CANDIDATES, Candidate, NetMap
from skylan.model.reflexive import credential_key

log = logging.getLogger("skylan.agent")

HEARTBEAT_INTERVAL = 15.0
STATUS_INTERVAL = 2.0
STATS_INTERVAL = 10.0
MAX_BACKOFF = 30.0

NetmapListener = Callable[[NetMap], None]


class Agent:
    def __init__(
        self,
        state: StateDir,
        *,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        dataplane: bool = True,
        stats_interval: float = STATS_INTERVAL,
        workers: int = 1,
        ack_thinning: bool = True,
        native: bool = False,
        dns: DnsMode = DnsMode.auto,
    ) -> None:
        self.state = state
        self.enrollment = state.enrollment()
        self.key = state.key()
        self.heartbeat_interval = heartbeat_interval
        self.stats_interval = stats_interval
        self.netmap: NetMap | None = state.netmap()
        self.started = time.monotonic()
        self.last_contact: float | None = None  # wall time of the last answer
        self.last_error: str | None = None
        self.listeners: list[NetmapListener] = []
        self._cp = ControlPlane(
            self.enrollment.urls, self.enrollment.fingerprint, self.enrollment.credential
        )
        self.dataplane: Dataplane | None = None
        self._want_dataplane = dataplane
        self.workers = workers  # data-plane lanes, one process and TAP queue each
        self.ack_thinning = ack_thinning
        self.native = native  # the compiled data-plane core carries the packets
        self.hostconfig = HostConfig(
            self.enrollment.listen_port, self.enrollment.controller_url, lanes=workers
        )
        self.apply_error: str | None = None
        self.localdns = LocalDns(dns)
        self.reports = StatsReporter(state.stats_seq(), save_seq=state.save_stats_seq)
        self._peer_reports = PeerReports()
        self._heartbeat_at = -float("inf")  # monotonic time of the last heartbeat taken in
        self._report_now = asyncio.Event()
        self._candidates_sent: list[Candidate] | None = None  # in the last heartbeat
        self._seen_sent: dict[str, list[str]] | None = None  # likewise

    async def run(self, stop: asyncio.Event) -> None:
        if self._want_dataplane:
            self.dataplane = Dataplane(
                self.key,
                self.enrollment.listen_port,
                lanes=self.workers,
                ack_thinning=self.ack_thinning,
                native=self.native,
                host=KernelLinks(),
                reflector=await reflector_target(self.enrollment),
            )
            self.dataplane.on_candidates = self.report_soon
            self.dataplane.start()
            await self.dataplane.start_workers()
        if self.netmap is not None:
            await self._apply(self.netmap)  # resume on the last netmap before any contact
        tasks = [
            asyncio.create_task(self._sync(), name="sync"),
            asyncio.create_task(self._status_writer(), name="status"),
            asyncio.create_task(self._stats_reporter(), name="stats"),
        ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._cp.aclose()
            await self.localdns.aclose()  # the host's DNS as it was
            if self.dataplane is not None:
                await self.dataplane.aclose()

    # -- the controller -------------------------------------------------------

    def report_soon(self) -> None:
        """Something peers must learn (our candidates changed): a heartbeat
        now, not at the next interval (a long-poll in flight is given up)."""
        self._heartbeat_at = -float("inf")
        self._report_now.set()

    async def _sync_or_report(self, since: int, body: SyncRequest) -> SyncAnswer | None:
        """The sync call, or None if ``report_soon`` cut its wait short."""
        self._report_now.clear()
        call = asyncio.ensure_future(self._cp.sync(since, self.heartbeat_interval, body))
        wake = asyncio.ensure_future(self._report_now.wait())
        try:
            await asyncio.wait({call, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
        if call.done():
            return call.result()
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError, ControlPlaneError):
            await call
        return None

    async def _sync(self) -> None:
        backoff = 1.0
        while True:
            since = self.netmap.version if self.netmap is not None else 0
            heartbeat = await self._heartbeat_if_due()
            body = SyncRequest(
                heartbeat=heartbeat, stats=self.reports.unsent(), held_by=self.reports.held_by()
            )
            try:
                answer = await self._sync_or_report(since, body)
                if answer is None:
                    continue  # (what it carried goes again with the next)
            except ControlPlaneError as exc:
                self._trouble(exc)
                if exc.status == 401:
                    await self._leave_everything()
                # as told (429/503), or backing off; jittered so that agents
                # refused together do not come back together
                pause = exc.retry_after if exc.retry_after is not None else backoff
                await asyncio.sleep(pause * random.uniform(1.0, 1.5))
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            self._contact()
            backoff = 1.0
            if heartbeat is not None:
                self._heartbeat_at = time.monotonic()
                if heartbeat.peers is not None:
                    self._peer_reports.sent(heartbeat.peers)
            self.reports.answered(body.stats, answer.stats_stored, answer.epoch, body.held_by)
            if answer.netmap is not None:
                await self._follow(answer.netmap)

    async def _follow(self, fresh: NetMap) -> None:
        try:
            merged = fresh.merged_with(self.netmap)
        except ValueError:
            self.netmap = None  # we lost track: ask for everything
            return
        self.netmap = merged
        self.state.save_netmap(merged)
        await self._apply(merged)

    async def _leave_everything(self) -> None:
        """The controller no longer knows this node (deleted, or its credential
        revoked): leave every network and undo gateway and cloak rules, rather
        than keep a deleted node in the mesh. The agent keeps asking (slowly),
        so a controller restored from a backup brings it back."""
        if self.netmap is None or not self.netmap.networks:
            return
        log.error(
            "the controller refused this node's credential: leaving every network; "
            "enroll again with `skylan agent join` if it should be a member"
        )
        self.netmap = self.netmap.model_copy(update={"networks": [], "version": 0})
        self.state.save_netmap(self.netmap)
        if self.dataplane is not None:
            await self.dataplane.apply(self.netmap)
        await asyncio.to_thread(self.hostconfig.teardown)
        self.write_status()

    async def _apply(self, netmap: NetMap) -> None:
        if self.dataplane is not None:
            try:
                await self.dataplane.apply(netmap)
                await self._reconcile_host()
                self.apply_error = None
            except Exception as exc:
                # keep running on whatever applied; the next netmap retries
                log.exception("applying netmap %d failed", netmap.version)
                self.apply_error = f"netmap {netmap.version}: {exc}"
        for listener in self.listeners:
            listener(netmap)
        self.write_status()

    # -- heartbeats -----------------------------------------------------------

    async def _heartbeat_if_due(self) -> Heartbeat | None:
        if time.monotonic() - self._heartbeat_at < self.heartbeat_interval * 0.9:
            return None
        return await self.heartbeat()

    async def heartbeat(self) -> Heartbeat:
        # pyroute2's synchronous API runs its own loop: keep it off ours
        interfaces = await asyncio.to_thread(physical_interfaces)
        body = Heartbeat(
            agent_version=__version__,
            os=f"{platform.system()} {platform.release()}",
            uptime_s=round(time.monotonic() - self.started, 1),
            interfaces=[i.as_report() for i in interfaces],
            endpoints=endpoints(interfaces, self.enrollment.listen_port)[:16],
        )
        if self.dataplane is not None:
            status = self.dataplane.status()
            peers = peer_reports(status)
            body.lane_keys = self.dataplane.lane_keys
            body.candidates = self._candidates_sent = candidates_of(status)
            body.seen_ips = self._seen_sent = seen_ips_of(status)
            if self._peer_reports.due(peers):
                body.peers = peers
        return body

    # -- statistics -----------------------------------------------------------

    async def _stats_reporter(self) -> None:
        while True:
            await asyncio.sleep(self.stats_interval)
            if self.dataplane is not None:
                self.reports.take(self.dataplane.status())

    async def _reconcile_host(self) -> None:
        """Gateways, routes and cloaking; also re-run periodically, because a
        gateway's tunnel going down changes which routes should exist."""
        if self.dataplane is None or self.netmap is None:
            return
        status = self.dataplane.status()
        ifnames = {p.network_id: p.name for p in self.dataplane.ports.values()}
        ifnames |= {v.network_id: v.name for v in self.dataplane.vxlans.values()}
        dead = {node for node, peer in status.peers.items() if peer.dead}
        interfaces = await asyncio.to_thread(physical_interfaces)
        await asyncio.to_thread(self.hostconfig.resolve_controller)  # DNS: off the loop
        desired = self.hostconfig.desired(self.netmap, ifnames, dead, interfaces)
        await asyncio.to_thread(self.hostconfig.apply, desired)
        await self.localdns.reconcile(self.netmap, ifnames)

    async def _status_writer(self) -> None:
        while True:
            try:
                await self._reconcile_host()
            except Exception:
                log.exception("host configuration failed")
            dataplane = self.dataplane
            if dataplane and heartbeat_news(
                dataplane.status(), self._candidates_sent, self._seen_sent
            ):
                self.report_soon()
            try:
                self.write_status()
            except Exception:  # a status glitch must never stop the agent
                log.exception("writing status failed")
            await asyncio.sleep(STATUS_INTERVAL)

    # -- status ---------------------------------------------------------------

    def _contact(self) -> None:
        self.last_contact = time.time()
        self.last_error = None

    def _trouble(self, exc: ControlPlaneError) -> None:
        if str(exc) != self.last_error:
            log.warning("controller: %s", exc)
        self.last_error = str(exc)

    def write_status(self) -> None:
        """What ``skylan status`` shows, written atomically."""
        nm = self.netmap
        tunnel = self.dataplane.status() if self.dataplane is not None else None
        networks: list[NetworkEntry] = []
        for net in nm.networks if nm else []:
            own = nm.own_port(net) if nm else None
            peers = [
                PeerEntry(
                    name=p.name,
                    node_id=p.node_id,
                    ipv4=p.port.ipv4,
                    mac=p.port.mac,
                    endpoints=p.endpoints,
                    candidates=p.candidates,
                    tunnel=tunnel.peers.get(p.node_id) if tunnel else None,
                )
                for p in net.peers or []
                if p.node_id != self.enrollment.node_id
            ]
            networks.append(
                NetworkEntry(
                    name=net.name,
                    cidr4=net.cidr4,
                    mtu=net.mtu,
                    encrypted=net.encrypted,
                    cloaked=net.cloaked,
                    ipv4=own.ipv4 if own else None,
                    mac=own.mac if own else None,
                    peers=peers,
                )
            )
        status = AgentStatus(
            node=self.enrollment.name,
            node_id=self.enrollment.node_id,
            controller=self._cp.url,
            node_status=nm.node.status if nm else "unknown",
            netmap_version=nm.version if nm else None,
            last_contact=self.last_contact,
            last_error=self.last_error,
            apply_error=self.apply_error,
            dataplane=tunnel,
            host=self.hostconfig.status(),
            written_at=time.time(),
            networks=networks,
            dns=self.localdns.status(),
        )
        tmp = self.state.status_path.with_suffix(".tmp")
        tmp.write_text(status.model_dump_json(indent=2))
        tmp.replace(self.state.status_path)


def heartbeat_news(
    status: LaneStatus,
    candidates_sent: list[Candidate] | None,
    seen_sent: dict[str, list[str]] | None,
) -> str | None:
    """What the controller should hear before the next heartbeat is due: new
    candidates (a worker lane learnt its address; peers need it to connect), or
    a floating address that came or went (keepalived took a VIP over; the
    console and `skylan node list` show where it is now, not 15 s later)."""
    if candidates_of(status) != candidates_sent:
        return "candidates"
    if seen_ips_of(status) != seen_sent:
        return "floating addresses"
    return None


def seen_ips_of(status: LaneStatus) -> dict[str, list[str]]:
    """Per network, the addresses this machine announced by ARP (at most 64)."""
    return {port.network_id: port.announced[:64] for port in status.interfaces.values()}


def candidates_of(status: LaneStatus) -> list[Candidate]:
    """Each lane's reflexive address and ports on relays, as the heartbeat
    reports them."""
    lanes: list[tuple[int, str | None, list[str]]] = [(0, status.reflexive, status.relays)]
    lanes += [(s.lane, s.reflexive, s.relays) for s in status.lanes or [] if s.lane > 0]
    out = []
    for lane, reflexive, relays in sorted(lanes, key=lambda item: item[0]):
        if reflexive is not None:
            out.append(Candidate(kind="reflexive", address=reflexive, lane=lane))
        out += [Candidate(kind="relay", address=a, lane=lane) for a in relays]
    return out[:MAX_CANDIDATES]


async def reflector_target(enrollment: Enrollment) -> ReflectorTarget | None:
    """The controller's reflexive-address service: its UDP port of the same
    number as its HTTPS port, at its first address that resolves (to IPv4:
    the data plane's underlay)."""
    loop = asyncio.get_running_loop()
    for url in enrollment.urls:
        parsed = urlsplit(url)
        if parsed.hostname is None:
            continue
        port = parsed.port or 443
        try:
            infos = await loop.getaddrinfo(parsed.hostname, port, family=socket.AF_INET)
        except OSError as exc:
            log.warning("no reflexive address from %s: %s", url, exc)
            continue
        if infos:
            host = str(infos[0][4][0])
            key = credential_key(enrollment.credential)
            return ReflectorTarget((host, port), enrollment.node_id, key)
    return None

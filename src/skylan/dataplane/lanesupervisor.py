"""Worker lanes: the processes that run data-plane lanes 1..N-1.

One Python process tops out at about one core, so a node with more cores
scales out with ``IFF_MULTI_QUEUE``: every TAP gets one queue per lane, and
each lane is a whole data plane (engine, switches, UDP socket on
``listen_port + lane``) in its own process. Lane 0 stays in the agent,
configures the interfaces, and starts the others with this class.

The protocol on the pipes is JSON lines. The agent writes the lane's set-up
(the node key, which never touches a command line or a file) and then every
netmap with the TAP names lane 0 chose; the worker writes its status every
second, which is all the agent needs to report on it, so status stays a
synchronous read of the latest line. A worker that dies is restarted with
the last netmap; the workers die with the agent (stdin EOF, and the parent
death signal should the agent be killed).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from skylan.dataplane.discovery import ReflectorTarget
from skylan.model.agentstatus import (
    INTERFACE_COUNTERS,
    PEER_COUNTERS,
    LaneStatus,
    LaneSummary,
    TapStatus,
    TunnelStatus,
)
from skylan.model.netmap import NetMap
from skylan.tunnel.keys import StaticKeypair

log = logging.getLogger("skylan.dataplane.lanesupervisor")

RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 60.0  # a lane that ran this long before exiting starts the backoff over
STOP_TIMEOUT = 5.0
WRITE_TIMEOUT = 10.0
STATUS_LINE_LIMIT = 16 * 1024 * 1024  # a status with thousands of peers is a few MB


@dataclass
class Worker:
    lane: int
    process: asyncio.subprocess.Process | None = None
    status: LaneStatus | None = None
    exits: int = 0
    last_exit: int | None = None
    started: float = 0.0
    failures: int = 0  # exits in a row, each soon after its start
    backoff: float = 0.0  # the wait before its last restart
    reader: asyncio.Task[None] | None = field(default=None, repr=False)


class WorkerLanes:
    def __init__(
        self,
        key: StaticKeypair,
        listen_port: int,
        lanes: int,
        *,
        ack_thinning: bool = True,
        native: bool = False,
        reflector: ReflectorTarget | None = None,
    ) -> None:
        self.key = key
        self.native = native
        self.reflector = reflector
        self.listen_port = listen_port
        self.ack_thinning = ack_thinning
        self.workers = [Worker(lane) for lane in range(1, lanes)]
        self._last: str | None = None  # the last apply line, for restarts
        self._closing = False
        # what lanes counted before they exited: a restarted lane counts from
        # zero, and the node's counters must not go back when one does
        self.retired = retired_counters()

    async def start(self) -> None:
        for worker in self.workers:
            await self._spawn(worker)

    async def _spawn(self, worker: Worker) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "skylan.dataplane.laneprocess",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=STATUS_LINE_LIMIT,
        )
        worker.process = proc
        worker.status = None
        worker.started = time.monotonic()
        setup = {
            "private_key": base64.b64encode(self.key.private).decode(),
            "listen_port": self.listen_port,
            "lane": worker.lane,
            "lanes": len(self.workers) + 1,
            "ack_thinning": self.ack_thinning,
            "native": self.native,
        }
        if self.reflector is not None:
            setup["reflector"] = {
                "host": self.reflector.address[0],
                "port": self.reflector.address[1],
                "node_id": self.reflector.node_id,
                "key": base64.b64encode(self.reflector.key).decode(),
            }
        await self._write(worker, json.dumps(setup))
        if self._last is not None:
            await self._write(worker, self._last)
        worker.reader = asyncio.create_task(self._follow(worker), name=f"lane{worker.lane}")

    async def _write(self, worker: Worker, line: str) -> None:
        proc = worker.process
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return  # it is being restarted, and gets the last netmap then
        try:
            proc.stdin.write(line.encode() + b"\n")
            await asyncio.wait_for(proc.stdin.drain(), WRITE_TIMEOUT)
        except (BrokenPipeError, ConnectionResetError):
            pass  # its reader sees the exit and restarts it
        except TimeoutError:
            # a worker that stopped reading would block the agent's netmap
            # loop: replace it (its reader restarts it with the last netmap)
            log.error("lane %d stopped taking netmaps; restarting it", worker.lane)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def _follow(self, worker: Worker) -> None:
        """Keep the worker's latest status; restart it if it exits."""
        proc = worker.process
        assert proc is not None and proc.stdout is not None
        while True:
            try:
                line = await proc.stdout.readline()
            except ValueError:  # over the limit: skip it, the next one may fit
                continue
            if not line:
                break
            try:
                worker.status = LaneStatus.model_validate_json(line)
            except ValidationError:
                log.warning("lane %d wrote a malformed status line", worker.lane)
        worker.last_exit = await proc.wait()
        if worker.status is not None:  # its last report, at most a second old
            add_counters(self.retired, worker.status, keep_new=True)
        worker.status = None
        if self._closing:
            return
        worker.exits += 1
        # one that keeps failing (its UDP port taken, say) is retried ever more slowly
        quick = time.monotonic() - worker.started < STABLE_AFTER
        worker.failures = worker.failures + 1 if quick else 1
        delay = min(RESTART_DELAY * 2 ** (worker.failures - 1), MAX_RESTART_DELAY)
        worker.backoff = delay
        log.error(
            "lane %d exited with %s; restarting it in %.1f s",
            worker.lane,
            worker.last_exit,
            delay,
        )
        await asyncio.sleep(delay)
        if not self._closing:
            await self._spawn(worker)

    async def apply(self, netmap: NetMap, names: dict[str, str]) -> None:
        self._last = json.dumps({"netmap": netmap.model_dump(mode="json"), "names": names})
        for worker in self.workers:
            await self._write(worker, self._last)

    def statuses(self) -> list[LaneStatus]:
        """Each worker lane's latest status, or what is known of it."""
        out = []
        for worker in self.workers:
            proc = worker.process
            running = proc is not None and proc.returncode is None
            known = worker.status if worker.status and running else None
            status = known or LaneStatus(lane=worker.lane)
            out.append(
                status.model_copy(
                    update={
                        "lane": worker.lane,
                        "pid": proc.pid if proc is not None else None,
                        "running": running,
                        "restarts": worker.exits,
                        "last_exit": worker.last_exit,
                        "backoff_s": worker.backoff,
                    }
                )
            )
        return out

    async def close(self) -> None:
        self._closing = True
        for worker in self.workers:
            proc = worker.process
            if proc is None or proc.returncode is not None:
                continue
            if proc.stdin is not None:
                proc.stdin.close()  # EOF: the worker closes its TAP queues and exits
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for worker in self.workers:
            if worker.reader is not None:
                worker.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.reader


def retired_counters() -> LaneStatus:
    """Where the counters of lanes that exited are added up."""
    return LaneStatus(lane=-1, running=False)


def merged_status(
    own: LaneStatus, lanes: list[LaneStatus], retired: LaneStatus | None = None
) -> LaneStatus:
    """Lane 0's status with the worker lanes' traffic added in.

    Counters are summed, with what lanes counted before they last exited
    (``retired``), so the node's counters never go back; a tunnel's state
    (established, endpoint, RTT) is lane 0's, which every peer has; ``lanes``
    lists every lane's own view, counted since that lane's last start.
    """
    merged = own.model_copy(deep=True)
    for lane in lanes:
        adopted = {n: p for n, p in lane.peers.items() if n not in merged.peers}
        add_counters(merged, lane, keep_new=False)
        for name, iface in lane.interfaces.items():
            mine = merged.interfaces.get(name)
            if mine is not None:
                mine.announced = sorted(set(mine.announced) | set(iface.announced))
        for node, peer in adopted.items():  # not lane 0's peer (yet): this lane's view stands in
            merged.peers[node] = peer.model_copy()
        merged.fallbacks += [f for f in lane.fallbacks if f not in merged.fallbacks]
    if retired:
        add_counters(merged, retired, keep_new=False)
    merged.lanes = [_lane_summary(own), *(_lane_summary(lane) for lane in lanes)]
    return merged


def add_counters(into: LaneStatus, status: LaneStatus, *, keep_new: bool) -> None:
    """Add ``status``'s traffic counters to ``into``'s, per interface, peer
    and drop reason. An interface or peer that ``into`` lacks is skipped, or,
    with ``keep_new``, kept with its counters alone (to add up retired lanes).
    """
    for iface_name, theirs in status.interfaces.items():
        mine = into.interfaces.get(iface_name)
        if mine is None:
            if not keep_new:
                continue
            mine = into.interfaces[iface_name] = TapStatus(network_id=theirs.network_id)
        _add(mine, theirs, INTERFACE_COUNTERS)
    for node, peer in status.peers.items():
        found = into.peers.get(node)
        if found is None:
            if not keep_new:
                continue
            found = into.peers[node] = TunnelStatus()
        _add(found, peer, PEER_COUNTERS)
    for reason, n in status.drops.items():
        into.drops[reason] = into.drops.get(reason, 0) + n
    into.send_errors += status.send_errors


def _add(into: BaseModel, theirs: BaseModel, names: tuple[str, ...]) -> None:
    for name in names:
        setattr(into, name, getattr(into, name) + getattr(theirs, name))


def _lane_summary(status: LaneStatus) -> LaneSummary:
    peers = status.peers.values()
    return LaneSummary(
        lane=status.lane,
        listen_port=status.listen_port,
        pid=status.pid,
        running=status.running,
        restarts=status.restarts,
        tunnels=sum(p.tunnels for p in peers),
        established=sum(1 for p in peers if p.established),
        tx_bytes=sum(p.tx_bytes for p in peers),
        rx_bytes=sum(p.rx_bytes for p in peers),
        reflexive=status.reflexive,
        relays=status.relays,
    )

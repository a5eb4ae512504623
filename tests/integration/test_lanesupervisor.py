"""Worker lanes as processes: set-up, netmaps, status, bad input, restarts,
shutdown; and how lane 0 merges their status into the node's."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from skylan.dataplane import lanesupervisor
from skylan.dataplane.laneprocess import Worker
from skylan.dataplane.lanesupervisor import WorkerLanes, merged_status
from skylan.model.agentstatus import INTERFACE_COUNTERS, PEER_COUNTERS, LaneStatus
from skylan.model.netmap import NetMap, SelfInfo
from skylan.tunnel.keys import StaticKeypair


def free_port_pair() -> int:
    """A UDP port whose successor is free too (lane 1 listens there)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("0.0.0.0", 0))
            port: int = probe.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as nxt:
                try:
                    nxt.bind(("0.0.0.0", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free UDP port pair")


async def until(what: str, check: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): look at its state
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_worker_lane_follows_netmaps_survives_bad_input_and_restarts() -> None:
    async def scenario() -> None:
        key = StaticKeypair.generate()
        port = free_port_pair()
        lanes = WorkerLanes(key, port, 2)
        await lanes.start()
        try:
            (status,) = await until("a status", lambda: [s for s in statuses(lanes) if "pid" in s])
            ready = await until(
                "lane 1's own status", lambda: statuses(lanes)[0].get("listen_port")
            )
            assert ready == port + 1 and status["running"] and status["restarts"] == 0
            netmap = NetMap(
                version=7, node=SelfInfo(node_id="n", name="n", status="approved"), networks=[]
            )
            await lanes.apply(netmap, {})
            worker = lanes.workers[0]
            proc = worker.process
            assert proc is not None and proc.stdin is not None
            proc.stdin.write(b"{not json\n" + b'{"netmap": 3, "names": {}}\n')
            await proc.stdin.drain()
            await asyncio.sleep(1.5)  # two status periods: it is still there and reporting
            assert proc.returncode is None and statuses(lanes)[0]["running"]
            first = proc.pid
            proc.kill()
            await until(
                "the lane to be restarted",
                lambda: (
                    (s := statuses(lanes)[0])["restarts"] == 1
                    and s["running"]
                    and s["pid"] != first
                    and s.get("listen_port") == port + 1
                ),
            )
            second = lanes.workers[0].process
            assert second is not None
        finally:
            await lanes.close()
        assert second.returncode == 0  # stdin EOF: a clean exit, not a kill
        assert not alive(second.pid)
        assert statuses(lanes)[0]["running"] is False

    asyncio.run(scenario())


def lane(n: int, tx: int, established: bool, announced: list[str], **change: Any) -> LaneStatus:
    return LaneStatus.model_validate(lane_fields(n, tx, established, announced) | change)


def statuses(lanes: WorkerLanes) -> list[dict[str, Any]]:
    return [as_dict(s) for s in lanes.statuses()]


def as_dict(status: LaneStatus) -> dict[str, Any]:
    """The status as it goes on the wire (and into the status file)."""
    found: dict[str, Any] = status.model_dump(mode="json")
    return found


def lane_fields(n: int, tx: int, established: bool, announced: list[str]) -> dict[str, Any]:
    return {
        "lane": n,
        "listen_port": 51820 + n,
        "interfaces": {
            "sky0": {
                "network_id": "net",
                "tx_bytes": tx,
                "rx_bytes": 1,
                "tx_packets": 1,
                "rx_packets": 1,
                "announced": announced,
            }
        },
        "peers": {
            "b": {
                "established": established,
                "tx_bytes": tx,
                "rx_bytes": 2,
                "tx_packets": 3,
                "rx_packets": 4,
                "repaired": 1,
                "tunnels": 1,
            }
        },
        "drops": {"bad_mac": n},
        "send_errors": n,
        "fallbacks": ["sky0: TSO unavailable"],
    }


def test_lane_status_is_summed_into_lane_zeros() -> None:
    own = lane(0, 100, True, ["10.0.0.1"])
    merged = as_dict(merged_status(own, [lane(1, 50, False, ["10.0.0.9"]), lane(2, 5, True, [])]))
    assert merged["interfaces"]["sky0"]["tx_bytes"] == 155
    assert merged["interfaces"]["sky0"]["announced"] == ["10.0.0.1", "10.0.0.9"]
    peer = merged["peers"]["b"]
    assert peer["tx_bytes"] == 155 and peer["rx_packets"] == 12 and peer["repaired"] == 3
    assert peer["established"] is True  # lane 0's view of the tunnel
    assert merged["drops"] == {"bad_mac": 3} and merged["send_errors"] == 3
    assert merged["fallbacks"] == ["sky0: TSO unavailable"]
    assert [(x["lane"], x["tx_bytes"], x["established"]) for x in merged["lanes"]] == [
        (0, 100, 1),
        (1, 50, 0),
        (2, 5, 1),
    ]
    assert own.interfaces["sky0"].tx_bytes == 100  # lane 0's own status is left alone
    # a peer only a worker lane knows yet still shows
    only = merged_status(lane(0, 1, True, [], peers={}), [lane(1, 7, True, [])])
    assert only.peers["b"].tx_bytes == 7


def test_what_a_lane_counted_before_it_exited_stays_in_the_nodes_counters() -> None:
    own = lane(0, 100, True, [])
    before = as_dict(merged_status(own, [lane(1, 50, True, [])]))
    retired = lanesupervisor.retired_counters()
    lanesupervisor.add_counters(retired, lane(1, 50, True, []), keep_new=True)
    fields = lane_fields(1, 0, True, []) | {"drops": {}, "send_errors": 0}
    for section, names in (("interfaces", INTERFACE_COUNTERS), ("peers", PEER_COUNTERS)):
        for entry in fields[section].values():
            entry.update(dict.fromkeys(names, 0))  # it counts from zero again
    restarted = LaneStatus.model_validate(fields)
    after = as_dict(merged_status(own, [restarted], retired))
    for section, key, names in (
        ("interfaces", "sky0", INTERFACE_COUNTERS),
        ("peers", "b", PEER_COUNTERS),
    ):
        for k in names:
            assert after[section][key].get(k, 0) == before[section][key].get(k, 0), (section, k)
    assert after["drops"] == before["drops"] and after["send_errors"] == before["send_errors"]
    assert [x["tx_bytes"] for x in after["lanes"]] == [100, 0]  # each lane since its start
    # a second exit adds up; what lane 0 no longer has is left out, not invented
    lanesupervisor.add_counters(retired, lane(1, 7, True, []), keep_new=True)
    assert retired.peers["b"].tx_bytes == 57 and retired.send_errors == 2
    gone = merged_status(lane(0, 1, True, [], peers={}), [], retired)
    assert gone.peers == {} and gone.interfaces["sky0"].tx_bytes == 58


def test_a_restarted_lane_does_not_take_back_what_it_counted() -> None:
    async def scenario() -> None:
        port = free_port_pair()
        lanes = WorkerLanes(StaticKeypair.generate(), port, 2)
        await lanes.start()
        try:
            await until("lane 1's status", lambda: statuses(lanes)[0].get("listen_port"))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                for _ in range(3):  # no message of the tunnel's: each is counted as a drop
                    sender.sendto(b"\xee" * 40, ("127.0.0.1", port + 1))
            counted = await until(
                "the lane to count the drops",
                lambda: (
                    sum(statuses(lanes)[0].get("drops", {}).values()) == 3
                    and statuses(lanes)[0]["drops"]
                ),
            )
            proc = lanes.workers[0].process
            assert proc is not None
            first = proc.pid
            proc.kill()
            await until(
                "the lane to be restarted",
                lambda: (s := statuses(lanes)[0])["running"] and s["pid"] != first,
            )
            own = LaneStatus(lane=0)
            assert as_dict(lanes.retired)["drops"] == counted
            assert as_dict(merged_status(own, lanes.statuses(), lanes.retired))["drops"] == counted
        finally:
            await lanes.close()

    asyncio.run(scenario())


def test_a_worker_that_stops_reading_is_replaced_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production_timeout = lanesupervisor.WRITE_TIMEOUT
    monkeypatch.setattr(lanesupervisor, "WRITE_TIMEOUT", 0.5)

    async def scenario() -> None:
        lanes = WorkerLanes(StaticKeypair.generate(), free_port_pair(), 2)
        await lanes.start()
        try:
            await until("lane 1's status", lambda: statuses(lanes)[0].get("listen_port"))
            proc = lanes.workers[0].process
            assert proc is not None
            os.kill(proc.pid, signal.SIGSTOP)  # hung: it reads nothing more
            node = SelfInfo(node_id="n", name="n", status="approved")
            netmap = NetMap(version=1, node=node, networks=[])
            big = {f"net-{i}": "sky0" for i in range(20_000)}  # far more than a pipe holds
            started = time.monotonic()
            await lanes.apply(netmap, big)
            assert time.monotonic() - started < 5  # the agent went on
            await until("the hung lane to be killed", lambda: statuses(lanes)[0]["restarts"])
            # its replacement is a new Python process that must start before it
            # reads the big netmap: on a loaded machine that takes longer than the
            # short timeout this test judged the hung one by
            monkeypatch.setattr(lanesupervisor, "WRITE_TIMEOUT", production_timeout)
            await until(
                "the hung lane to be replaced",
                lambda: (
                    (s := statuses(lanes)[0])["restarts"] == 1
                    and s["running"]
                    and s.get("listen_port")
                ),
            )
        finally:
            await lanes.close()

    asyncio.run(scenario())


def test_a_lane_that_cannot_start_is_retried_ever_more_slowly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lanesupervisor, "RESTART_DELAY", 0.2)
    port = free_port_pair()

    async def scenario() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
            squatter.bind(("0.0.0.0", port + 1))  # lane 1's port is taken
            lanes = WorkerLanes(StaticKeypair.generate(), port, 2)
            await lanes.start()
            try:
                deadline = time.monotonic() + 20
                while statuses(lanes)[0]["restarts"] < 3 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                status = statuses(lanes)[0]
                # each quick exit doubles the wait: 0.2, 0.4, 0.8 s, ... (not a fixed 0.2)
                assert status["restarts"] >= 3, status
                assert status["backoff_s"] == pytest.approx(0.2 * 2 ** (status["restarts"] - 1))
                assert status["last_exit"] == 2  # "cannot start", not a crash
            finally:
                await lanes.close()

    asyncio.run(scenario())


def test_a_worker_lane_takes_the_agents_ack_thinning_setting() -> None:
    key = StaticKeypair.generate()
    setup: dict[str, Any] = {
        "private_key": base64.b64encode(key.private).decode(),
        "listen_port": free_port_pair(),
        "lane": 1,
        "lanes": 2,
    }
    for extra, expected in (({}, True), ({"ack_thinning": False}, False)):
        worker = Worker(setup | extra)
        try:
            assert worker.dataplane.ack_thinning is expected
        finally:
            worker.dataplane.close()

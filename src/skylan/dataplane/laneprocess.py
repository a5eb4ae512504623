"""``python -m skylan.dataplane.laneprocess``: one worker lane, run by the agent.

See :mod:`skylan.dataplane.lanesupervisor` for the protocol. The process lives as
long as its stdin: EOF closes its TAP queues and socket and ends it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
from typing import Any

from skylan.dataplane.discovery import ReflectorTarget
from skylan.dataplane.lane import Dataplane
from skylan.model.netmap import NetMap
from skylan.tunnel.keys import StaticKeypair

log = logging.getLogger("skylan.dataplane.laneprocess")

STATUS_INTERVAL = 1.0
MESSAGE_LIMIT = 64 * 1024 * 1024  # a netmap with thousands of peers is a few MB
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Should the agent be killed outright, its workers must not keep TAP
    queues (and so the agent's interfaces) alive."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Worker:
    def __init__(self, setup: dict[str, Any]) -> None:
        key = StaticKeypair.from_private(base64.b64decode(setup["private_key"]))
        self.dataplane = Dataplane(
            key,
            int(setup["listen_port"]),
            lane=int(setup["lane"]),
            lanes=int(setup["lanes"]),
            ack_thinning=bool(setup.get("ack_thinning", True)),
            native=bool(setup.get("native", False)),
            reflector=_reflector(setup.get("reflector")),
        )

    async def run(self, lines: asyncio.StreamReader) -> None:
        self.dataplane.start()
        log.info("lane %d on UDP port %d", self.dataplane.lane, self.dataplane.udp.port)
        reporter = asyncio.create_task(self._report())
        try:
            while line := await lines.readline():
                await self._apply(line)
        finally:
            reporter.cancel()
            self.dataplane.close()

    async def _apply(self, line: bytes) -> None:
        try:
            message = json.loads(line)
            netmap = NetMap.model_validate(message["netmap"])
            names = {str(k): str(v) for k, v in message["names"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("lane %d: ignoring a malformed message (%s)", self.dataplane.lane, exc)
            return
        try:
            await self.dataplane.apply(netmap, names)
        except Exception:  # keep forwarding on what applied; the next netmap retries
            log.exception("lane %d: applying netmap %d failed", self.dataplane.lane, netmap.version)
        self._write_status()

    def _write_status(self) -> None:
        sys.stdout.write(self.dataplane.status().model_dump_json() + "\n")
        sys.stdout.flush()

    async def _report(self) -> None:
        while True:
            self._write_status()
            await asyncio.sleep(STATUS_INTERVAL)


def _reflector(given: Any) -> ReflectorTarget | None:
    if not isinstance(given, dict):
        return None
    address = (str(given["host"]), int(given["port"]))
    return ReflectorTarget(address, str(given["node_id"]), base64.b64decode(given["key"]))


async def serve() -> int:
    """Read the set-up, then follow netmaps until stdin closes. All of stdin
    goes through one asyncio reader: a buffered read of the set-up line
    could swallow the netmap behind it."""
    loop = asyncio.get_running_loop()
    lines = asyncio.StreamReader(limit=MESSAGE_LIMIT, loop=loop)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(lines, loop=loop), sys.stdin)
    try:
        worker = Worker(json.loads(await lines.readline()))
    except (ValueError, KeyError, TypeError, OSError) as exc:
        print(f"skylan worker: cannot start: {exc}", file=sys.stderr)
        return 2
    await worker.run(lines)
    return 0


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the agent's Ctrl-C is the agent's to handle
    code = asyncio.run(serve())
    sys.stdout.flush()
    os._exit(code)  # nothing left to flush; skip interpreter teardown


if __name__ == "__main__":
    main()

"""iperf3 as a client in a lab host, its JSON report parsed.

An iperf3 server runs one test at a time, and after a test it needs a moment
to close the last one (longer on a lossy path) before it takes the next: a
client that comes too soon is told "the server is busy running a test". That
refusal is retried for a while; any other failure is an error at once."""

from __future__ import annotations

import json
import time
from typing import Any

from skylan.lab import Host

BUSY = "the server is busy"
BUSY_FOR = 15.0  # s: the longest a server stays busy closing a test


def iperf3(client: Host, server_ip: str, seconds: int, *options: str) -> dict[str, Any]:
    """The report of ``iperf3 -c server_ip -t seconds options -J`` (port 5201)."""
    give_up = time.monotonic() + BUSY_FOR
    while True:
        res = client.run(
            ["iperf3", "-c", server_ip, "-p", "5201", "-t", str(seconds), *options, "-J"],
            timeout=seconds + 60,
        )
        try:
            report: dict[str, Any] = json.loads(res.stdout) if res.stdout.strip() else {}
        except json.JSONDecodeError:
            report = {}
        error = str(report.get("error", ""))
        if BUSY in error and time.monotonic() < give_up:
            time.sleep(0.5)
            continue
        if not res.ok or error or "end" not in report:
            raise RuntimeError(
                f"iperf3 {' '.join(options)} to {server_ip}: "
                f"{error or res.stderr.strip()[-300:] or 'no result'}"
            )
        return report

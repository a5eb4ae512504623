"""Thin wrappers over iproute2 for namespaces, links and processes in them.

The lab drives the ``ip`` command rather than netlink directly: it is what an
operator would type to reproduce a topology, and its error messages are the
ones they would recognise.
"""

import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from skylan.lab.errors import LabError
from skylan.lab.procs import kill_pids

NETNS_DIR = Path("/run/netns")


def run(cmd: Sequence[str], *, check: bool = True, timeout: float = 30) -> str:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    cmd = ["ip"]
    if netns is not None:
        cmd += ["-n", netns]
    return run([*cmd, *args], check=check)


def list_netns() -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir())


def add_netns(name: str) -> None:
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", netns=name)


def pids_in(name: str) -> list[int]:
    out = run(["ip", "netns", "pids", name], check=False)
    return [int(tok) for tok in out.split() if tok.isdigit()]


def delete_netns(name: str) -> None:
    """Kill every process inside the namespace, then remove it.

    Deleting the namespace destroys the veth ends inside it, and with them
    their peers in other namespaces, so no link outlives the lab.
    """
    kill_pids(pids_in(name))
    for pid in pids_in(name):  # anything that forked while we were killing
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    ip("netns", "del", name, check=False)

"""Thin wrappers over iproute2 for namespaces, links and processes in them.

The lab drives the ``ip`` command rather than netlink directly: it is what an
operator would type to reproduce a topology, and its error messages are the
ones they would recognise.
"""

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from skylan.lab.errors import LabError
from skylan.lab.procs import kill_pids

NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")  # per-namespace files ``ip netns exec`` mounts over /etc


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
    # ``ip netns exec`` mounts this over /etc/resolv.conf: a host's resolver (which
    # an agent may point at itself) is its own, never the machine's
    own = ETC_NETNS / name
    own.mkdir(parents=True, exist_ok=True)
    (own / "resolv.conf").write_text(f"# the lab host {name}'s own resolver configuration\n")


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
    shutil.rmtree(ETC_NETNS / name, ignore_errors=True)

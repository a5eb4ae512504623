"""Pointing the host's resolver at the agent for skylan's zones only.

- **systemd-resolved**, where it runs (in this network namespace): per-link
  DNS. Each skylan interface gets the agent's address on it as its DNS server
  and ``~ZONE`` as a routing-only domain, so only those names go to the agent
  and every other name keeps its usual servers.
- **resolv.conf**, everywhere else: the agent's address goes first, above the
  file's own servers, on two marked lines. The agent forwards every name not
  its own to those servers, and if it is not running, the C library skips the
  refused address and asks the next server, so the host's DNS keeps working.
  Removed when the agent stops; any left by a crash are replaced at the next
  start.

"Make it so" functions; the file is rewritten in place (not renamed over), so a
bind mount (``ip netns exec``) or a symlink stays what it was.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

RESOLV_CONF = Path("/etc/resolv.conf")
MARK = "# skylan-agent: answers skylan's zones, forwards the rest (removed when it stops)"
RESOLVED_SOCKET = Path("/run/systemd/resolve/io.systemd.Resolve")


class ResolverError(RuntimeError):
    pass


def resolved_here() -> bool:
    """Whether systemd-resolved serves *this* network namespace: asked from
    another one (a container, ``ip netns exec``), it would take our interface
    names for its own links."""
    if shutil.which("resolvectl") is None or not RESOLVED_SOCKET.exists():
        return False
    try:
        own, init = Path("/proc/self/ns/net").stat(), Path("/proc/1/ns/net").stat()
        return (own.st_dev, own.st_ino) == (init.st_dev, init.st_ino)
    except OSError:
        return False


def resolvectl_commands(ifname: str, server: str, zones: list[str]) -> list[list[str]]:
    """What makes ``ifname``'s DNS the agent, for ``zones`` only."""
    return [
        ["resolvectl", "dns", ifname, server],
        ["resolvectl", "domain", ifname, *[f"~{zone}" for zone in zones]],
        ["resolvectl", "default-route", ifname, "false"],
    ]


def set_link(ifname: str, server: str, zones: list[str]) -> None:
    for cmd in resolvectl_commands(ifname, server, zones):
        _run(cmd)


def revert_link(ifname: str) -> None:
    _run(["resolvectl", "revert", ifname], quiet=True)


def _run(cmd: list[str], *, quiet: bool = False) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    if proc.returncode != 0 and not quiet:
        raise ResolverError(f"{' '.join(cmd)}: {proc.stderr.strip() or 'failed'}")


def without_ours(text: str) -> str:
    """resolv.conf as it was before the agent's lines."""
    out: list[str] = []
    skip = False
    for line in text.splitlines(keepends=True):
        if line.rstrip("\n") == MARK:
            skip = True  # the marker, and the nameserver line under it
            continue
        if skip:
            skip = False
            if line.startswith("nameserver"):
                continue
        out.append(line)
    return "".join(out)


def with_ours(text: str, server: str) -> str:
    return f"{MARK}\nnameserver {server}\n" + without_ours(text)


def nameservers(text: str) -> list[str]:
    """The servers a resolv.conf names (the agent forwards to them)."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            found.append(parts[1].split("%")[0])
    return found


def install(server: str, path: Path = RESOLV_CONF) -> list[str]:
    """Put the agent first in ``path``; the host's own servers, to forward to."""
    text = path.read_text() if path.exists() else ""
    original = without_ours(text)
    wanted = with_ours(text, server)
    if text != wanted:
        _write_in_place(path, wanted)
    return [ns for ns in nameservers(original) if ns != server]


def uninstall(path: Path = RESOLV_CONF) -> None:
    if not path.exists():
        return
    text = path.read_text()
    original = without_ours(text)
    if original != text:
        _write_in_place(path, original)


def _write_in_place(path: Path, text: str) -> None:
    try:
        with path.open("r+" if path.exists() else "w") as f:
            f.seek(0)
            f.write(text)
            f.truncate()
    except OSError as exc:
        raise ResolverError(f"cannot write {path}: {exc}") from exc

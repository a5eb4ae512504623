"""A machine in the lab: a network namespace plus the processes run in it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from skylan.lab.errors import LabError
from skylan.lab.netns import ETC_NETNS
from skylan.lab.waiting import wait_for


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class Host:
    """One namespace of the lab.

    ``underlay_ip`` is the address peers use to reach it (for a host behind NAT
    that is its private address; ``public_ip`` is then the router's).
    """

    name: str
    netns: str
    underlay_ip: str
    public_ip: str
    _on_spawn: Callable[[subprocess.Popen[bytes]], None] = field(repr=False)
    interfaces: dict[str, str] = field(default_factory=dict)

    @property
    def resolv_conf(self) -> Path:
        """This host's /etc/resolv.conf (``ip netns exec`` mounts it there)."""
        return ETC_NETNS / self.netns / "resolv.conf"

    def argv(self, cmd: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *cmd]

    def run(
        self,
        cmd: Sequence[str],
        *,
        check: bool = False,
        timeout: float = 60,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> RunResult:
        try:
            proc = subprocess.run(
                self.argv(cmd),
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
                env=dict(env) if env is not None else None,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"{self.name}: {' '.join(cmd)} timed out after {timeout}s") from exc
        result = RunResult(proc.returncode, proc.stdout, proc.stderr)
        if check and not result.ok:
            raise LabError(
                f"{self.name}: {' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}"
            )
        return result

    def spawn(
        self,
        cmd: Sequence[str],
        *,
        stdout: int | IO[bytes] | None = subprocess.DEVNULL,
        stderr: int | IO[bytes] | None = subprocess.DEVNULL,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a background process in this host; the lab kills it on close."""
        proc = subprocess.Popen(
            self.argv(cmd),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
        self._on_spawn(proc)
        return proc

    def ping(self, address: str, *, count: int = 1, timeout: float = 2) -> bool:
        res = self.run(
            ["ping", "-n", "-q", "-c", str(count), "-W", str(timeout), address],
            timeout=count * timeout + 5,
        )
        return res.ok

    def wait_listening(self, port: int, *, udp: bool = False, timeout: float = 15) -> None:
        """Until something in this host listens on ``port``: a server just
        spawned takes a moment to bind (longer on a loaded machine)."""
        kind = "-lunH" if udp else "-ltnH"

        def bound() -> str:
            return self.run(["ss", kind, f"sport = :{port}"], timeout=10).stdout.strip()

        wait_for(f"{'udp' if udp else 'tcp'}/{port} to listen in {self.name}", bound, timeout)

    def capture(self, interface: str, path: Path, *expression: str) -> subprocess.Popen[bytes]:
        """tcpdump on ``interface`` into ``path``, returned once it captures
        (it says so on stderr): a capture started late misses what it is for."""
        proc = self.spawn(
            ["tcpdump", "--immediate-mode", "-i", interface, "-U", "-w", str(path), *expression],
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        first = proc.stderr.readline()
        if b"listening on" not in first:
            proc.kill()
            raise LabError(f"tcpdump on {self.name} {interface}: {first.decode().strip()}")
        return proc

"""Running skylan itself inside a lab: a controller on one host, agents on
others, and the ``skylan`` CLI wherever it is needed.

Shared by ``skylan demo``, the end-to-end tests and the benchmarks, so they
all exercise the product the way a user would: through its commands.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from skylan.controller.tls import fingerprint_of_pem
from skylan.lab.errors import LabError
from skylan.lab.host import Host
from skylan.lab.waiting import wait_for

RELAY_PORT = 3478
CONTROLLER_PORT = 8443


class Deployment:
    """A controller and agents in a lab, with state under ``workdir``."""

    def __init__(self, workdir: Path, admin_token: str | None = None) -> None:
        self.workdir = workdir
        self.admin_token = admin_token or "skyadm_" + secrets.token_urlsafe(24)
        self.controller_host: Host | None = None
        self.url = ""

    @property
    def controller_data(self) -> Path:
        return self.workdir / "controller"

    def start_controller(self, host: Host, port: int = CONTROLLER_PORT) -> subprocess.Popen[bytes]:
        log = (self.workdir / "controller.log").open("ab")
        proc = host.spawn(
            [
                sys.executable,
                "-m",
                "skylan",
                "controller",
                "serve",
                "--data-dir",
                str(self.controller_data),
                "--listen",
                f"{host.underlay_ip}:{port}",
                "--poll-interval",
                "0.5",
            ],
            env={**os.environ, "SKYLAN_ADMIN_TOKEN": self.admin_token, "SKYLAN_LOG": "warning"},
            stdout=log,
            stderr=log,
        )
        self.controller_host = host
        self.url = f"https://{host.underlay_ip}:{port}"
        probe = f"import httpx; httpx.get('{self.url}/api/v1/health', verify=False)"
        wait_for("the controller to answer", lambda: host.run([sys.executable, "-c", probe]).ok)
        return proc

    def start_relay(
        self, host: Host, name: str, port: int = RELAY_PORT, *, tls_port: int | None = None
    ) -> subprocess.Popen[bytes]:
        """Add relay ``name`` at ``host`` to the controller and run it there
        (`skylan relay serve`, with the TCP fallback on ``tls_port``);
        returns once the controller has its key."""
        made = self.admin("relay", "add", name, f"{host.underlay_ip}:{port}", "--json")
        log = (self.workdir / f"relay-{name}.log").open("ab")
        proc = host.spawn(
            [
                sys.executable,
                "-m",
                "skylan",
                "relay",
                "serve",
                self.url,
                made["credential"],
                "--fingerprint",
                self.admin_env()["SKYLAN_FINGERPRINT"],
                "--port",
                str(port),
                "--state-dir",
                str(self.workdir / "relays" / name),
                *(["--tls-port", str(tls_port)] if tls_port else []),
            ],
            stdout=log,
            stderr=log,
        )

        def started() -> bool:
            relays = self.admin("relay", "list", "--json")
            return any(r["name"] == name and r["public_key"] for r in relays)

        wait_for(f"relay {name} to start", started)
        return proc

    def admin_env(self) -> dict[str, str]:
        return {
            "SKYLAN_URL": self.url,
            "SKYLAN_TOKEN": self.admin_token,
            "SKYLAN_FINGERPRINT": fingerprint_of_pem(
                (self.controller_data / "tls.crt").read_bytes()
            ),
            "SKYLAN_CONFIG": str(self.workdir / "cli.json"),
        }

    def skylan(self, host: Host, *args: str, admin: bool = False) -> Any:
        """Run the ``skylan`` CLI on ``host``; parsed JSON when ``--json`` is given."""
        env = {**os.environ, "COLUMNS": "160", **(self.admin_env() if admin else {})}
        res = host.run([sys.executable, "-m", "skylan", *args], env=env, timeout=60)
        if not res.ok:
            raise LabError(f"skylan {' '.join(args)} on {host.name}: {res.stderr.strip()}")
        return json.loads(res.stdout) if "--json" in args else res.stdout

    def admin(self, *args: str) -> Any:
        """The CLI as the administrator, run on the controller's host."""
        if self.controller_host is None:
            raise LabError("start the controller first")
        return self.skylan(self.controller_host, *args, admin=True)

    def state_dir(self, host: Host) -> Path:
        return self.workdir / "agents" / host.name

    def join(
        self,
        host: Host,
        token: str,
        *,
        workers: int = 1,
        ack_thinning: bool = True,
        dataplane: str | None = None,
    ) -> subprocess.Popen[bytes]:
        """`skylan agent join` on ``host``; the agent keeps running. Its data
        plane is ``dataplane``, else ``$SKYLAN_AGENT_DATAPLANE``, else auto."""
        kind = dataplane or os.environ.get("SKYLAN_AGENT_DATAPLANE", "auto")
        log = (self.workdir / f"agent-{host.name}.log").open("ab")
        return host.spawn(
            [
                sys.executable,
                "-m",
                "skylan",
                "agent",
                "join",
                self.url,
                token,
                "--state-dir",
                str(self.state_dir(host)),
                "--hostname",
                host.name,
                "--workers",
                str(workers),
                "--ack-thinning" if ack_thinning else "--no-ack-thinning",
                "--dataplane",
                kind,
                # a lab host's own resolv.conf: never the machine's systemd-resolved
                "--dns",
                "resolv-conf",
            ],
            stdout=log,
            stderr=log,
        )

    def status(self, host: Host) -> Any:
        return self.skylan(host, "status", "--json", "--state-dir", str(self.state_dir(host)))

"""Run ``skylan controller serve`` as a real process (HTTPS on loopback)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from skylan.client import Skylan
from skylan.controller.tls import fingerprint_of_pem
from skylan.tunnel.keys import StaticKeypair


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Served:
    url: str
    token: str
    fingerprint: str
    proc: subprocess.Popen[bytes]
    data_dir: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve(
    data_dir: Path,
    token: str,
    database_url: str | None = None,
    *,
    port: int | None = None,
    log: Path | None = None,
    extra: list[str] | None = None,
) -> Served:
    port = port or free_port()
    env = {**os.environ, "SKYLAN_ADMIN_TOKEN": token, "SKYLAN_LOG": "warning"}
    cmd = [
        sys.executable,
        "-m",
        "skylan",
        "controller",
        "serve",
        "--data-dir",
        str(data_dir),
        "--listen",
        f"127.0.0.1:{port}",
    ]
    if database_url:
        cmd += ["--database-url", database_url]
    cmd += extra or []
    out = log.open("wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"controller exited with {proc.returncode}")
        try:
            httpx.get(url + "/api/v1/health", verify=False, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("controller did not start")
    fingerprint = fingerprint_of_pem((data_dir / "tls.crt").read_bytes())
    return Served(url, token, fingerprint, proc, data_dir)


def enrol_nodes(
    served: Served, network: str, cidr: str, count: int, names: str = "node"
) -> list[str]:
    """A network and ``count`` nodes (``names`` 0, 1, ...) enrolled in it
    through the API, as an agent does; their credentials."""
    with Skylan(served.url, served.token, fingerprint=served.fingerprint) as sky:
        sky.create_network(network, cidr)
        token = sky.create_token(networks=[network], max_uses=count).token
    credentials = []
    for i in range(count):
        r = httpx.post(
            f"{served.url}/api/v1/agent/enroll",
            verify=False,
            json={
                "token": token,
                "public_key": StaticKeypair.generate().public_b64,
                "hostname": f"{names}{i}",
                "endpoints": [f"198.18.9.{i + 1}:51820"],
            },
        )
        assert r.status_code == 201, r.text
        credentials.append(r.json()["credential"])
    return credentials

"""No secret leaves a client before the controller's certificate pin is proven.

An impostor TLS server (any certificate but the pinned one) records every byte
of application data it receives after the handshake. The agent's join, the
CLI's login and the SDK must give it none: not the join token, not a
``Bearer skyadm_…``. The same server, pinned correctly, does receive the
request, which shows the recorder hears what is sent.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from skylan.client import Skylan, SkylanError
from skylan.controller.tls import ensure_certificate
from skylan.model.jointoken import JoinToken


@dataclass
class Impostor:
    """A TLS (or plain TCP) server that records what clients send it."""

    port: int
    fingerprint: str  # of its own certificate
    connections: int = 0
    received: bytearray = field(default_factory=bytearray)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def _serve(listener: socket.socket, tls: ssl.SSLContext | None, box: Impostor) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # closed: the test is over
        box.connections += 1
        conn.settimeout(2)
        try:
            stream = tls.wrap_socket(conn, server_side=True) if tls else conn
            while chunk := stream.recv(65536):
                box.received += chunk
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()


@pytest.fixture
def impostor(tmp_path: Path) -> Iterator[Impostor]:
    files = ensure_certificate(tmp_path / "impostor")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(files.cert, files.key)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        box = Impostor(listener.getsockname()[1], files.fingerprint)
        thread = threading.Thread(target=_serve, args=(listener, tls, box), daemon=True)
        thread.start()
        yield box
        listener.shutdown(socket.SHUT_RDWR)
    thread.join(5)


PINNED_ELSEWHERE = "ab" * 32  # the certificate the client expects: not the impostor's
ADMIN = "skyadm_" + "s3cret" * 8


def _cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SKYLAN_CONFIG": str(tmp_path / "cli.json"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "skylan", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_agent_join_sends_nothing_to_an_impostor(impostor: Impostor, tmp_path: Path) -> None:
    token = JoinToken(PINNED_ELSEWHERE, "joinsecret" * 4)
    r = _cli(
        [
            "agent",
            "join",
            impostor.url,
            str(token),
            "--state-dir",
            str(tmp_path / "st"),
            "--no-run",
        ],
        tmp_path,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "does not match the pinned fingerprint" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert impostor.connections >= 1  # it did try: the handshake happened
    assert bytes(impostor.received) == b""
    assert not (tmp_path / "st" / "node.json").exists()


def test_login_sends_nothing_to_an_impostor(impostor: Impostor, tmp_path: Path) -> None:
    r = _cli(["login", impostor.url, "--token", ADMIN, "--fingerprint", PINNED_ELSEWHERE], tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "does not match the pinned fingerprint" in r.stderr
    assert impostor.connections >= 1
    assert bytes(impostor.received) == b""
    assert not (tmp_path / "cli.json").exists()


def test_sdk_sends_nothing_to_an_impostor(impostor: Impostor) -> None:
    with (
        Skylan(impostor.url, ADMIN, fingerprint=PINNED_ELSEWHERE) as sky,
        pytest.raises(SkylanError, match="does not match the pinned fingerprint"),
    ):
        sky.networks()
    assert impostor.connections >= 1
    assert bytes(impostor.received) == b""


def test_the_recorder_hears_a_correctly_pinned_request(impostor: Impostor) -> None:
    """The control: pinned to this server's own certificate, the SDK talks to it
    (and the server, which answers nothing, does receive the token)."""
    with (
        Skylan(impostor.url, ADMIN, fingerprint=impostor.fingerprint, timeout=1) as sky,
        pytest.raises(SkylanError),
    ):
        sky.networks()
    assert ADMIN.encode() in bytes(impostor.received)


def test_plain_http_is_refused_before_sending(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        box = Impostor(listener.getsockname()[1], "")
        thread = threading.Thread(target=_serve, args=(listener, None, box), daemon=True)
        thread.start()
        with (
            Skylan(f"http://127.0.0.1:{box.port}", ADMIN, fingerprint=PINNED_ELSEWHERE) as sky,
            pytest.raises(SkylanError, match="refusing plain HTTP"),
        ):
            sky.networks()
        listener.shutdown(socket.SHUT_RDWR)
    thread.join(5)
    assert box.connections == 0 and bytes(box.received) == b""

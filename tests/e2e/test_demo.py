"""``skylan demo --console``, as ``make demo`` runs it: the tour, then the web
console relayed to loopback, then a clean exit on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest

from skylan.lab import netns

PORT = 18444
pytestmark = pytest.mark.slow


def test_demo_tour_then_console_then_clean_exit() -> None:
    before = set(netns.list_netns())
    proc = subprocess.Popen(
        [sys.executable, "-m", "skylan", "demo", "--console", "--console-port", str(PORT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
        start_new_session=True,
    )
    out: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        token = None
        while time.monotonic() < deadline and token is None:
            line = proc.stdout.readline()
            if not line:
                break
            out.append(line)
            found = re.search(r"log in with the admin token: (\S+)", line)
            token = found.group(1) if found else None
        assert token, "".join(out)
        text = "".join(out)
        assert text.count("reachable") == 5 and "unreachable" not in text, text
        assert re.search(r"on a: c\.demo\.skylan\.internal is 172\.16\.1\.\d+", text), text
        assert re.search(r"on d: b\.demo\.skylan\.internal is 172\.16\.1\.\d+", text), text
        # d sits behind a symmetric NAT: direct to the public nodes, relayed to c
        assert re.search(r"│ c .*relayed via r1", text), text
        assert re.search(r"│ a .*direct", text), text

        with httpx.Client(base_url=f"https://127.0.0.1:{PORT}", verify=False) as web:
            page = web.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf
            web.post("/login", data={"token": token, "csrf": csrf.group(1), "next": "/"})
            home = web.get("/")
            assert home.status_code == 200 and "demo" in home.text and ">4</span>" in home.text

        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0, text + rest
        assert "lab removed" in rest
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            subprocess.run([sys.executable, "-m", "skylan", "lab", "clean", "--all"], check=False)
    assert set(netns.list_netns()) <= before

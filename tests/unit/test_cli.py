import socket
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from skylan import __version__
from skylan.agent.state import Enrollment, StateDir
from skylan.cli.main import app


def test_version() -> None:
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0
    assert __version__ in res.stdout


def test_help_lists_groups() -> None:
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    listed = {
        line.split()[1]
        for line in res.stdout.splitlines()
        if line.startswith("│ ") and len(line.split()) > 2 and line.split()[1].isalpha()
    }
    groups = {"controller", "agent", "net", "node", "token", "port", "gateway", "cloak", "lab"}
    assert groups | {"login", "status", "demo"} <= listed, listed


def agent_run_on_a_held_port(
    state_dir: Path, *extra: str, saved_port: int | None = None
) -> tuple[int, subprocess.CompletedProcess[str]]:
    """``skylan agent run`` in a subprocess while another socket holds a UDP
    port, for a node enrolled with ``saved_port`` (default: the held one);
    ``extra`` arguments may name the held port as ``{port}``."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("0.0.0.0", 0))
    try:
        port: int = holder.getsockname()[1]
        StateDir(state_dir).save_enrollment(
            Enrollment("n1", "n1", "http://127.0.0.1:9", "00" * 32, "cred", saved_port or port)
        )
        argv = [sys.executable, "-m", "skylan", "agent", "run", "--state-dir", str(state_dir)]
        res = subprocess.run(
            [*argv, *(arg.format(port=port) for arg in extra)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.close()
    return port, res


def test_agent_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    """A second agent (or another VPN) on the port: a one-line error and exit 1,
    before anything is set up, instead of a traceback or a silently shared port."""
    port, res = agent_run_on_a_held_port(tmp_path)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(f"error: UDP port {port} on 0.0.0.0 is already in use")
    assert not any("Traceback" in line for line in lines)


def test_agent_run_moves_the_tunnels_to_another_port_and_keeps_it(tmp_path: Path) -> None:
    """``--listen-port`` changes the saved port (a node need not enroll again to
    move off a port another program took); the run then uses the new one, here
    held by another socket, so the error names it."""
    port, res = agent_run_on_a_held_port(tmp_path, "--listen-port", "{port}", saved_port=51820)
    assert res.returncode == 1, res.stderr
    assert f"udp/51820 -> udp/{port}" in res.stdout
    assert res.stderr.strip().splitlines()[-1].startswith(f"error: UDP port {port} on 0.0.0.0")
    state = StateDir(tmp_path)
    assert state.enrollment().listen_port == port
    bad = CliRunner().invoke(
        app, ["agent", "run", "--state-dir", str(tmp_path), "--listen-port", "70000"]
    )
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert state.enrollment().listen_port == port  # a refused value changes nothing

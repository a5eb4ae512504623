import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skylan import __version__
from skylan.agent.state import Enrollment, StateDir
from skylan.cli import output
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


def _status_file(tmp_path: Path, text: str) -> Path:
    from skylan.agent.state import StateDir

    state = StateDir(tmp_path)
    state.status_path.parent.mkdir(parents=True, exist_ok=True)
    state.status_path.write_text(text)
    return tmp_path


def test_status_shows_what_the_agent_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from skylan.model.agentstatus import (
        AgentStatus,
        HostStatus,
        LaneStatus,
        NetworkEntry,
        PeerEntry,
        TapStatus,
        TunnelStatus,
    )

    tunnel = TunnelStatus(established=True, endpoint="198.18.0.2:51820", rtt_ms=0.42, tx_bytes=2048)
    written = AgentStatus(
        node="a",
        node_id="n-a",
        controller="https://198.18.0.1:8443",
        node_status="approved",
        netmap_version=7,
        last_contact=time.time(),
        last_error=None,
        apply_error=None,
        dataplane=LaneStatus(
            lane=0,
            dataplane="native",
            listen_port=51820,
            interfaces={"sky0": TapStatus(network_id="net", offloads=["tso"])},
            peers={"n-b": tunnel},
            drops={"bad_mac": 3},
        ),
        host=HostStatus(applied=True),
        written_at=time.time(),
        networks=[
            NetworkEntry(
                name="prod",
                cidr4="10.1.0.0/24",
                mtu=1400,
                encrypted=True,
                cloaked=False,
                ipv4="10.1.0.1",
                mac=None,
                peers=[
                    PeerEntry(
                        name="b",
                        node_id="n-b",
                        ipv4="10.1.0.2",
                        mac=None,
                        endpoints=[],
                        tunnel=tunnel,
                    )
                ],
            )
        ],
    )
    state = _status_file(tmp_path, written.model_dump_json())
    # the console measured its width when first imported, maybe with no terminal
    monkeypatch.setattr(output.console, "width", 200)
    res = CliRunner().invoke(app, ["status", "--state-dir", str(state)])
    assert res.exit_code == 0, res.output
    assert "198.18.0.2:51820" in res.output and "0.42 ms" in res.output and "2.0 KiB" in res.output
    assert "data plane (native): udp/51820" in res.output and "bad_mac=3" in res.output
    as_json = CliRunner().invoke(app, ["status", "--json", "--state-dir", str(state)])
    assert AgentStatus.model_validate_json(as_json.output) == written


def test_status_of_a_file_it_does_not_understand_is_one_line(tmp_path: Path) -> None:
    state = _status_file(tmp_path, '{"node": "a", "networks": "not a list"}')
    res = subprocess.run(
        [sys.executable, "-m", "skylan", "status", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a status this version of skylan understands" in lines[0]
    assert "Traceback" not in res.stdout + res.stderr


def test_every_expected_error_it_names_exists() -> None:
    """The CLI names the errors it shows as one line rather than importing them:
    a misspelt name would quietly turn them back into tracebacks."""
    import importlib

    from skylan.cli.errors import EXPECTED_ERRORS, expected

    for module_name, name in EXPECTED_ERRORS:
        kind = getattr(importlib.import_module(module_name), name)
        assert issubclass(kind, Exception), (module_name, name)
        assert expected(kind.__new__(kind))
    assert not expected(ValueError("a bug"))


def test_an_administrators_command_does_not_load_the_agent_or_the_controller() -> None:
    """Every `skylan net …` pays the CLI's start-up; the lab tests make hundreds."""
    probe = (
        "import sys; import skylan.cli.main; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('skylan.'))))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    heavy = {
        "skylan.agent.state",
        "skylan.agent.controlplane",
        "skylan.agent.daemon",
        "skylan.model.netmap",
        "skylan.model.agentstatus",
        "skylan.lab.product",
        "skylan.tunnel.keys",
        "importlib.metadata",
    }
    assert not loaded & heavy, loaded & heavy

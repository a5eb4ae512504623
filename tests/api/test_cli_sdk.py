"""The CLI and the SDK against a real `skylan controller serve` over HTTPS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from skylan.client import Skylan, SkylanError

from .served import Served, serve

ADMIN = "skyadm_cli-test-admin-token-0123456789"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = serve(tmp_path_factory.mktemp("ctl"), ADMIN)
    try:
        yield s
    finally:
        s.stop()


def cli(args: list[str], config: Path, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SKYLAN_CONFIG": str(config), "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "skylan", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_sdk_pins_the_certificate(served: Served) -> None:
    with Skylan(served.url, ADMIN, fingerprint=served.fingerprint) as sky:
        assert sky.health()["status"] == "ok"
    with (
        Skylan(served.url, ADMIN, fingerprint="0" * 64) as sky,
        pytest.raises(SkylanError, match="does not match the pinned"),
    ):
        sky.networks()
    with Skylan(served.url, ADMIN) as sky, pytest.raises(SkylanError, match="cannot reach"):
        sky.networks()  # self-signed and unpinned: refused by normal verification
    with (
        Skylan(served.url, "skyadm_wrong", fingerprint=served.fingerprint) as sky,
        pytest.raises(SkylanError, match="invalid or revoked") as err,
    ):
        sky.networks()
    assert err.value.status == 401


def test_sdk_round_trip(served: Served) -> None:
    with Skylan(served.url, ADMIN, fingerprint=served.fingerprint) as sky:
        net = sky.create_network("sdk", "10.77.0.0/24", cloaked=True)
        (made,) = sky.audit(action="network.create", target="sdk").events
        assert made.after is not None and made.after["cloaked"] is True
        assert net.cloaked and sky.network("sdk").id == net.id
        tok = sky.create_token(networks=["sdk"], max_uses=2)
        assert tok.join_command.startswith(f"skylan agent join {served.url} sky1.")
        assert [t.id for t in sky.tokens()] == [tok.id]
        with pytest.raises(SkylanError, match="overlaps"):
            sky.create_network("sdk2", "10.77.0.0/16")
        sky.revoke_token(tok.id)
        assert sky.tokens()[0].state == "revoked"
        sky.delete_network("sdk")
        with pytest.raises(SkylanError, match="not found"):
            sky.network("sdk")


def test_cli_login_and_commands(served: Served, tmp_path: Path) -> None:
    config = tmp_path / "cli.json"
    r = cli(["net", "list"], config)
    assert r.returncode != 0 and "skylan login" in r.stderr and "Traceback" not in r.stderr
    r = cli(["login", served.url, "--token", ADMIN, "--fingerprint", served.fingerprint], config)
    assert r.returncode == 0, r.stderr
    assert (config.stat().st_mode & 0o777) == 0o600
    r = cli(["net", "create", "office", "--cidr", "10.88.0.0/24", "--cloaked"], config)
    assert r.returncode == 0, r.stderr
    r = cli(["net", "list", "--json"], config)
    nets = json.loads(r.stdout)
    assert [n["name"] for n in nets] == ["office"] and nets[0]["cloaked"] is True
    r = cli(["net", "list"], config)
    assert "office" in r.stdout and "10.88.0.0/24" in r.stdout
    r = cli(["token", "create", "--network", "office", "--uses", "3"], config)
    assert r.returncode == 0 and "skylan agent join" in r.stdout
    r = cli(["token", "list", "--json"], config)
    assert json.loads(r.stdout)[-1]["max_uses"] == 3
    r = cli(["net", "create", "bad", "--cidr", "10.88.0.5/24"], config)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "host bits set" in r.stderr, r.stderr
    r = cli(["port", "attach", "office", "ghost"], config)
    assert r.returncode == 1 and "node 'ghost' not found" in r.stderr
    r = cli(["node", "list", "--json"], config)
    assert json.loads(r.stdout) == []
    r = cli(
        [
            "policy",
            "allow",
            "office",
            "tcp",
            "--port",
            "5432",
            "--from",
            "tag:web",
            "--to",
            "tag:db",
            "--description",
            "postgres",
        ],
        config,
    )
    assert r.returncode == 0 and "tag:web" in r.stdout, r.stderr
    r = cli(["policy", "allow", "office", "tcp", "--from", "tag:web"], config)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "port_from" in r.stderr
    r = cli(["policy", "default", "office", "deny"], config)
    assert r.returncode == 0 and "default policy deny" in r.stdout
    r = cli(["policy", "default", "office", "maybe"], config)
    assert r.returncode == 1 and "policy" in r.stderr and "Traceback" not in r.stderr
    r = cli(["policy", "list", "office"], config)
    assert "default policy: deny" in r.stdout and "postgres" in r.stdout
    (rule,) = json.loads(cli(["policy", "list", "office", "--json"], config).stdout)
    r = cli(["policy", "check", "office", "10.0.0.1", "nobody", "tcp/5432"], config)
    assert r.returncode == 1 and "neither a member" in r.stderr and r.stderr.count("\n") == 1
    r = cli(["policy", "check", "office", "10.0.0.1", "nobody", "tcp/x"], config)
    assert r.returncode != 0 and "tcp/5432" in r.stderr and "Traceback" not in r.stderr
    r = cli(["policy", "remove", "office", rule["id"]], config)
    assert (
        r.returncode == 0
        and json.loads(cli(["policy", "list", "office", "--json"], config).stdout) == []
    )
    r = cli(["dns", "add", "office", "vip", "10.88.0.100"], config)
    assert r.returncode == 0 and "vip.office.skylan.internal" in r.stdout, r.stderr
    r = cli(["dns", "set", "office", "vip", "--name", "db", "--address", "10.88.0.101"], config)
    assert r.returncode == 0 and "db.office.skylan.internal" in r.stdout, r.stderr
    assert "10.88.0.101" in r.stdout
    r = cli(["dns", "set", "office", "db"], config)
    assert r.returncode != 0 and "--name" in r.stderr and "Traceback" not in r.stderr
    r = cli(["dns", "set", "office", "db", "--address", "10.99.0.1"], config)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "is not in" in r.stderr
    r = cli(["dns", "remove", "office", "db"], config)
    assert (
        r.returncode == 0
        and json.loads(cli(["dns", "list", "office", "--json"], config).stdout) == []
    )
    r = cli(["net", "delete", "office"], config)
    assert r.returncode == 0
    r = cli(["relay", "add", "r1", "198.18.0.9:3478"], config)
    assert r.returncode == 0 and "skylan relay serve" in r.stdout and "skyrelay_" in r.stdout
    assert f"--fingerprint {served.fingerprint}" in r.stdout
    r = cli(["relay", "list"], config)
    assert "r1" in r.stdout and "not started" in r.stdout
    r = cli(["relay", "add", "r1", "198.18.0.9:3478"], config)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "exists" in r.stderr
    r = cli(["relay", "add", "r2", "nowhere"], config)
    assert r.returncode == 1 and "endpoint" in r.stderr
    r = cli(["audit", "--action", "relay.", "--json"], config)
    (made,) = json.loads(r.stdout)["events"]
    assert made["action"] == "relay.create" and made["target"] == "r1"
    r = cli(["audit", "--since", "1h"], config)
    assert r.returncode == 0 and "network.create" in r.stdout and "office" in r.stdout
    r = cli(["audit", "--since", "yesterday"], config)
    assert r.returncode != 0 and "--since" in r.stderr and "Traceback" not in r.stderr
    r = cli(["relay", "delete", "r1"], config)
    assert r.returncode == 0 and json.loads(cli(["relay", "list", "--json"], config).stdout) == []


def test_controller_init_and_fingerprint(tmp_path: Path) -> None:
    r = cli(["controller", "init", "--data-dir", str(tmp_path / "d")], tmp_path / "c.json", 60)
    assert r.returncode == 0, r.stderr
    assert "Bootstrap admin token" in r.stdout
    fp = cli(
        ["controller", "fingerprint", "--data-dir", str(tmp_path / "d")], tmp_path / "c.json"
    ).stdout.strip()
    assert len(fp) == 64 and fp in r.stdout
    # the login command it prints is one line to copy, however narrow the output
    (login,) = [line for line in r.stdout.splitlines() if "skylan login" in line]
    assert login.split()[-2:] == ["--fingerprint", fp] and "--token skyadm_" in login
    again = cli(["controller", "init", "--data-dir", str(tmp_path / "d")], tmp_path / "c.json")
    assert "already exists" in again.stdout
    missing = cli(
        ["controller", "fingerprint", "--data-dir", str(tmp_path / "nope")], tmp_path / "c.json"
    )
    assert missing.returncode == 1 and "controller init" in missing.stderr

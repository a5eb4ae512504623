"""The lab itself: reachability, NAT, netem, and clean-up in every case."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from skylan.lab import Lab, LabError, Netem, naming, netns
from skylan.lab.procs import is_running


def _lab_netns(lab_id: str) -> list[str]:
    return [n for n in netns.list_netns() if naming.lab_id_of(n) == lab_id]


def _alive(pid: int) -> bool:
    return is_running(pid)


def test_two_hosts_reach_each_other(lab: Lab) -> None:
    a, b = lab.add_host("a"), lab.add_host("b")
    assert a.ping(b.underlay_ip)
    assert b.ping(a.underlay_ip)


def test_five_hosts_full_mesh(lab: Lab) -> None:
    hosts = [lab.add_host(n) for n in "abcde"]
    for src in hosts:
        for dst in hosts:
            if src is not dst:
                assert src.ping(dst.underlay_ip), f"{src.name} -> {dst.name}"


def test_namespaces_are_not_linked_to_the_host() -> None:
    before = set(
        subprocess.run(
            ["ip", "-o", "link"], capture_output=True, text=True, check=True
        ).stdout.split("\n")
    )
    with Lab() as lab:
        lab.add_host("a")
        lab.add_host("b", nat=True)
        during = set(
            subprocess.run(
                ["ip", "-o", "link"], capture_output=True, text=True, check=True
            ).stdout.split("\n")
        )
        # every link the lab made lives inside its namespaces
        assert {re.sub(r"^\d+: ", "", line) for line in during - before} == set()
        # and no host can reach anything outside the lab: no default route
        routes = lab.host("a").run(["ip", "route"]).stdout
        assert "default" not in routes


def test_nat_host_reaches_out_but_cannot_be_reached(lab: Lab) -> None:
    a = lab.add_host("a")
    c = lab.add_host("c", nat=True)
    # Outbound works and is masqueraded: a sees the router's public address.
    server = a.spawn(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", 4000))
            s.settimeout(10)
            data, addr = s.recvfrom(100)
            print(addr[0], flush=True)
        """),
        ],
        stdout=subprocess.PIPE,
    )
    a.wait_listening(4000, udp=True)
    assert c.ping(a.underlay_ip)
    c.run(
        [
            sys.executable,
            "-c",
            f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
            f".sendto(b'hi', ('{a.underlay_ip}', 4000))",
        ],
        check=True,
    )
    out, _ = server.communicate(timeout=10)
    assert out.decode().strip() == c.public_ip
    # Inbound is dropped even when a knows the route to the private network.
    a.run(["ip", "route", "add", "198.19.0.0/16", "via", c.public_ip], check=True)
    assert not a.ping(c.underlay_ip, count=2, timeout=1)


def test_netem_loss_shows_in_ping(lab: Lab) -> None:
    a, b = lab.add_host("a"), lab.add_host("b")
    assert a.ping(b.underlay_ip)  # resolve ARP first: lost ARP is not what we measure
    lab.impair("a", Netem(loss_pct=50))
    res = a.run(
        ["ping", "-n", "-q", "-c", "200", "-i", "0.005", "-W", "1", b.underlay_ip], timeout=30
    )
    loss = float(re.search(r"([\d.]+)% packet loss", res.stdout).group(1))  # type: ignore[union-attr]
    # 50% each way: about 75% of round trips fail; far from 0 either way
    assert 50 <= loss <= 95, res.stdout
    lab.clear_impairment("a")
    assert a.ping(b.underlay_ip, count=3)


def test_netem_delay_shows_in_rtt(lab: Lab) -> None:
    a, b = lab.add_host("a"), lab.add_host("b")
    lab.impair("b", Netem(delay_ms=30))
    res = a.run(["ping", "-n", "-c", "3", "-i", "0.2", b.underlay_ip], timeout=10)
    avg = float(re.search(r"= [\d.]+/([\d.]+)/", res.stdout).group(1))  # type: ignore[union-attr]
    assert avg >= 55, res.stdout  # 30 ms each direction


def test_office_lan_only_reachable_through_its_host(lab: Lab) -> None:
    a, c = lab.add_host("a"), lab.add_host("c")
    lan = lab.add_office_lan("c", prefix="192.168.10.0/24")
    assert c.ping(lan.underlay_ip)
    assert lan.underlay_ip == "192.168.10.10"
    assert not a.ping(lan.underlay_ip, count=1, timeout=1)


def test_close_kills_processes_and_removes_everything() -> None:
    with Lab() as lab:
        a = lab.add_host("a")
        lab.add_host("b", nat=True)
        proc = a.spawn(["sleep", "300"])
        # a grandchild in its own process group still dies with the namespace
        a.run(["sh", "-c", "setsid sleep 301 >/dev/null 2>&1 &"], check=True)
        inner = netns.pids_in(a.netns)
        assert len(inner) >= 2
        lab_id = lab.id
    assert _lab_netns(lab_id) == []
    assert proc.poll() is not None
    assert not any(_alive(p) for p in inner)
    assert not naming.state_file(lab_id).exists()


def test_failing_test_still_cleans_up() -> None:
    lab_id = ""
    with pytest.raises(RuntimeError), Lab() as lab:
        lab_id = lab.id
        lab.add_host("a").spawn(["sleep", "300"])
        raise RuntimeError("the test failed")
    assert _lab_netns(lab_id) == []


def test_killed_owner_is_cleaned_by_reaper() -> None:
    script = textwrap.dedent("""
        import sys, time
        from skylan.lab import Lab
        lab = Lab()
        a = lab.add_host("a")
        lab.add_host("b")
        p = a.spawn(["sleep", "300"])
        print(lab.id, p.pid, flush=True)
        time.sleep(300)
    """)
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        lab_id, pid = owner.stdout.readline().split()
        assert len(_lab_netns(lab_id)) == 3
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (_lab_netns(lab_id) or _alive(int(pid))):
            time.sleep(0.2)
        assert _lab_netns(lab_id) == []
        assert not _alive(int(pid))
        assert not naming.state_file(lab_id).exists()
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def test_clean_command_removes_orphans_only() -> None:
    from skylan.lab.cleanup import clean

    script = textwrap.dedent("""
        from skylan.lab import Lab
        lab = Lab(reaper=False)
        lab.add_host("a").spawn(["sleep", "300"])
        print(lab.id, flush=True)
        import os; os._exit(0)   # skip atexit: a leftover like a crashed run's
    """)
    orphan = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.strip()
    with Lab() as live:
        live.add_host("a")
        assert len(_lab_netns(orphan)) == 2
        removed = clean()
        assert orphan in removed
        assert live.id not in removed
        assert _lab_netns(orphan) == []
        assert len(_lab_netns(live.id)) == 2


def test_bad_names_are_refused(lab: Lab) -> None:
    lab.add_host("a")
    with pytest.raises(LabError, match="already exists"):
        lab.add_host("a")
    with pytest.raises(LabError, match="bad host name"):
        lab.add_host("a;rm")
    with pytest.raises(LabError, match="no host"):
        lab.host("zz")


def test_netem_reorder_shows_in_arrival_order(lab: Lab) -> None:
    a, b = lab.add_host("a"), lab.add_host("b")
    lab.impair("a", Netem(delay_ms=20, reorder_pct=30, seed=7))
    receiver = b.spawn(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", 4001))
            s.settimeout(3)
            got = []
            try:
                while len(got) < 200:
                    got.append(int(s.recv(16)))
            except TimeoutError:
                pass
            print(" ".join(map(str, got)), flush=True)
        """),
        ],
        stdout=subprocess.PIPE,
    )
    b.wait_listening(4001, udp=True)
    a.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import socket, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(200):
            s.sendto(str(i).encode(), ("{b.underlay_ip}", 4001))
            time.sleep(0.001)
    """),
        ],
        check=True,
    )
    out, _ = receiver.communicate(timeout=15)
    order = [int(x) for x in out.split()]
    assert sorted(order) == list(range(200))  # nothing lost, only reordered
    assert order != sorted(order)


def test_cli_lab_list_and_clean() -> None:
    from typer.testing import CliRunner

    from skylan.cli.main import app

    script = textwrap.dedent("""
        from skylan.lab import Lab
        lab = Lab(reaper=False)
        lab.add_host("a")
        print(lab.id, flush=True)
        import os; os._exit(0)
    """)
    orphan = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.strip()
    runner = CliRunner()
    listed = runner.invoke(app, ["lab", "list"])
    assert listed.exit_code == 0 and orphan in listed.stdout
    cleaned = runner.invoke(app, ["lab", "clean"])
    assert cleaned.exit_code == 0 and f"removed lab {orphan}" in cleaned.stdout
    assert _lab_netns(orphan) == []


def test_killed_owner_stops_its_postgres_cluster() -> None:
    from pathlib import Path

    from skylan.lab import postgres

    if postgres.available() is not None:
        pytest.skip(str(postgres.available()))
    script = textwrap.dedent("""
        import time
        from skylan.lab.postgres import PostgresCluster
        cluster = PostgresCluster()
        print(cluster.root, flush=True)
        time.sleep(300)
    """)
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        root = Path(owner.stdout.readline().strip())
        assert (root / "data" / "postmaster.pid").exists()
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and root.exists():
            time.sleep(0.2)
        assert not root.exists()
        running = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, check=False)
        assert running.stdout.strip() == b""
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()

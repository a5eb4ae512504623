"""The lab's kinds of NAT behave as their names say, seen by a reflector on
the underlay that reports where each datagram and connection came from."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from skylan.lab import Lab
from skylan.lab.host import Host
from skylan.lab.nat import NatType

PROBE = str(Path(__file__).with_name("natprobe.py"))
PORTS = [4000, 4001, 4002, 4003, 443, 80]


@pytest.fixture
def reflector(lab: Lab) -> Iterator[Host]:
    host = lab.add_host("reflector")
    proc = host.spawn([sys.executable, PROBE, "reflect", *map(str, PORTS)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    yield host


def udp_seen(host: Host, reflector: Host, ports: list[int], src_port: int = 5555) -> list[str]:
    out = host.run(
        [sys.executable, PROBE, "udp", str(src_port), reflector.underlay_ip, *map(str, ports)],
        check=True,
        timeout=30,
    )
    return out.stdout.split()


def tcp_seen(host: Host, reflector: Host, port: int) -> str:
    out = host.run([sys.executable, PROBE, "tcp", reflector.underlay_ip, str(port)], check=True)
    return out.stdout.strip()


def test_endpoint_independent_nat_keeps_one_mapping(lab: Lab, reflector: Host) -> None:
    host = lab.add_host("home", nat=NatType.EIM)
    assert lab.nat_type("home") is NatType.EIM
    seen = udp_seen(host, reflector, [4000, 4001, 4002])
    # the same public address and port whatever the destination: the source
    # port is kept too, as a home router does when it is free
    assert seen == [f"{host.public_ip}:5555"] * 3


def test_symmetric_nat_maps_each_destination_anew(lab: Lab, reflector: Host) -> None:
    host = lab.add_host("cloud", nat=NatType.SYMMETRIC)
    seen = udp_seen(host, reflector, [4000, 4001, 4002, 4003])
    assert all(s.startswith(f"{host.public_ip}:") for s in seen), seen
    assert len(set(seen)) >= 3, seen  # random ports: two may meet by chance, not four
    # and what a third party saw is closed to everyone else
    assert not reflector.ping(host.underlay_ip, count=1, timeout=1)


def test_tcp443_firewall_lets_out_only_https(lab: Lab, reflector: Host) -> None:
    host = lab.add_host("corp", nat=NatType.TCP443)
    assert udp_seen(host, reflector, [4000, 443]) == ["none", "none"]
    assert tcp_seen(host, reflector, 443).startswith(f"{host.public_ip}:")
    assert tcp_seen(host, reflector, 80) == "none"
    assert not host.ping(reflector.underlay_ip, count=1, timeout=1)


def test_two_hosts_behind_one_nat(lab: Lab, reflector: Host) -> None:
    first = lab.add_host("office1", nat=True)
    second = lab.add_host("office2", behind="office1")
    assert first.public_ip == second.public_ip
    assert first.underlay_ip != second.underlay_ip
    assert first.ping(second.underlay_ip) and second.ping(first.underlay_ip)  # same LAN
    # both go out through the one NAT; the same source port cannot map twice
    one = udp_seen(first, reflector, [4000])
    two = udp_seen(second, reflector, [4000])
    assert one == [f"{first.public_ip}:5555"]
    assert two[0].startswith(f"{first.public_ip}:") and two != one

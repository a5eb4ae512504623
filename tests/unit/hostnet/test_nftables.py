"""The skylan nftables ruleset: rendered text, and nft's own syntax check."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from skylan.hostnet.nftables import CloakOpening, Ruleset, render

FULL = Ruleset(
    forwards=(("sky0", "192.168.10.0/24"),),
    masquerades=(("172.16.1.0/24", "192.168.10.0/24"),),
    cloak_interfaces=("eth0", "eth1"),
    tunnel_ports=(51820, 4789),
    peer_addresses=("198.18.1.2", "198.18.2.1", "2001:db8::7"),
    exceptions=(
        CloakOpening("tcp", 8000, 8000),
        CloakOpening("udp", 5000, 5010, "203.0.113.0/24"),
        CloakOpening("icmp"),
        CloakOpening("any", source_cidr="198.51.100.7/32"),
    ),
    always_allow=("198.18.1.1",),
    local_tcp_ports=(8443,),
)


def test_render_contains_every_piece() -> None:
    text = render(FULL)
    assert text.startswith("table inet skylan {")
    assert 'iifname "sky0" ip daddr 192.168.10.0/24 accept' in text
    assert "ip saddr 172.16.1.0/24 ip daddr 192.168.10.0/24 masquerade" in text
    assert 'iifname { "eth0", "eth1" } jump cloak' in text
    assert "ip saddr { 198.18.1.2, 198.18.2.1 } udp dport { 51820, 4789 } accept" in text
    assert "ip6 saddr { 2001:db8::7 } udp dport { 51820, 4789 } accept" in text
    assert "tcp dport 8000 accept" in text
    assert "ip saddr 203.0.113.0/24 udp dport 5000-5010 accept" in text
    assert "meta l4proto { icmp, ipv6-icmp } accept" in text
    assert "ip saddr 198.51.100.7/32 accept" in text
    assert text.rstrip().endswith("counter drop\n  }\n}".rstrip())
    # established replies come first, the final drop last
    assert text.index(
        "ct state established,related accept", text.index("chain cloak")
    ) < text.index("counter drop")


def test_empty_ruleset() -> None:
    assert Ruleset().empty
    assert not FULL.empty
    only_forward = render(Ruleset(forwards=(("sky0", "10.1.0.0/16"),)))
    assert "chain forward" in only_forward
    assert "chain cloak" not in only_forward and "masquerade" not in only_forward


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None, reason="nft -c needs root and nftables"
)
def test_nft_accepts_the_rendered_ruleset() -> None:
    for rules in (
        FULL,
        Ruleset(cloak_interfaces=("eth0",)),
        Ruleset(masquerades=(("172.16.1.0/24", "10.8.0.0/16"),)),
    ):
        proc = subprocess.run(
            ["nft", "-c", "-f", "-"],
            input=render(rules),
            text=True,
            capture_output=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr + render(rules)

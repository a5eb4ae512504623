"""The skylan nftables ruleset: rendered text, and nft's own syntax check."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from skylan.hostnet.nftables import Allowance, CloakOpening, Guard, Ruleset, render

GUARDED = Ruleset(
    forwards=(("sky1", "192.168.20.0/24"),),
    guards=(
        Guard(
            "sky0",
            (
                Allowance("tcp", 5432, 5432, members=(("02:00:00:00:00:01", "172.16.1.1"),)),
                Allowance(
                    "udp",
                    5000,
                    5010,
                    members=(
                        ("02:00:00:00:00:01", "172.16.1.1"),
                        ("02:00:00:00:00:01", "fd00:1::1"),
                        ("02:00:00:00:00:02", "10.9.0.0/24"),
                    ),
                    member_macs=("02:00:00:00:00:01", "02:00:00:00:00:02"),
                ),
                Allowance("icmp", everyone=True),
                Allowance("any", everyone=True),
                Allowance("tcp", 22, 22, prefixes=("10.8.0.0/16",)),
                Allowance("any", prefixes=("2001:db8::/32",)),
            ),
        ),
        Guard("sky1"),  # deny, and no rule for this node
    ),
)

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
        CloakOpening("tcp", 22, 22, "2001:db8:7::/48"),  # IPv6 sources open the cloak too
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
    assert "ip6 saddr 2001:db8:7::/48 tcp dport 22 accept" in text
    assert text.rstrip().endswith("counter drop\n  }\n}".rstrip())
    # established replies come first, the final drop last
    assert text.index(
        "ct state established,related accept", text.index("chain cloak")
    ) < text.index("counter drop")


def test_guards_render_per_interface_in_input_and_forward() -> None:
    text = render(GUARDED)
    assert GUARDED.cloak_interfaces == () and not GUARDED.empty
    for hook in ("input", "forward"):
        chain = text[text.index(f"chain {hook} {{") :]
        chain = chain[: chain.index("}")]
        assert 'iifname "sky0" jump guard-sky0' in chain
        assert 'iifname "sky1" jump guard-sky1' in chain
    guard = text[text.index("chain guard-sky0 {") :]
    guard = guard[: guard.index("\n  }")]
    lines = [line.strip() for line in guard.splitlines()[1:]]
    assert lines[0] == "ct state established,related accept"
    assert lines[1].startswith("icmpv6 type { nd-neighbor-solicit")
    assert lines[-1] == "counter drop"
    assert (
        "ether saddr . ip saddr { 02:00:00:00:00:01 . 172.16.1.1 } tcp dport 5432 accept" in lines
    )
    assert (
        "ether saddr . ip saddr { 02:00:00:00:00:01 . 172.16.1.1, 02:00:00:00:00:02 . 10.9.0.0/24 }"
        " udp dport 5000-5010 accept" in lines
    )
    assert (
        "ether saddr . ip6 saddr { 02:00:00:00:00:01 . fd00:1::1 } udp dport 5000-5010 accept"
        in lines
    )
    assert (
        "ether saddr { 02:00:00:00:00:01, 02:00:00:00:00:02 } ip6 saddr fe80::/10"
        " udp dport 5000-5010 accept" in lines
    )
    assert "meta l4proto { icmp, ipv6-icmp } accept" in lines
    assert "accept" in lines  # protocol any from anyone
    assert "ip saddr 10.8.0.0/16 tcp dport 22 accept" in lines
    assert "ip6 saddr 2001:db8::/32 accept" in lines
    empty_guard = text[text.index("chain guard-sky1 {") :]
    assert "accept" not in empty_guard[: empty_guard.index("counter drop")].split("\n", 3)[-1]


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
        GUARDED,
        Ruleset(guards=(Guard("sky0"),), cloak_interfaces=("eth0",)),
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

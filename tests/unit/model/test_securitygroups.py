"""Security groups: parsing rule sides, the dry run's verdict, and the nft
allowances a node builds from the same rules, which must agree with it."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skylan.agent.securitychains import guard
from skylan.hostnet.nftables import Allowance
from skylan.model.netmap import NetworkMap, PeerInfo
from skylan.model.securitygroups import (
    Match,
    Member,
    SecurityRuleInfo,
    Sender,
    parse_source,
    parse_target,
    verdict,
)
from tests.netmaps import network, peer


def test_parse_sides() -> None:
    assert parse_source("any") == Match(kind="any")
    assert parse_source("tag:web") == Match(kind="tag", value="web")
    assert parse_source("node:db1") == Match(kind="node", value="db1")
    assert parse_source("10.1.2.0/24") == Match(kind="cidr", value="10.1.2.0/24")
    assert parse_source("cidr:10.1.2.3/24") == Match(kind="cidr", value="10.1.2.0/24")
    assert parse_source("2001:db8::1") == Match(kind="cidr", value="2001:db8::1/128")
    assert parse_target("all") == Match(kind="any")
    assert parse_target("tag:db") == Match(kind="tag", value="db")
    for bad in ("tag:", "web", "node", "10.0.0.0/33", ""):
        with pytest.raises(ValueError, match="is not a source"):
            parse_source(bad)
    for bad in ("10.0.0.0/8", "tag:", "cidr:10.0.0.0/8"):
        with pytest.raises(ValueError, match="is not a target"):
            parse_target(bad)
    with pytest.raises(ValueError):
        Match(kind="tag")
    with pytest.raises(ValueError):
        Match(kind="any", value="x")


def rule(
    rule_id: str, protocol: str, ports: tuple[int, int] | None, source: Match, target: Match
) -> SecurityRuleInfo:
    return SecurityRuleInfo(
        id=rule_id,
        protocol=protocol,  # type: ignore[arg-type]
        port_from=ports[0] if ports else None,
        port_to=ports[1] if ports else None,
        source=source,
        target=target,
    )


WEB = Member("n-web", frozenset({"web"}))
DB = Member("n-db", frozenset({"db"}))


def test_verdicts() -> None:
    rules = [
        rule(
            "r1", "tcp", (5432, 5432), Match(kind="tag", value="web"), Match(kind="tag", value="db")
        ),
        rule("r2", "icmp", None, Match(kind="any"), Match(kind="any")),
        rule(
            "r3",
            "udp",
            (53, 60),
            Match(kind="cidr", value="10.0.0.0/8"),
            Match(kind="node", value="n-db"),
        ),
    ]
    web = Sender("172.16.1.1", WEB)

    def ask(sender: Sender, target: Member, protocol: str, port: int | None) -> str | None:
        answer = verdict("deny", rules, sender, target, protocol=protocol, port=port)  # type: ignore[arg-type]
        return answer.rule_id if answer.allowed else None

    assert ask(web, DB, "tcp", 5432) == "r1"
    assert ask(web, DB, "tcp", 5433) is None
    assert ask(web, DB, "udp", 5432) is None
    assert ask(Sender("172.16.1.2", DB), WEB, "tcp", 5432) is None
    assert ask(web, DB, "icmp", None) == "r2"
    assert ask(Sender("10.2.3.4"), DB, "udp", 60) == "r3"
    assert ask(Sender("10.2.3.4"), WEB, "udp", 60) is None
    assert ask(Sender("fd00::1"), DB, "udp", 60) is None  # a v4 prefix holds no v6 address
    assert verdict("allow", [], web, DB, protocol="tcp", port=1).allowed
    assert verdict("deny", [], web, WEB, protocol="tcp", port=1).allowed  # itself


# -- the dry run and the enforced rules agree --------------------------------

TAGS = ["a", "b", "c"]


def mac(i: int) -> str:
    return f"02:00:00:00:00:{i:02x}"


def peers_from(tag_sets: list[frozenset[str]]) -> list[PeerInfo]:
    return [
        peer(
            f"n{i}",
            "k",
            f"172.16.1.{i + 1}",
            "198.18.0.1",
            mac(i),
            extra_ips=["172.16.9.0/24"] if i == 0 else [],
            ipv6=f"fd00::{i + 1}",
            prefixlen6=64,
            tags=sorted(tags),
        )
        for i, tags in enumerate(tag_sets)
    ]


def denying(peers: list[PeerInfo], rules: list[SecurityRuleInfo]) -> NetworkMap:
    """A network of ``peers`` under a deny policy with ``rules``."""
    return network(
        peers, cidr4="172.16.1.0/24", cidr6="fd00::/64", policy="deny", security_rules=rules
    )


def matches(draw_kind: str, value: str | None) -> Match:
    return Match(kind=draw_kind, value=value)  # type: ignore[arg-type]


sides = st.one_of(
    st.just(Match(kind="any")),
    st.sampled_from(TAGS).map(lambda t: Match(kind="tag", value=t)),
    st.integers(0, 3).map(lambda i: Match(kind="node", value=f"n{i}")),
)
sources = st.one_of(
    sides,
    st.sampled_from(["172.16.1.0/30", "10.0.0.0/8", "fd00::/126", "172.16.1.3/32"]).map(
        lambda c: Match(kind="cidr", value=c)
    ),
)
rules_st = st.lists(
    st.tuples(
        st.sampled_from(["tcp", "udp", "icmp", "any"]),
        st.integers(1, 30),
        st.integers(0, 5),
        sources,
        sides,
    ),
    max_size=6,
).map(
    lambda items: [
        rule(
            f"r{i}",
            proto,
            (low, low + span) if proto in ("tcp", "udp") else None,
            source,
            target,
        )
        for i, (proto, low, span, source, target) in enumerate(items)
    ]
)


def nft_admits(a: Allowance, src_mac: str, src: str, protocol: str, port: int | None) -> bool:
    """What one allowance's nft lines accept (see hostnet.nftables._allowance)."""
    if a.protocol != "any":
        if a.protocol != protocol:
            return False
        if protocol in ("tcp", "udp") and not (a.port_from or 0) <= (port or 0) <= (a.port_to or 0):
            return False
    address = ipaddress.ip_address(src)

    def within(prefix: str) -> bool:
        net = ipaddress.ip_network(prefix, strict=False)
        return net.version == address.version and address in net

    return (
        a.everyone
        or any(within(p) for p in a.prefixes)
        or any(m == src_mac and within(p) for m, p in a.members)
        or (src_mac in a.member_macs and within("fe80::/10"))
    )


@settings(max_examples=300, deadline=None)
@given(
    tag_sets=st.lists(st.frozensets(st.sampled_from(TAGS)), min_size=4, max_size=4),
    rules=rules_st,
    pair=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    protocol=st.sampled_from(["tcp", "udp", "icmp"]),
    port=st.integers(1, 36),
    v6=st.booleans(),
)
def test_the_dry_run_agrees_with_the_nft_allowances(
    tag_sets: list[frozenset[str]],
    rules: list[SecurityRuleInfo],
    pair: tuple[int, int],
    protocol: str,
    port: int,
    v6: bool,
) -> None:
    peers = peers_from(tag_sets)
    src, dst = peers[pair[0]], peers[pair[1]]
    if src.node_id == dst.node_id:
        return  # to itself goes over loopback, not the overlay
    net = denying(peers, rules)
    address = src.port.ipv6 if v6 else src.port.ipv4
    assert address is not None
    use_port = port if protocol != "icmp" else None
    said = verdict(
        "deny",
        rules,
        Sender(address, Member(src.node_id, frozenset(src.tags))),
        Member(dst.node_id, frozenset(dst.tags)),
        protocol=protocol,  # type: ignore[arg-type]
        port=use_port,
    )
    chains = guard(net, dst.node_id, "sky0")
    assert chains is not None
    done = any(nft_admits(a, src.port.mac, address, protocol, use_port) for a in chains.allowances)
    assert said.allowed == done
    # from beyond the network (a gateway's LAN), only CIDR and anyone rules count
    outside = "10.1.2.3" if not v6 else "2001:db8::9"
    said = verdict(
        "deny",
        rules,
        Sender(outside),
        Member(dst.node_id, frozenset(dst.tags)),
        protocol=protocol,
        port=use_port,
    )  # type: ignore[arg-type]
    done = any(nft_admits(a, mac(9), outside, protocol, use_port) for a in chains.allowances)
    assert said.allowed == done


def test_a_floating_prefix_and_its_addresses_make_no_overlapping_set() -> None:
    peers = peers_from([frozenset({"a"}), frozenset()])
    peers[0].port.extra_ips.extend(["172.16.9.7", "172.16.1.1/32"])
    net = denying(peers, [rule("r", "any", None, Match(kind="tag", value="a"), Match(kind="any"))])
    chains = guard(net, "n1", "sky1")
    assert chains is not None
    (allowance,) = chains.allowances
    assert sorted(a for _, a in allowance.members) == ["172.16.1.1", "172.16.9.0/24", "fd00::1"]
    assert guard(net.model_copy(update={"policy": "allow"}), "n1", "sky1") is None
    assert guard(net, "stranger", "sky1") is not None

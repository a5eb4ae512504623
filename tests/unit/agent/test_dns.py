"""The agent's DNS answers (a parser of hostile bytes: fuzzed), the zones a
netmap gives, and the resolv.conf fallback's edits."""

from __future__ import annotations

from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skylan.agent.dnsanswers import Answerer, Outcome, zones_of
from skylan.hostnet import resolver
from skylan.model.dnsnames import DnsRecordInfo, dns_name, zone_of
from skylan.model.netmap import NetMap, SelfInfo
from tests.netmaps import network, peer


def netmap() -> NetMap:
    members = [
        peer("web", "k", "172.16.1.1", "198.18.0.1", ipv6="fd00::1"),
        peer("DB", "k", "172.16.1.2", "198.18.0.1"),
        peer("x" * 64, "k", "172.16.1.3", "198.18.0.1"),
    ]
    prod = network(
        members,
        cidr4="172.16.1.0/24",
        cidr6="fd00::/64",
        dns_zone="prod.skylan.internal",
        dns_records=[
            DnsRecordInfo(name="vip", address="172.16.1.100"),
            DnsRecordInfo(name="vip", address="fd00::100"),
        ],
    )
    quiet = prod.model_copy(update={"id": "n2", "name": "quiet", "dns_zone": None})
    return NetMap(
        version=1,
        node=SelfInfo(node_id="web", name="web", status="approved"),
        networks=[prod, quiet],
    )


def ask(answerer: Answerer, name: str, rdtype: str = "A") -> dns.message.Message:
    outcome, wire = answerer.answer(dns.message.make_query(name, rdtype).to_wire())
    assert outcome is Outcome.ANSWERED
    return dns.message.from_wire(wire)


def addresses(reply: dns.message.Message) -> list[str]:
    return sorted(r.to_text() for rrset in reply.answer for r in rrset)


def test_zones_and_answers() -> None:
    zones = zones_of(netmap())
    assert [z.origin for z in zones] == ["prod.skylan.internal"]  # quiet has no DNS
    hosts = zones[0].hosts
    assert hosts["db"] == ("172.16.1.2",) and "x" * 64 not in hosts  # not a DNS label
    answerer = Answerer(zones)
    reply = ask(answerer, "web.prod.skylan.internal")
    assert addresses(reply) == ["172.16.1.1"] and reply.flags & dns.flags.AA
    assert reply.answer[0].ttl == 5
    assert addresses(ask(answerer, "WEB.Prod.skylan.internal.", "AAAA")) == ["fd00::1"]
    assert addresses(ask(answerer, "vip.prod.skylan.internal", "ANY")) == [
        "172.16.1.100",
        "fd00::100",
    ]
    nodata = ask(answerer, "db.prod.skylan.internal", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer and nodata.authority
    missing = ask(answerer, "nobody.prod.skylan.internal")
    assert missing.rcode() == dns.rcode.NXDOMAIN and missing.authority[0].ttl == 5
    soa = ask(answerer, "prod.skylan.internal", "SOA")
    assert soa.answer and soa.answer[0].rdtype == dns.rdatatype.SOA
    outcome, _ = answerer.answer(dns.message.make_query("example.com", "A").to_wire())
    assert outcome is Outcome.NOT_OURS
    refused = dns.message.from_wire(answerer.refuse(dns.message.make_query("a.b", "A").to_wire()))
    assert refused.rcode() == dns.rcode.REFUSED
    # an answer sent to us, or junk: dropped and counted, never answered
    response = dns.message.make_response(dns.message.make_query("web.prod.skylan.internal", "A"))
    assert answerer.answer(response.to_wire())[0] is Outcome.MALFORMED
    assert answerer.answer(b"\x00" * 5)[0] is Outcome.MALFORMED
    assert answerer.answer(b"\x00" * 5000)[0] is Outcome.MALFORMED
    assert answerer.counts["malformed"] == 3


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_get_an_answer_or_are_dropped_never_an_exception(data: bytes) -> None:
    answerer = Answerer(zones_of(netmap()))
    outcome, wire = answerer.answer(data, recursion=True)
    if outcome is Outcome.ANSWERED:
        assert dns.message.from_wire(wire).flags & dns.flags.QR
    answerer.refuse(data)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**16 - 1),
    st.sampled_from(["A", "AAAA", "MX", "TXT", "ANY", "SOA"]),
    st.text(alphabet="abcdefwebvipdo.-", max_size=40),
)
def test_mutated_queries_under_the_zone(qid: int, rdtype: str, label: str) -> None:
    answerer = Answerer(zones_of(netmap()))
    try:
        query = dns.message.make_query(f"{label}.prod.skylan.internal", rdtype)
    except Exception:
        return  # not a name dnspython would send
    query.id = qid
    outcome, wire = answerer.answer(query.to_wire())
    assert outcome is Outcome.ANSWERED
    assert dns.message.from_wire(wire).id == qid


def test_dns_names() -> None:
    assert dns_name("Web-1.Prod") == "web-1.prod"
    assert zone_of("prod", "skylan.internal") == "prod.skylan.internal"
    assert zone_of("-bad", "skylan.internal") is None
    for bad in ("", "a..b", "-a", "a-", "x" * 64, "a b", "é"):
        with pytest.raises(ValueError):
            dns_name(bad)


def test_resolv_conf_fallback(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    original = "search corp.example\nnameserver 10.0.0.2\nnameserver 10.0.0.3\noptions rotate\n"
    conf.write_text(original)
    assert resolver.install("127.0.0.153", conf) == ["10.0.0.2", "10.0.0.3"]
    text = conf.read_text()
    assert text.startswith(f"{resolver.MARK}\nnameserver 127.0.0.153\n") and text.endswith(original)
    assert resolver.install("127.0.0.153", conf) == ["10.0.0.2", "10.0.0.3"]
    assert conf.read_text() == text  # idempotent
    # another program rewrote the file: ours goes back in, on top of its servers
    conf.write_text("nameserver 10.9.9.9\n")
    assert resolver.install("127.0.0.153", conf) == ["10.9.9.9"]
    resolver.uninstall(conf)
    assert conf.read_text() == "nameserver 10.9.9.9\n"
    resolver.uninstall(conf)  # nothing of ours: nothing changes
    assert conf.read_text() == "nameserver 10.9.9.9\n"
    assert resolver.nameservers("nameserver fe80::1%eth0\n# nameserver 1.1.1.1\n") == ["fe80::1"]


def test_resolvectl_commands_route_only_the_zones() -> None:
    assert resolver.resolvectl_commands("sky0", "172.16.1.5", ["prod.skylan.internal"]) == [
        ["resolvectl", "dns", "sky0", "172.16.1.5"],
        ["resolvectl", "domain", "sky0", "~prod.skylan.internal"],
        ["resolvectl", "default-route", "sky0", "false"],
    ]

"""Answers to DNS queries for the networks' zones, from the netmap. Pure:
wire bytes in, wire bytes (or "not ours") out; the socket side is
:mod:`skylan.agent.dnsservice`.

Every member answers for every network it is in: ``NODE.NETWORK.DOMAIN``
(A and AAAA, from the member's port) and the network's own names
(``dns_records``). Answers are authoritative with a short TTL, so a rename
or a member leaving is seen within seconds, not a cache's lifetime.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from skylan.model.dnsnames import dns_name
from skylan.model.netmap import NetMap

TTL = 5  # seconds: names follow renames and membership within the netmap's delay
MAX_QUERY = 4096  # bytes: a stub's query is far smaller


@dataclass(frozen=True)
class Zone:
    """One network's names: each relative name's addresses."""

    origin: str  # e.g. prod.skylan.internal
    hosts: dict[str, tuple[str, ...]]

    @property
    def name(self) -> dns.name.Name:
        return _names(self.origin)


@functools.lru_cache(maxsize=256)
def _names(origin: str) -> dns.name.Name:
    """Parsed once per zone, not once per query."""
    return dns.name.from_text(origin)


def zones_of(netmap: NetMap | None) -> list[Zone]:
    """The zones a netmap gives this node (names that are not DNS names,
    such as one over 63 characters, are left out)."""
    zones: dict[str, dict[str, list[str]]] = {}
    for net in netmap.networks if netmap else []:
        if net.dns_zone is None:
            continue
        hosts = zones.setdefault(net.dns_zone, {})
        for peer in net.peers or []:
            try:
                name = dns_name(peer.name)
            except ValueError:
                continue
            found = hosts.setdefault(name, [])
            found.append(peer.port.ipv4)
            if peer.port.ipv6:
                found.append(peer.port.ipv6)
        for record in net.dns_records:
            hosts.setdefault(record.name, []).append(record.address)
    return [
        Zone(origin, {n: tuple(dict.fromkeys(a)) for n, a in hosts.items()})
        for origin, hosts in zones.items()
    ]


class Outcome(Enum):
    ANSWERED = "answered"  # a name of ours, or NXDOMAIN under a zone of ours
    NOT_OURS = "not_ours"  # for the host's other DNS: forward it, or refuse
    MALFORMED = "malformed"  # dropped


@dataclass
class Answerer:
    zones: list[Zone] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def answer(self, wire: bytes, *, recursion: bool = False) -> tuple[Outcome, bytes]:
        """The reply to one query. ``recursion``: we forward other names (the
        RA flag says so)."""
        if len(wire) > MAX_QUERY:
            self.counts["malformed"] += 1
            return Outcome.MALFORMED, b""
        try:
            query = dns.message.from_wire(wire)
        except (dns.exception.DNSException, ValueError):
            self.counts["malformed"] += 1
            return Outcome.MALFORMED, b""
        if query.flags & dns.flags.QR:
            self.counts["malformed"] += 1  # an answer sent to us: never reply to one
            return Outcome.MALFORMED, b""
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            return Outcome.ANSWERED, self._error(query, dns.rcode.NOTIMP, recursion)
        question = query.question[0]
        qname = question.name
        zone = self._zone_of(qname)
        if zone is None:
            return Outcome.NOT_OURS, b""
        if question.rdclass != dns.rdataclass.IN:
            return Outcome.ANSWERED, self._error(query, dns.rcode.REFUSED, recursion)
        origin = zone.name
        relative = qname.relativize(origin).to_text().lower()
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA | (dns.flags.RA if recursion else 0)
        if relative == "@":
            if question.rdtype == dns.rdatatype.SOA:
                response.answer.append(self._soa(origin))
            else:
                response.authority.append(self._soa(origin))
            self.counts["answered"] += 1
            return Outcome.ANSWERED, response.to_wire()
        addresses = zone.hosts.get(relative)
        if addresses is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(self._soa(origin))
            self.counts["nxdomain"] += 1
            return Outcome.ANSWERED, response.to_wire()
        wanted = _families(question.rdtype)
        for rdtype, version in wanted:
            found = [a for a in addresses if ipaddress.ip_address(a).version == version]
            if found:
                response.answer.append(
                    dns.rrset.from_text_list(qname, TTL, dns.rdataclass.IN, rdtype, found)
                )
        if not response.answer:
            response.authority.append(self._soa(origin))  # the name exists, not this type
        self.counts["answered"] += 1
        return Outcome.ANSWERED, response.to_wire()

    def refuse(self, wire: bytes) -> bytes:
        """REFUSED for a name not ours when there is nobody to forward to."""
        try:
            query = dns.message.from_wire(wire)
        except (dns.exception.DNSException, ValueError):
            return b""
        self.counts["refused"] += 1
        return self._error(query, dns.rcode.REFUSED, False)

    def _zone_of(self, qname: dns.name.Name) -> Zone | None:
        best: Zone | None = None
        for zone in self.zones:
            if qname.is_subdomain(zone.name) and (best is None or len(zone.name) > len(best.name)):
                best = zone  # the longest zone that holds the name
        return best

    def _soa(self, origin: dns.name.Name) -> dns.rrset.RRset:
        # the negative TTL (the last field) is as short as the answers'
        text = f"ns.{origin} hostmaster.{origin} 1 {TTL} {TTL} {TTL} {TTL}"
        return dns.rrset.from_text(origin, TTL, dns.rdataclass.IN, dns.rdatatype.SOA, text)

    def _error(self, query: dns.message.Message, rcode: dns.rcode.Rcode, ra: bool) -> bytes:
        response = dns.message.make_response(query)
        response.set_rcode(rcode)
        if ra:
            response.flags |= dns.flags.RA
        return response.to_wire()


def _families(rdtype: dns.rdatatype.RdataType) -> list[tuple[dns.rdatatype.RdataType, int]]:
    if rdtype == dns.rdatatype.A:
        return [(dns.rdatatype.A, 4)]
    if rdtype == dns.rdatatype.AAAA:
        return [(dns.rdatatype.AAAA, 6)]
    if rdtype == dns.rdatatype.ANY:
        return [(dns.rdatatype.A, 4), (dns.rdatatype.AAAA, 6)]
    return []

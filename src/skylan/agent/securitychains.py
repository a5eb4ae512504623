"""A network's security groups as this node enforces them: the rules that
protect it, each with its sources spelled out as prefixes and member
(MAC, address) pairs for :class:`skylan.hostnet.nftables.Guard`. Pure.

Tags are resolved here, against the netmap's member list, rather than on the
controller, so a member joining or retagged is one changed entry in every
netmap, not a new rule set for every member.
"""

from __future__ import annotations

import ipaddress

from skylan.hostnet.nftables import Allowance, Guard
from skylan.model.netmap import NetworkMap, PeerInfo
from skylan.model.securitygroups import Member, SecurityRuleInfo, selects, targets


def member_of(peer: PeerInfo) -> Member:
    return Member(node_id=peer.node_id, tags=frozenset(peer.tags))


def addresses(peer: PeerInfo) -> list[str]:
    """Every address a member sends from: its port's, and its floating ones."""
    found = [peer.port.ipv4, *peer.port.extra_ips]
    if peer.port.ipv6:
        found.append(peer.port.ipv6)
    return found


def guard(net: NetworkMap, own_id: str, interface: str) -> Guard | None:
    """The guard for our interface in ``net``; None when the policy allows all."""
    if net.policy == "allow":
        return None
    peers = net.peers or []
    me = next((p for p in peers if p.node_id == own_id), None)
    if me is None:
        return Guard(interface)  # not a member (yet): nothing is allowed in
    others = [p for p in peers if p.node_id != own_id]
    mine = member_of(me)
    allowances = [_allowance(rule, others) for rule in net.security_rules if targets(rule, mine)]
    return Guard(interface, tuple(a for a in allowances if a is not None))


def _allowance(rule: SecurityRuleInfo, peers: list[PeerInfo]) -> Allowance | None:
    source = rule.source
    if source.kind == "any":
        return Allowance(rule.protocol, rule.port_from, rule.port_to, everyone=True)
    if source.kind == "cidr":
        return Allowance(
            rule.protocol, rule.port_from, rule.port_to, prefixes=(source.value or "",)
        )
    senders = [p for p in peers if selects(source, member_of(p))]
    if not senders:
        return None  # nobody it names is a member (yet)
    return Allowance(
        rule.protocol,
        rule.port_from,
        rule.port_to,
        members=tuple((p.port.mac, a) for p in senders for a in _disjoint(addresses(p))),
        member_macs=tuple(p.port.mac for p in senders),
    )


def _disjoint(found: list[str]) -> list[str]:
    """Without the addresses inside another of the list's prefixes: nft
    refuses overlapping elements in one set."""
    nets = list(dict.fromkeys(ipaddress.ip_network(a, strict=False) for a in found))
    return [
        str(n) if n.prefixlen < n.max_prefixlen else str(n.network_address)
        for n in nets
        if not any(
            o != n and o.version == n.version and n.subnet_of(o)  # type: ignore[arg-type]
            for o in nets
        )
    ]

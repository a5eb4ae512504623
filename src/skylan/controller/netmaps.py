"""Netmaps, kept ready to send: every node's is its header plus the sections
of its networks, and every section is built from pieces serialised once.

A network's section is the same for each member: its settings, routes,
cloak rules and security rules, and the members. Each member's entry (``PeerInfo``) is serialised
when it changes and kept with the version of that change; a network also
remembers who left it and when. So an agent that holds version V gets, for each
network, only the entries changed after V and the ids that left after V, and
the bytes for that answer are made once and shared by every member asking from
V (after a change, that is nearly all of them). An agent that asks from before
what the network remembers gets the full list.

Pure: built from :class:`~skylan.controller.state.store.State` and change ids.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from skylan.controller.state.store import State
from skylan.model import dnsnames, dualstack
from skylan.model.dnsnames import DnsRecordInfo
from skylan.model.netmap import (
    CloakRuleInfo,
    NetworkMap,
    PeerInfo,
    PortInfo,
    RelayInfo,
    RouteInfo,
    SelfInfo,
)

RENDERS_KEPT = 8  # renderings of a section kept (by `since`)
GONE_KEPT_MIN = 1024  # departures a section remembers before it forgets the oldest half


# Records held for every node on every replica are slotted (a ``__dict__`` is
# about 100 bytes of each) and hold no dicts of their own.


@dataclass(slots=True)
class _Member:
    version: int
    json: bytes
    order: int  # its address: lists have always been sorted by it


@dataclass(slots=True)
class Section:
    settings: bytes  # the network's JSON object without peers and closing brace
    version: int  # the last change to anything in the section
    floor: int  # deltas can be given to agents holding this version or later
    members: dict[str, _Member] = field(default_factory=dict)  # approved members
    gone: dict[str, int] = field(default_factory=dict)  # node id -> version it left
    receivers: set[str] = field(default_factory=set)  # every node with a port here
    _renders: OrderedDict[int, bytes] = field(default_factory=OrderedDict)

    def render(self, since: int) -> bytes:
        """This section for an agent that holds version ``since`` (0: nothing)."""
        key = since if since >= self.floor and since > 0 else 0
        if key >= self.version and key != 0:
            key = self.version  # nothing new: every such agent gets the same bytes
        cached = self._renders.get(key)
        if cached is not None:
            self._renders.move_to_end(key)
            return cached
        if key == 0:
            peers = sorted(self.members.values(), key=lambda m: m.order)
            body = self.settings + b',"peers":[' + b",".join(m.json for m in peers) + b"]}"
        else:
            updates = [m.json for m in self.members.values() if m.version > key]
            removed = [f'"{node}"'.encode() for node, v in self.gone.items() if v > key]
            body = (
                self.settings
                + b',"peers":null,"peer_updates":['
                + b",".join(updates)
                + b'],"peer_removals":['
                + b",".join(removed)
                + b"]}"
            )
        self._renders[key] = body
        while len(self._renders) > RENDERS_KEPT:
            self._renders.popitem(last=False)
        return body

    def changed(self, version: int) -> None:
        self.version = version
        self._renders.clear()

    def forget_old_departures(self) -> None:
        if len(self.gone) <= max(GONE_KEPT_MIN, len(self.members)):
            return
        by_age = sorted(self.gone.items(), key=lambda item: item[1])
        drop = by_age[: len(by_age) // 2]
        for node, _ in drop:
            del self.gone[node]
        self.floor = max(self.floor, drop[-1][1])  # older agents now need the full list


@dataclass(slots=True)
class Affected:
    """Whose netmap a batch of changes changed: these nodes, and every node
    in these sections (named, not listed: a section of 10,000 members
    listed for every enrolment made enrolment slower as the network grew,
    when nobody was even waiting)."""

    nodes: set[str] = field(default_factory=set)
    sections: set[str] = field(default_factory=set)

    def add(self, other: Affected) -> None:
        self.nodes |= other.nodes
        self.sections |= other.sections


@dataclass(slots=True)
class _Header:
    json: bytes
    approved: bool
    version: int
    # (network, the version it joined) for the sections the node sees, sorted
    joined: tuple[tuple[str, int], ...] = ()


class NetmapBook:
    def __init__(self) -> None:
        self.sections: dict[str, Section] = {}
        self.headers: dict[str, _Header] = {}
        self.relays = b"[]"  # the relays every approved node is told of (JSON)
        self.relays_version = 0

    # -- building -------------------------------------------------------------

    def rebuild(self, state: State, version: int) -> None:
        """Everything from the state, as of ``version`` (at start)."""
        self.sections.clear()
        self.headers.clear()
        for net_id in state.networks:
            self._refresh_network(state, net_id, version, floor=version)
        for node_id in state.nodes:
            self._refresh_node(state, node_id, version)
        self.update_relays(state, version)

    def update_relays(self, state: State, version: int) -> Affected:
        """After a change to the relays: every node hears of them (rare)."""
        listed = sorted(
            (r for r in state.relays.values() if r.public_key is not None), key=lambda r: r.name
        )
        raw = (
            b"["
            + b",".join(
                RelayInfo(
                    id=r.id,
                    name=r.name,
                    address=r.address,
                    public_key=r.public_key,
                    tls_port=r.tls_port,
                )
                .model_dump_json()
                .encode()
                for r in listed
                if r.public_key is not None
            )
            + b"]"
        )
        if raw == self.relays:
            return Affected()
        self.relays, self.relays_version = raw, version
        return Affected(nodes=set(self.headers))

    def update(
        self, state: State, networks: Iterable[str], nodes: Iterable[str], version: int
    ) -> Affected:
        """Bring the book up to ``state`` after a batch of changes that named
        ``networks`` and ``nodes``; whose netmap is now different."""
        affected = Affected()
        node_ids = set(nodes)
        net_ids = set(networks)
        for node_id in node_ids:
            net_ids |= {net_id for net_id, _ in self._joined(node_id)}
            net_ids |= set(state.node_networks(node_id))
        for net_id in net_ids:
            affected.add(self._refresh_network(state, net_id, version, only=node_ids))
        for node_id in node_ids:
            if self._refresh_node(state, node_id, version):
                affected.nodes.add(node_id)
        return affected

    def _refresh_network(
        self,
        state: State,
        net_id: str,
        version: int,
        *,
        floor: int | None = None,
        only: set[str] | None = None,
    ) -> Affected:
        """Update one section (``only``: just these members may have
        changed); who must hear of it."""
        net = state.networks.get(net_id)
        section = self.sections.get(net_id)
        if net is None:
            if section is None:
                return Affected()
            del self.sections[net_id]
            return Affected(nodes=section.receivers)
        settings = _settings(state, net_id)
        resettled = False
        if section is None:
            section = self.sections[net_id] = Section(settings, version, floor or version)
            section.changed(version)
        elif section.settings != settings:
            section.settings = settings
            section.changed(version)
            resettled = True
        ports = state.members.get(net_id, {})
        prefixlen = ipaddress.IPv4Network(net.cidr4).prefixlen
        prefixlen6 = ipaddress.IPv6Network(net.cidr6).prefixlen if net.cidr6 else None
        members_changed = False
        # new settings may change every entry (an IPv6 prefix gives each an address)
        every = only is None or resettled
        candidates = set(ports) | set(section.members) if every or only is None else only
        for node_id in candidates:
            node = state.nodes.get(node_id)
            port = ports.get(node_id)
            if node is None or port is None or node.status != "approved":
                if node_id in section.members:
                    del section.members[node_id]
                    section.gone[node_id] = version
                    members_changed = True
                continue
            entry = (
                PeerInfo(
                    node_id=node.id,
                    name=node.name,
                    public_key=node.public_key,
                    endpoints=list(node.endpoints),
                    port=PortInfo(
                        port_id=port.id,
                        mac=port.mac,
                        ipv4=port.ipv4,
                        prefixlen=prefixlen,
                        extra_ips=list(port.extra_ips),
                        ipv6=dualstack.address_of(net.cidr4, net.cidr6, port.ipv4, port.ipv6),
                        prefixlen6=prefixlen6,
                    ),
                    observed_ip=node.observed_ip,
                    lane_keys=list(node.lane_keys),
                    candidates=list(node.candidates),
                    tags=list(node.tags),
                )
                .model_dump_json()
                .encode()
            )
            old = section.members.get(node_id)
            if old is None or old.json != entry:
                order = int(ipaddress.IPv4Address(port.ipv4))
                section.members[node_id] = _Member(version, entry, order)
                section.gone.pop(node_id, None)
                members_changed = True
        if members_changed:
            section.changed(version)
            section.forget_old_departures()
        if only is None:
            before = section.receivers
            section.receivers = set(ports)
            moved = before ^ section.receivers
        else:
            moved = set()
            for node_id in only:
                if (node_id in ports) != (node_id in section.receivers):
                    moved.add(node_id)
                    section.receivers ^= {node_id}
        # those who joined or left, and if the section changed, everyone in it
        return Affected(moved, {net_id} if section.version == version else set())

    def _refresh_node(self, state: State, node_id: str, version: int) -> bool:
        """Update one node's header and memberships; whether they changed."""
        node = state.nodes.get(node_id)
        if node is None:
            return self.headers.pop(node_id, None) is not None
        info = SelfInfo(node_id=node.id, name=node.name, status=node.status)
        header = info.model_dump_json().encode()
        approved = node.status == "approved"
        old = self.headers.get(node_id)
        changed = old is None or old.json != header or old.approved != approved
        visible = set(state.node_networks(node_id)) if approved else set()
        newly_visible = approved and (old is None or not old.approved)
        before = dict(old.joined) if old is not None else {}
        joined = {
            # a network new to the node: the agent has no list for it yet
            net_id: before[net_id] if net_id in before and not newly_visible else version
            for net_id in visible
        }
        changed = changed or joined != before
        if not changed:
            return False
        self.headers[node_id] = _Header(header, approved, version, tuple(sorted(joined.items())))
        return True

    def _joined(self, node_id: str) -> tuple[tuple[str, int], ...]:
        header = self.headers.get(node_id)
        return () if header is None else header.joined

    # -- answering ------------------------------------------------------------

    def version(self, node_id: str) -> int:
        """The last change to this node's netmap (0: no such node)."""
        header = self.headers.get(node_id)
        if header is None:
            return 0
        best = header.version
        if header.approved:
            best = max(best, self.relays_version)
        for net_id, joined in header.joined:
            section = self.sections.get(net_id)
            if section is not None:
                best = max(best, joined, section.version)
        return best

    def netmap(self, node_id: str, since: int = 0) -> bytes | None:
        """The node's netmap for an agent holding version ``since``."""
        header = self.headers.get(node_id)
        if header is None:
            return None
        parts = []
        if header.approved:
            for net_id, joined in header.joined:
                section = self.sections.get(net_id)
                if section is not None:
                    parts.append(section.render(since if joined <= since else 0))
        return b'{"version":%d,"node":%s,"networks":[%s],"relays":%s}' % (
            self.version(node_id),
            header.json,
            b",".join(parts),
            self.relays if header.approved else b"[]",
        )

    def receivers(self, net_id: str) -> set[str]:
        """Every node with a port in the network (the book's own set: read it,
        on the event loop, and keep no reference)."""
        section = self.sections.get(net_id)
        return set() if section is None else section.receivers


def _settings(state: State, net_id: str) -> bytes:
    net = state.networks[net_id]
    routes = sorted(state.routes.get(net_id, {}).values(), key=lambda r: (r.prefix, r.metric))
    rules = sorted(state.rules.get(net_id, {}).values(), key=lambda c: c.created_at)
    section = NetworkMap(
        id=net.id,
        name=net.name,
        vni=net.vni,
        cidr4=net.cidr4,
        cidr6=net.cidr6,
        mtu=net.mtu,
        encrypted=net.encrypted,
        cloaked=net.cloaked,
        storm_pps=net.storm_pps,
        peers=None,
        routes=[
            RouteInfo(
                id=r.id,
                prefix=r.prefix,
                via_port_id=r.via_port_id,
                via_node_id=via.node_id if (via := state.ports.get(r.via_port_id)) else "",
                via_ipv4=via.ipv4 if via else "",
                via_ipv6=dualstack.address_of(net.cidr4, net.cidr6, via.ipv4, via.ipv6)
                if via
                else None,
                metric=r.metric,
                masquerade=r.masquerade,
            )
            for r in routes
        ],
        policy=net.policy,
        dns_zone=dnsnames.zone_of(net.name, net.dns_domain),
        dns_records=[
            DnsRecordInfo(name=d.name, address=d.address)
            for d in sorted(state.dns.get(net_id, {}).values(), key=lambda d: d.name)
        ],
        security_rules=[
            r.info
            for r in sorted(state.security.get(net_id, {}).values(), key=lambda r: r.created_at)
        ],
        cloak_rules=[
            CloakRuleInfo(
                id=c.id,
                node_id=c.node_id,
                protocol=c.protocol,
                port_from=c.port_from,
                port_to=c.port_to,
                source_cidr=c.source_cidr,
            )
            for c in rules
        ],
    )
    raw = section.model_dump_json(exclude={"peers", "peer_updates", "peer_removals"}).encode()
    return raw[:-1]  # reopened to append the peers

"""The netmap: everything one node needs to know to join its networks.

The controller computes it, the agent reconciles it. ``peers`` of a network
lists every approved member *including the receiving node itself* (agents skip
their own ``node_id``): that lets the controller serialise a network's member
list once and share it between all members' netmaps.

Peer lists are the bulk of a netmap (N entries for each of N members), so a
long-poll that names the version it holds gets ``"peers": null`` and only what
changed since: the members added or changed (``peer_updates``) and the ones that
left (``peer_removals``). :meth:`NetMap.merged_with` applies that to the previous
netmap. A change to one member of a network of 10,000 is then one entry in each
member's answer, not 10,000.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skylan.model import validators
from skylan.model.dnsnames import DnsRecordInfo
from skylan.model.lanelimit import MAX_LANES
from skylan.model.securitygroups import Policy, SecurityRuleInfo


class PortInfo(BaseModel):
    """A node's membership in one network."""

    port_id: str
    mac: str
    ipv4: str
    prefixlen: int
    extra_ips: list[str] = Field(default_factory=list)
    ipv6: str | None = None  # when the network has an IPv6 prefix (see model.dualstack)
    prefixlen6: int | None = None


class Candidate(BaseModel):
    """An address a node may be reached at beyond its own interfaces (those
    are ``endpoints``): where its NAT maps a lane's socket (``reflexive``, as
    the controller saw it) or a relay's port for it (``relay``)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["reflexive", "relay"]
    address: str = Field(description="host:port")
    lane: int = Field(0, ge=0, lt=MAX_LANES)

    _address = field_validator("address")(validators.endpoint)


MAX_CANDIDATES = 2 * MAX_LANES


class PeerInfo(BaseModel):
    node_id: str
    name: str
    public_key: str
    endpoints: list[str]
    port: PortInfo
    observed_ip: str | None = None  # where the controller sees it from (NAT's outside)
    # the public keys of its worker lanes 1..N-1, each listening on the
    # endpoint's port + lane; empty: one lane (public_key)
    lane_keys: list[str] = Field(default_factory=list)
    candidates: list[Candidate] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)  # what security rules select it by


class RouteInfo(BaseModel):
    """Traffic for ``prefix`` goes to the member ``via_node_id`` (the gateway),
    which forwards it to its LAN, masquerading it when ``masquerade``."""

    id: str
    prefix: str
    via_port_id: str
    via_node_id: str
    via_ipv4: str
    via_ipv6: str | None = None  # the next hop for an IPv6 prefix
    metric: int = 100
    masquerade: bool = True


class CloakRuleInfo(BaseModel):
    id: str
    node_id: str | None  # None: applies to every member
    protocol: str  # tcp, udp, icmp or any
    port_from: int | None
    port_to: int | None
    source_cidr: str


class NetworkMap(BaseModel):
    id: str
    name: str
    vni: int  # the network id carried inside the encrypted container
    cidr4: str
    cidr6: str | None
    mtu: int
    encrypted: bool
    cloaked: bool
    storm_pps: int
    routes: list[RouteInfo]
    cloak_rules: list[CloakRuleInfo]
    policy: Policy = "allow"  # security groups: see model.securitygroups
    security_rules: list[SecurityRuleInfo] = Field(default_factory=list)
    # DNS: members answer NODE.<dns_zone> and these names (None: no DNS here)
    dns_zone: str | None = None
    dns_records: list[DnsRecordInfo] = Field(default_factory=list)
    # the whole member list, or None: the agent's list (as of the version it
    # sent) with ``peer_updates`` and ``peer_removals`` applied
    peers: list[PeerInfo] | None
    peer_updates: list[PeerInfo] = Field(default_factory=list)
    peer_removals: list[str] = Field(default_factory=list)  # node ids


class RelayInfo(BaseModel):
    """A relay nodes may reach each other through (see ``skylan relay``)."""

    id: str
    name: str
    address: str  # host:port, UDP: where nodes say hello
    public_key: str  # its X25519 key: hellos are MAC'd with it
    tls_port: int | None = None  # its TCP fallback (TLS), on the address's host


class SelfInfo(BaseModel):
    node_id: str
    name: str
    status: str  # pending, approved, denied


class NetMap(BaseModel):
    version: int
    node: SelfInfo
    networks: list[NetworkMap]
    relays: list[RelayInfo] = Field(default_factory=list)  # always whole

    def own_port(self, network: NetworkMap) -> PortInfo | None:
        for peer in network.peers or ():
            if peer.node_id == self.node.node_id:
                return peer.port
        return None

    def merged_with(self, previous: NetMap | None) -> NetMap:
        """Complete the peer lists the controller sent as changes (``null``)
        from the netmap this one follows. Raises ValueError if a list is
        missing, in which case the agent asks again with ``since=0``."""
        known = {n.id: n.peers for n in previous.networks} if previous else {}
        networks = []
        for net in self.networks:
            if net.peers is not None:
                networks.append(net)
                continue
            base = known.get(net.id)
            if base is None:
                raise ValueError(f"netmap omits the peers of {net.name}, and none are known")
            gone = set(net.peer_removals)
            merged = {p.node_id: p for p in base if p.node_id not in gone}
            merged.update((p.node_id, p) for p in net.peer_updates)
            peers = sorted(merged.values(), key=lambda p: _address_key(p.port.ipv4))
            networks.append(
                net.model_copy(update={"peers": peers, "peer_updates": [], "peer_removals": []})
            )
        return self.model_copy(update={"networks": networks})


def _address_key(ipv4: str) -> tuple[int, ...]:
    """Members in address order, as the controller lists them."""
    try:
        return tuple(int(part) for part in ipv4.split("."))
    except ValueError:
        return (256,)

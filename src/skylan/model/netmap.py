"""The netmap: everything one node needs to know to join its networks.

The controller computes it, the agent reconciles it. ``peers`` of a network
lists every approved member *including the receiving node itself* (agents skip
their own ``node_id``): that lets the controller serialise a network's member
list once and share it between all members' netmaps.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class PortInfo(BaseModel):
    """A node's membership in one network."""

    port_id: str
    mac: str
    ipv4: str
    prefixlen: int
    extra_ips: list[str] = Field(default_factory=list)


class PeerInfo(BaseModel):
    node_id: str
    name: str
    public_key: str
    endpoints: list[str]
    port: PortInfo


class RouteInfo(BaseModel):
    id: str
    prefix: str
    via_port_id: str
    via_ipv4: str
    metric: int = 100


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
    peers: list[PeerInfo]
    routes: list[RouteInfo]
    cloak_rules: list[CloakRuleInfo]


class SelfInfo(BaseModel):
    node_id: str
    name: str
    status: str  # pending, approved, denied


class NetMap(BaseModel):
    version: int
    node: SelfInfo
    networks: list[NetworkMap]

    def own_port(self, network: NetworkMap) -> PortInfo | None:
        for peer in network.peers:
            if peer.node_id == self.node.node_id:
                return peer.port
        return None

"""The netmap: everything one node needs to know to join its networks.

The controller computes it, the agent reconciles it. ``peers`` of a network
lists every approved member *including the receiving node itself* (agents skip
their own ``node_id``): that lets the controller serialise a network's member
list once and share it between all members' netmaps.

Peer lists are the bulk of a netmap (N entries for each of N members), so a
long-poll that names the version it holds gets ``"peers": null`` for every
network whose member list has not changed since; :meth:`NetMap.merged_with`
restores them from the previous netmap.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

MAX_LANES = 64  # data-plane worker lanes per node (one per TAP queue)


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
    observed_ip: str | None = None  # where the controller sees it from (NAT's outside)
    # the public keys of its worker lanes 1..N-1, each listening on the
    # endpoint's port + lane; empty: one lane (public_key)
    lane_keys: list[str] = Field(default_factory=list)


class RouteInfo(BaseModel):
    """Traffic for ``prefix`` goes to the member ``via_node_id`` (the gateway),
    which forwards it to its LAN, masquerading it when ``masquerade``."""

    id: str
    prefix: str
    via_port_id: str
    via_node_id: str
    via_ipv4: str
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
    peers: list[PeerInfo] | None  # None: unchanged since the version the agent sent


class SelfInfo(BaseModel):
    node_id: str
    name: str
    status: str  # pending, approved, denied


class NetMap(BaseModel):
    version: int
    node: SelfInfo
    networks: list[NetworkMap]

    def own_port(self, network: NetworkMap) -> PortInfo | None:
        for peer in network.peers or ():
            if peer.node_id == self.node.node_id:
                return peer.port
        return None

    def merged_with(self, previous: NetMap | None) -> NetMap:
        """Fill peer lists the controller left out (``null``: unchanged) from
        the netmap this one follows. Raises ValueError if one is missing,
        in which case the agent asks again with ``since=0``."""
        known = {n.id: n.peers for n in previous.networks} if previous else {}
        networks = []
        for net in self.networks:
            if net.peers is not None:
                networks.append(net)
                continue
            peers = known.get(net.id)
            if peers is None:
                raise ValueError(f"netmap omits the peers of {net.name}, and none are known")
            networks.append(net.model_copy(update={"peers": peers}))
        return self.model_copy(update={"networks": networks})

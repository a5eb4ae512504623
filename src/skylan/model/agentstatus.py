"""What a running agent knows of itself: each data-plane lane's view (its
tunnels, interfaces, counters), the lanes merged, the host's configuration, and
the status file ``skylan status`` reads.

These cross process boundaries: worker lanes send :class:`LaneStatus` to lane 0
as JSON lines, the agent writes :class:`AgentStatus` for the CLI, and its
heartbeats and statistics reports are made from them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from skylan.model.netmap import Candidate

PathName = Literal["local", "reflexive", "relay"]  # which kind of candidate a tunnel uses
COUNTERS = ("tx_bytes", "rx_bytes", "tx_packets", "rx_packets")
INTERFACE_COUNTERS = (*COUNTERS, "rx_coalesced", "tx_acks_thinned")
PEER_COUNTERS = (*COUNTERS, "repaired")


class _Status(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TunnelStatus(_Status):
    """The tunnel(s) to one peer, as a lane sees them."""

    established: bool = False
    endpoint: str | None = None  # host:port of the peer's underlay address in use
    handshake_age_s: float | None = None
    rtt_ms: float | None = None
    tx_bytes: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    rx_packets: int = 0
    dead: bool = False
    fec: bool = False  # parity is being sent (a lossy path)
    repaired: int = 0  # frames rebuilt from parity
    tunnels: int = 1  # one per lane of the peer this lane pairs with
    path: PathName | None = None  # which of its candidates is in use
    relay: str | None = None  # the relay's name, when relayed
    path_rtt_ms: float | None = None  # that path's, from its last answered probe


class TapStatus(_Status):
    """One network's TAP interface."""

    network_id: str
    kind: Literal["tap"] = "tap"
    offloads: list[str] = Field(default_factory=list)
    udp_gso: bool = False
    ack_thinning: bool = False
    announced: list[str] = Field(default_factory=list)  # IPv4s this host was seen to own
    tx_bytes: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    rx_packets: int = 0
    rx_coalesced: int = 0
    tx_acks_thinned: int = 0


class VxlanStatus(_Status):
    """A network carried by the kernel's VXLAN (unencrypted)."""

    network_id: str
    kind: Literal["vxlan"] = "vxlan"
    vni: int
    remotes: int


class LaneSummary(_Status):
    lane: int
    listen_port: int | None
    pid: int | None
    running: bool
    restarts: int
    tunnels: int
    established: int
    tx_bytes: int
    rx_bytes: int
    reflexive: str | None = None
    relays: list[str] = Field(default_factory=list)


class LaneStatus(_Status):
    """One lane's view; on lane 0 with workers, every lane's merged
    (``lanes`` then lists each lane's summary)."""

    lane: int
    dataplane: str = "python"  # python | native
    pid: int | None = None
    listen_port: int | None = None
    reflexive: str | None = None  # host:port: where the controller sees this lane's socket
    relays: list[str] = Field(default_factory=list)  # host:port: its own port on each relay
    relay_rtt_ms: dict[str, float] = Field(default_factory=dict)  # by relay name
    interfaces: dict[str, TapStatus] = Field(default_factory=dict)
    vxlan: dict[str, VxlanStatus] = Field(default_factory=dict)
    gso: bool = False
    gro: bool = False
    core: dict[str, Any] | None = None  # the compiled core's own counters, by its names
    send_errors: int = 0
    fallbacks: list[str] = Field(default_factory=list)  # what fell back, and why
    bad_peers: dict[str, str] = Field(default_factory=dict)  # name -> why it was skipped
    peers: dict[str, TunnelStatus] = Field(default_factory=dict)  # by node id
    drops: dict[str, int] = Field(default_factory=dict)  # by reason
    # what the lane supervisor knows of a worker lane
    running: bool = True
    restarts: int = 0
    last_exit: int | None = None
    backoff_s: float = 0.0
    lanes: list[LaneSummary] | None = None


class HostRoute(_Status):
    prefix: str
    via: str
    dev: str
    metric: int


class HostStatus(_Status):
    """What the agent configured on the host: gateways, routes, cloaking."""

    applied: bool
    error: str | None = None
    gateway_for: list[str] = Field(default_factory=list)
    masquerade: list[str] = Field(default_factory=list)
    routes: list[HostRoute] = Field(default_factory=list)
    cloaked: bool = False
    cloak_interfaces: list[str] = Field(default_factory=list)
    cloak_openings: list[dict[str, Any]] = Field(default_factory=list)
    # overlay interfaces under a deny policy, with how many rules let traffic in
    guarded: dict[str, int] = Field(default_factory=dict)


class DnsStatus(_Status):
    """The agent's DNS: how the host's resolver reaches it, and what it answers."""

    mode: str  # resolved, resolv-conf or off
    zones: list[str] = Field(default_factory=list)
    listening: list[str] = Field(default_factory=list)
    upstreams: list[str] = Field(default_factory=list)  # where other names go (resolv-conf)
    error: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)


class PeerEntry(_Status):
    """A member of one of this node's networks, and the tunnel to it."""

    name: str
    node_id: str
    ipv4: str | None
    mac: str | None
    endpoints: list[str]
    candidates: list[Candidate] = Field(default_factory=list)  # reflexive and relay
    tunnel: TunnelStatus | None


class NetworkEntry(_Status):
    name: str
    cidr4: str
    mtu: int
    encrypted: bool
    cloaked: bool
    ipv4: str | None
    mac: str | None
    peers: list[PeerEntry]


class AgentStatus(_Status):
    """The status file: what ``skylan status`` shows."""

    node: str
    node_id: str
    controller: str
    node_status: str
    netmap_version: int | None
    last_contact: float | None
    last_error: str | None
    apply_error: str | None
    dataplane: LaneStatus | None
    host: HostStatus
    written_at: float
    networks: list[NetworkEntry]
    dns: DnsStatus | None = None

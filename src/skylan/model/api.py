"""The REST API's response types, shared by the controller and the SDK.

Plain pydantic models: the SDK returns them, the controller builds them, and
neither needs the other's dependencies.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from skylan.model.securitygroups import Policy, Protocol


def _utc(ts: datetime) -> datetime:
    """Everything skylan stores is UTC; SQLite hands datetimes back naive,
    which would leave the API's timestamps without their ``Z``."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(_utc)]


class ErrorBody(BaseModel):
    """Every refusal (4xx) and failure: a sentence a person can act on, and
    details such as the field it is about."""

    error: str
    detail: dict[str, Any] = Field(default_factory=dict)


class NetworkOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    vni: int
    description: str
    cidr4: str
    cidr6: str | None
    mtu: int
    encrypted: bool
    cloaked: bool
    storm_pps: int
    created_at: Timestamp
    updated_at: Timestamp
    members: int = 0
    policy: Policy = Field("allow", description="security groups' default: allow or deny")
    dns_domain: str | None = Field(None, description="members are NODE.NETWORK.<dns_domain>")
    dns_zone: str | None = Field(None, description="NETWORK.<dns_domain>, if DNS is on")


class TokenOut(BaseModel):
    id: str
    description: str
    max_uses: int | None
    uses: int
    expires_at: Timestamp | None
    networks: list[str]
    needs_approval: bool
    revoked: bool
    created_at: Timestamp
    state: str  # active, used up, expired, revoked


class TokenCreated(TokenOut):
    token: str = Field(description="shown only once: give it to `skylan agent join`")
    join_command: str


class Membership(BaseModel):
    network_id: str
    network: str
    port_id: str
    mac: str
    ipv4: str
    extra_ips: list[str]
    ipv6: str | None = None
    floating_ips: list[str] = Field(
        default_factory=list,
        description="addresses the node announced by ARP that the controller did not assign "
        "(a keepalived VIP, for example)",
    )


class PeerStatus(BaseModel):
    """A tunnel from this node to another, as its agent last reported it."""

    node_id: str
    node: str | None
    established: bool
    endpoint: str | None
    handshake_age_s: float | None
    rtt_ms: float | None
    dead: bool
    path: str | None = Field(None, description="local, reflexive (direct) or relay")
    relay: str | None = Field(None, description="the relay's name, when relayed")


class NodeOut(BaseModel):
    id: str
    name: str
    public_key: str
    status: str
    online: bool
    last_seen: Timestamp | None
    uptime_s: int | None
    agent_version: str
    os: str
    tags: list[str]
    endpoints: list[str]
    interfaces: list[dict[str, Any]]
    enrolled_at: Timestamp
    networks: list[Membership]
    peers: list[PeerStatus] = Field(default_factory=list)


class PortOut(BaseModel):
    id: str
    network_id: str
    node_id: str
    node: str
    mac: str
    ipv4: str
    extra_ips: list[str]
    created_at: Timestamp
    ipv6: str | None = Field(None, description="when the network has an IPv6 prefix")
    ipv6_static: str | None = Field(None, description="set by hand, rather than derived")


class RouteOut(BaseModel):
    id: str
    network_id: str
    prefix: str
    via_port_id: str
    via_node: str
    metric: int
    masquerade: bool
    created_at: Timestamp


class GatewayCandidate(BaseModel):
    """A member that reaches a LAN prefix the other members do not."""

    node_id: str
    node: str
    interface: str
    prefix: str
    address: str


class CloakRuleOut(BaseModel):
    id: str
    network_id: str
    node_id: str | None
    protocol: str
    port_from: int | None
    port_to: int | None
    source_cidr: str
    description: str
    created_at: Timestamp


class DnsRecordOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    network_id: str
    name: str
    fqdn: str = Field(description="the whole name, or the name alone while DNS is off")
    address: str
    created_at: Timestamp


class SecurityRuleOut(BaseModel):
    id: str
    network_id: str
    protocol: Protocol
    port_from: int | None
    port_to: int | None
    source: str = Field(description="any, tag:NAME, node:NAME or a CIDR")
    target: str = Field(description="all, tag:NAME or node:NAME")
    description: str
    created_at: Timestamp


class ReachabilityOut(BaseModel):
    """The dry run's answer: would a new connection be let in?"""

    allowed: bool
    reason: str
    rule_id: str | None = Field(None, description="the rule that allows it, if one does")
    source: str = Field(description="the address the connection comes from")
    target: str = Field(description="the member that lets it in or not")
    via: str | None = Field(
        None,
        description="when the target asked about is an address behind a gateway: the "
        "route's prefix (the gateway member's rules decide)",
    )
    protocol: Protocol
    port: int | None


class ApiTokenOut(BaseModel):
    id: str
    name: str
    scope: str
    created_at: Timestamp
    revoked: bool


class ApiTokenCreated(ApiTokenOut):
    secret: str = Field(description="shown only once")


class EnrollResponse(BaseModel):
    node_id: str
    name: str
    status: str
    credential: str = Field(description="the node's bearer credential; keep it secret")


class Bucket(BaseModel):
    minute: int  # unix time // 60
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int
    drops: int
    rtt_ms: float | None = None


class NodeStats(BaseModel):
    node_id: str
    minutes: int
    buckets: list[Bucket]
    peers: dict[str, Bucket]


class NetworkStats(BaseModel):
    network_id: str
    minutes: int
    buckets: list[Bucket]


class TotalStats(BaseModel):
    minutes: int
    nodes: int
    buckets: list[Bucket]


class RelayOut(BaseModel):
    id: str
    name: str
    address: str
    public_key: str | None = Field(description="none until the relay has started")
    tls_port: int | None = Field(None, description="its TCP fallback (TLS), if it serves one")
    created_at: Timestamp
    last_seen: Timestamp | None
    online: bool
    nodes: int = Field(description="nodes registered with it at its last report")
    forwarded_bytes: int
    forwarded_packets: int
    dropped: int


class RelayCreated(RelayOut):
    credential: str = Field(description="for `skylan relay serve`; shown only once")
    serve_command: str = Field(description="what to run on the relay's machine")


class AuditEvent(BaseModel):
    id: int
    at: Timestamp
    actor_kind: str = Field(description="token, console, join-token")
    actor: str = Field(description="the API token's name (console: the token logged in with)")
    source: str = Field(description="the client's address")
    action: str = Field(description="e.g. network.create, node.update, node.enroll")
    target_id: str
    target: str = Field(description="the target's name, when it has one")
    before: dict[str, Any] | None = Field(description="the changed fields before (secrets never)")
    after: dict[str, Any] | None
    request: str = Field(description="the API request that made it")


class AuditPage(BaseModel):
    events: list[AuditEvent] = Field(description="newest first")
    next_before: int | None = Field(description="pass as `before` for the next (older) page")

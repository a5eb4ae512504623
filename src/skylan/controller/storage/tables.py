"""The controller's tables. Constraints that must hold under concurrency (one
address per network, unique keys and names) are enforced by the database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything skylan stores is UTC."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class NetworkRow(Base):
    __tablename__ = "networks"
    __table_args__ = (
        UniqueConstraint("name", name="uq_networks_name"),
        UniqueConstraint("vni", name="uq_networks_vni"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    vni: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")
    cidr4: Mapped[str] = mapped_column(String(18))
    cidr6: Mapped[str | None] = mapped_column(String(43), nullable=True)
    mtu: Mapped[int] = mapped_column(Integer, default=1420)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=True)
    cloaked: Mapped[bool] = mapped_column(Boolean, default=False)
    storm_pps: Mapped[int] = mapped_column(Integer, default=1000)
    policy: Mapped[str] = mapped_column(String(8), default="allow")  # security groups
    # members' names live under NETWORK.<dns_domain>; None: no DNS for this network
    # (no column default: the ORM would take an explicit None for "use the default")
    dns_domain: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16))  # "admin" or "read"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class RelayRow(Base):
    """A relay the nodes may use: where it listens, its key once it has
    started, and the hash of the credential it signs in with."""

    __tablename__ = "relays"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(64))  # host:port, UDP
    public_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tls_port: Mapped[int | None] = mapped_column(Integer, nullable=True)  # its TCP fallback
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    forwarded_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    forwarded_packets: Mapped[int] = mapped_column(BigInteger, default=0)
    dropped: Mapped[int] = mapped_column(BigInteger, default=0)
    nodes: Mapped[int] = mapped_column(Integer, default=0)  # registered at its last report


class ConsoleSessionRow(Base):
    """A browser's login: the cookie holds a random secret, the row its hash.

    Tied to the API token used to log in, so revoking that token (or deleting
    it) ends the session on the next request.
    """

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    api_token_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True
    )
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JoinTokenRow(Base):
    __tablename__ = "join_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    description: Mapped[str] = mapped_column(Text, default="")
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    max_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: unlimited
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    network_ids: Mapped[list[Any]] = mapped_column(default=list)
    needs_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NodeRow(Base):
    __tablename__ = "nodes"
    __table_args__ = (
        UniqueConstraint("name", name="uq_nodes_name"),
        UniqueConstraint("public_key", name="uq_nodes_public_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(44))
    credential_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="approved")
    os: Mapped[str] = mapped_column(String(200), default="")
    agent_version: Mapped[str] = mapped_column(String(50), default="")
    tags: Mapped[list[Any]] = mapped_column(default=list)
    interfaces: Mapped[list[Any]] = mapped_column(default=list)
    endpoints: Mapped[list[Any]] = mapped_column(default=list)
    # the address the controller sees the agent's requests come from (its NAT's
    # public side, if any): how cloaked peers recognise it before a handshake
    observed_ip: Mapped[str | None] = mapped_column(String(45), nullable=True)
    token_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    enrolled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    agent_started_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    # as the agent last reported them: its tunnels (RTT, handshake age) and the
    # addresses it saw its own machine announce by ARP per network (floating IPs)
    peer_status: Mapped[list[Any]] = mapped_column(default=list)
    seen_ips: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # when those (and os, agent_version) last changed: what other replicas read
    details_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # public keys of the agent's data-plane worker lanes 1..N-1 (lane 0 uses
    # public_key): peers pair their own lanes with these
    lane_keys: Mapped[list[Any]] = mapped_column(default=list)
    candidates: Mapped[list[Any]] = mapped_column(default=list)
    # its agent's first request with its credential (the audit log's first contact)
    first_contact_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    # a pending node's networks (from its join token): it gets its ports, and
    # addresses from the pools, only when approved
    join_networks: Mapped[list[Any]] = mapped_column(default=list)
    # the highest statistics report (StatsReport.seq) of this node that is stored
    stats_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # the agent's id for its enrolment request (hashed): a repeat of the same
    # request, whose answer the agent lost, is answered again
    enroll_request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PortRow(Base):
    __tablename__ = "ports"
    __table_args__ = (
        UniqueConstraint("network_id", "ipv4", name="uq_ports_network_ipv4"),
        UniqueConstraint("network_id", "node_id", name="uq_ports_network_node"),
        UniqueConstraint("mac", name="uq_ports_mac"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    mac: Mapped[str] = mapped_column(String(17))
    ipv4: Mapped[str] = mapped_column(String(15))
    # a static IPv6 address; None: the network's prefix with the IPv4 host part
    ipv6: Mapped[str | None] = mapped_column(String(39), nullable=True)
    extra_ips: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RouteRow(Base):
    __tablename__ = "routes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(43))
    via_port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"))
    metric: Mapped[int] = mapped_column(Integer, default=100)
    masquerade: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CloakRuleRow(Base):
    __tablename__ = "cloak_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    node_id: Mapped[str | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="CASCADE"), nullable=True
    )
    protocol: Mapped[str] = mapped_column(String(8))
    port_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_to: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source_cidr: Mapped[str] = mapped_column(String(43), default="0.0.0.0/0")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SecurityRuleRow(Base):
    """A security group rule: ``protocol`` (and ports) from a source (anyone,
    a tag, a node or a CIDR) to a target (every member, a tag or a node). A
    rule naming a node goes with the node."""

    __tablename__ = "security_rules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    protocol: Mapped[str] = mapped_column(String(8))
    port_from: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_to: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source_kind: Mapped[str] = mapped_column(String(8))  # any, tag, node, cidr
    source_value: Mapped[str | None] = mapped_column(String(64), nullable=True)  # tag, cidr
    source_node_id: Mapped[str | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="CASCADE"), nullable=True
    )
    target_kind: Mapped[str] = mapped_column(String(8))  # any, tag, node
    target_value: Mapped[str | None] = mapped_column(String(64), nullable=True)  # tag
    target_node_id: Mapped[str | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="CASCADE"), nullable=True
    )
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DnsRecordRow(Base):
    """A name in a network's zone for an address, such as a floating IP."""

    __tablename__ = "dns_records"
    __table_args__ = (UniqueConstraint("network_id", "name", name="uq_dns_records_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(39))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChangeRow(Base):
    """The change log that drives netmap versions on every controller replica.

    Its id is the netmap version: monotonic, and the same on every replica.
    """

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    network_ids: Mapped[list[Any]] = mapped_column(default=list)
    node_ids: Mapped[list[Any]] = mapped_column(default=list)
    api_token_ids: Mapped[list[Any]] = mapped_column(default=list)
    relay_ids: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StatsRow(Base):
    """Traffic counters summed per node, peer ('' = the node's total) and minute."""

    __tablename__ = "stats"

    node_id: Mapped[str] = mapped_column(
        ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True
    )
    peer_id: Mapped[str] = mapped_column(String(48), primary_key=True)  # node id or "port:<net>"
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # unix time // 60
    rx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    tx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    rx_packets: Mapped[int] = mapped_column(BigInteger, default=0)
    tx_packets: Mapped[int] = mapped_column(BigInteger, default=0)
    drops: Mapped[int] = mapped_column(BigInteger, default=0)
    rtt_ms: Mapped[float | None] = mapped_column(nullable=True)


class AuditRow(Base):
    """One change someone made, kept for the audit log: append-only through
    the API, pruned after the retention the controller is given."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))  # token, console, node, join-token
    actor: Mapped[str] = mapped_column(String(128))  # the API token's name, a node's id, …
    source: Mapped[str] = mapped_column(String(64), default="")  # the client's address
    action: Mapped[str] = mapped_column(String(64), index=True)  # e.g. network.update
    target_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    target: Mapped[str] = mapped_column(String(128), default="")  # its name, when it has one
    before: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    request: Mapped[str] = mapped_column(String(200), default="")  # method and path

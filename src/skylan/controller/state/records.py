"""What the state holds: immutable records, one per row that matters for
answering requests. A change replaces a record whole; nobody edits one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from skylan.model.netmap import Candidate
from skylan.model.securitygroups import Policy, SecurityRuleInfo


@dataclass(frozen=True, slots=True)
class Network:
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
    policy: Policy  # security groups' default
    dns_domain: str | None  # members' names are NODE.NAME.<dns_domain>; None: no DNS
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    name: str
    public_key: str
    credential_hash: str
    status: str  # pending, approved, denied
    tags: tuple[str, ...]
    endpoints: tuple[str, ...]
    observed_ip: str | None
    token_id: str | None
    enrolled_at: datetime
    lane_keys: tuple[str, ...]
    candidates: tuple[Candidate, ...]  # reflexive and relay addresses it reported
    contacted: bool  # its agent has used its credential (first contact recorded)
    join_networks: tuple[str, ...]  # pending: the networks it joins when approved


@dataclass(frozen=True, slots=True)
class Port:
    id: str
    network_id: str
    node_id: str
    mac: str
    ipv4: str
    ipv6: str | None  # static; None: derived from the IPv4 one (model.dualstack)
    extra_ips: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Route:
    id: str
    network_id: str
    prefix: str
    via_port_id: str
    metric: int
    masquerade: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CloakRule:
    id: str
    network_id: str
    node_id: str | None
    protocol: str
    port_from: int | None
    port_to: int | None
    source_cidr: str
    description: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SecurityRule:
    network_id: str
    info: SecurityRuleInfo  # compiled: nodes by id, as the netmap carries it
    description: str
    created_at: datetime

    @property
    def id(self) -> str:
        return self.info.id


@dataclass(frozen=True, slots=True)
class DnsRecord:
    id: str
    network_id: str
    name: str  # relative to the network's zone
    address: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: str
    name: str
    secret_hash: str
    scope: str  # admin or read
    created_at: datetime
    revoked: bool


@dataclass(frozen=True, slots=True)
class Relay:
    id: str
    name: str
    address: str  # host:port (UDP)
    public_key: str | None  # None until it has started and said so
    tls_port: int | None  # where it serves the TCP fallback, as it said
    credential_hash: str
    created_at: datetime

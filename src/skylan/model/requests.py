"""What people and scripts send to the controller's REST API: the bodies of
its create and update calls, shared by the controller (which validates with
them), the SDK and the CLI (which build them)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from skylan.model import dnsnames, dualstack, validators
from skylan.model.names import Kind, identifier
from skylan.model.securitygroups import (
    SELECTOR_HELP,
    TARGET_HELP,
    Policy,
    Protocol,
    parse_source,
    parse_target,
)


def _kinds(annotation: object) -> set[object]:
    """The plain types an annotation admits (through unions and Annotated)."""
    args = get_args(annotation)
    if not args:
        return {annotation}
    return set().union(*(_kinds(a) for a in args))


class Request(BaseModel):
    """Unknown fields are an error (a typo must not be ignored), and so are NaN
    and Infinity."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: object, info: ValidationInfo) -> object:
        """JSON true/false is not a number: pydantic's lax mode would take it as
        1/0 (a token with ``"max_uses": true`` would allow one use)."""
        if isinstance(value, bool) and info.field_name is not None:
            kinds = _kinds(cls.model_fields[info.field_name].annotation)
            if bool not in kinds and kinds & {int, float}:
                raise ValueError("must be a number, not true/false")
        return value


CIDR6_TOO_SMALL = (
    "cidr6 {cidr6} is smaller than cidr4 {cidr4}: each member's IPv6 address is the IPv6 "
    "prefix with its IPv4 host part, so the IPv6 network must have room for every one"
)


class NetworkCreate(Request):
    name: str
    description: str = Field("", max_length=1000)
    cidr4: str = Field(description="IPv4 network, e.g. 172.16.1.0/24")
    cidr6: str | None = Field(None, description="optional IPv6 network")
    mtu: int = Field(1420, ge=576, le=9000)
    encrypted: bool = True
    cloaked: bool = False
    storm_pps: int = Field(1000, ge=0, le=10_000_000, description="0 disables storm control")
    policy: Policy = Field("allow", description="security groups: deny allows only the rules")
    dns_domain: str | None = Field(
        dnsnames.DEFAULT_DOMAIN,
        max_length=dnsnames.MAX_NAME,
        description="members are NODE.NETWORK.<dns_domain>; null: no DNS",
    )

    _name = field_validator("name")(validators.name)
    _dns = field_validator("dns_domain")(validators.optional_dns_domain)
    _cidr4 = field_validator("cidr4")(validators.cidr4)
    _cidr6 = field_validator("cidr6")(validators.cidr6)

    @model_validator(mode="after")
    def _ipv6_mtu(self) -> NetworkCreate:
        if self.cidr6 is not None and self.mtu < 1280:
            raise ValueError("IPv6 needs an MTU of at least 1280")
        if self.cidr6 is not None and not dualstack.fits(self.cidr4, self.cidr6):
            raise ValueError(CIDR6_TOO_SMALL.format(cidr6=self.cidr6, cidr4=self.cidr4))
        return self


class NetworkUpdate(Request):
    """Everything but the IPv4 CIDR can change (addresses are bound to it)."""

    name: str | None = None
    description: str | None = Field(None, max_length=1000)
    cidr6: str | None = None
    mtu: int | None = Field(None, ge=576, le=9000)
    encrypted: bool | None = None
    cloaked: bool | None = None
    storm_pps: int | None = Field(None, ge=0, le=10_000_000)
    policy: Policy | None = None
    dns_domain: str | None = Field(None, max_length=dnsnames.MAX_NAME, description="null: no DNS")

    _name = field_validator("name")(validators.optional_name)
    _dns = field_validator("dns_domain")(validators.optional_dns_domain)
    _cidr6 = field_validator("cidr6")(validators.cidr6)


class PortCreate(Request):
    node: str = Field(description="node id or name")
    ipv4: str | None = Field(None, description="static address; omit to take one from the pool")
    extra_ips: list[str] = Field(
        default_factory=list, max_length=64, description="floating addresses this port may also use"
    )
    ipv6: str | None = Field(
        None, description="static IPv6 address; omit for the prefix with the IPv4 host part"
    )

    _extra = field_validator("extra_ips")(validators.extra_ips)
    _ipv6 = field_validator("ipv6")(validators.optional_ipv6)


class PortUpdate(Request):
    ipv4: str | None = None
    extra_ips: list[str] | None = Field(None, max_length=64)
    ipv6: str | None = Field(None, description="static IPv6 address; null: the derived one")

    _extra = field_validator("extra_ips")(validators.extra_ips)
    _ipv6 = field_validator("ipv6")(validators.optional_ipv6)


class RouteCreate(Request):
    prefix: str
    via: str = Field(description="the gateway: its port id, or its node id or name")
    metric: int = Field(100, ge=0, le=65535, description="lower wins among live gateways")
    masquerade: bool = Field(True, description="hide overlay addresses behind the gateway's")

    _prefix = field_validator("prefix")(validators.any_prefix)


def _port_range(protocol: str, port_from: int | None, port_to: int | None) -> int | None:
    """Checks a rule's ports; its port_to (port_from when not given)."""
    if protocol in ("tcp", "udp"):
        if port_from is None:
            raise ValueError(f"{protocol} rules need port_from (and optionally port_to)")
        port_to = port_to or port_from
        if port_to < port_from:
            raise ValueError("port_to must not be below port_from")
        return port_to
    if port_from is not None or port_to is not None:
        raise ValueError(f"{protocol} rules take no ports")
    return None


class DnsRecordCreate(Request):
    name: str = Field(max_length=dnsnames.MAX_NAME, description="relative: vip is vip.NET.DOMAIN")
    address: str = Field(max_length=45, description="an IPv4 or IPv6 address")

    _name = field_validator("name")(dnsnames.dns_name)
    _address = field_validator("address")(dnsnames.address)


class DnsRecordUpdate(Request):
    """A new name, a new address, or both; what is left out stays."""

    name: str | None = Field(None, max_length=dnsnames.MAX_NAME)
    address: str | None = Field(None, max_length=45)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else dnsnames.dns_name(value)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else dnsnames.address(value)


class SecurityRuleCreate(Request):
    protocol: Protocol
    port_from: int | None = Field(None, ge=1, le=65535)
    port_to: int | None = Field(None, ge=1, le=65535)
    source: str = Field("any", max_length=80, description=SELECTOR_HELP)
    target: str = Field("all", max_length=80, description=TARGET_HELP)
    description: str = Field("", max_length=500)

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        match = parse_source(value)
        if match.kind == "tag":
            validators.tag(match.value or "")
        return value

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        match = parse_target(value)
        if match.kind == "tag":
            validators.tag(match.value or "")
        return value

    @model_validator(mode="after")
    def _ports(self) -> SecurityRuleCreate:
        self.port_to = _port_range(self.protocol, self.port_from, self.port_to)
        return self


class CloakRuleCreate(Request):
    node: str | None = Field(None, description="node id or name; omit for every member")
    protocol: Literal["tcp", "udp", "icmp", "any"]
    port_from: int | None = Field(None, ge=1, le=65535)
    port_to: int | None = Field(None, ge=1, le=65535)
    source_cidr: str = "0.0.0.0/0"
    description: str = Field("", max_length=500)

    _source = field_validator("source_cidr")(validators.any_prefix)

    @model_validator(mode="after")
    def _ports(self) -> CloakRuleCreate:
        self.port_to = _port_range(self.protocol, self.port_from, self.port_to)
        return self


class TokenCreate(Request):
    description: str = Field("", max_length=500)
    max_uses: int | None = Field(1, ge=1, le=1_000_000, description="null: unlimited")
    expires_in_s: int | None = Field(
        86_400, ge=60, le=10 * 365 * 86_400, description="null: never expires"
    )
    networks: list[str] = Field(
        default_factory=list, max_length=100, description="ids or names to auto-join"
    )
    needs_approval: bool = False


class NodeUpdate(Request):
    name: str | None = None
    tags: list[str] | None = Field(None, max_length=50)

    _name = field_validator("name")(validators.optional_name)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [identifier(t, Kind.TAG) for t in dict.fromkeys(value)]


class ApiTokenCreate(Request):
    name: str
    scope: Literal["admin", "read"] = "read"

    _name = field_validator("name")(validators.name)


class RelayCreate(Request):
    name: str
    address: str = Field(description="host:port where nodes reach the relay over UDP")

    _name = field_validator("name")(validators.name)
    _address = field_validator("address")(validators.endpoint)

"""The typed Python SDK: every call the CLI and the console make.

from skylan.client import Skylan
sky = Skylan("https://ctl.example:8443", token="skyadm_...", fingerprint="ab12...")
net = sky.create_network("prod", "172.16.1.0/24")
tok = sky.create_token(networks=["prod"], max_uses=5)
print(tok.join_command)
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from skylan.client.errors import SkylanError
from skylan.client.transport import pinned_client
from skylan.model.api import (
    ApiTokenCreated,
    ApiTokenOut,
    AuditPage,
    CloakRuleOut,
    DnsRecordOut,
    GatewayCandidate,
    NetworkOut,
    NetworkStats,
    NodeOut,
    NodeStats,
    PortOut,
    ReachabilityOut,
    RelayCreated,
    RelayOut,
    RouteOut,
    SecurityRuleOut,
    TokenCreated,
    TokenOut,
    TotalStats,
)
from skylan.pinning import pin_failure

if TYPE_CHECKING:  # only node_netmap needs it: not loaded for every CLI command
    from skylan.model.netmap import NetMap

T = TypeVar("T", bound=BaseModel)
API = "/api/v1"


class Skylan:
    def __init__(
        self, url: str, token: str, *, fingerprint: str | None = None, timeout: float = 30.0
    ) -> None:
        self.url = url.rstrip("/")
        self.pinned = fingerprint is not None
        self._http = pinned_client(
            self.url, fingerprint, timeout, {"Authorization": f"Bearer {token}"}
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Skylan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        try:
            response = self._http.request(method, API + path, json=body, params=params)
        except httpx.HTTPError as exc:
            refused = pin_failure(exc) if self.pinned else None
            if refused is not None:
                raise SkylanError(refused) from None
            raise SkylanError(f"cannot reach the controller at {self.url}: {exc}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("error") or response.text
            except ValueError:
                message = response.text or response.reason_phrase
            raise SkylanError(str(message), response.status_code)
        return response

    def _one(
        self,
        model: type[T],
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> T:
        return model.model_validate(self._request(method, path, body, params).json())

    def _many(self, model: type[T], path: str, params: dict[str, Any] | None = None) -> list[T]:
        return TypeAdapter(list[model]).validate_python(  # type: ignore[valid-type]
            self._request("GET", path, params=params).json()
        )

    @staticmethod
    def _clean(**kw: Any) -> dict[str, Any]:
        return {k: v for k, v in kw.items() if v is not None}

    # -- networks -------------------------------------------------------------

    def networks(self) -> list[NetworkOut]:
        return self._many(NetworkOut, "/networks")

    def network(self, ident: str) -> NetworkOut:
        return self._one(NetworkOut, "GET", f"/networks/{ident}")

    def create_network(
        self,
        name: str,
        cidr4: str,
        *,
        cidr6: str | None = None,
        description: str | None = None,
        mtu: int | None = None,
        encrypted: bool | None = None,
        cloaked: bool | None = None,
        storm_pps: int | None = None,
        policy: str | None = None,
        dns_domain: str | None = None,
        dns: bool = True,
    ) -> NetworkOut:
        """``dns_domain``: members are NODE.NAME.<dns_domain> (default
        skylan.internal); ``dns=False``: no names."""
        body = self._clean(
            name=name,
            cidr4=cidr4,
            cidr6=cidr6,
            description=description,
            mtu=mtu,
            encrypted=encrypted,
            cloaked=cloaked,
            storm_pps=storm_pps,
            policy=policy,
            dns_domain=dns_domain,
        )
        if not dns:
            body["dns_domain"] = None
        return self._one(NetworkOut, "POST", "/networks", body)

    def update_network(self, ident: str, **changes: Any) -> NetworkOut:
        return self._one(NetworkOut, "PATCH", f"/networks/{ident}", changes)

    def delete_network(self, ident: str, *, force: bool = False) -> None:
        self._request("DELETE", f"/networks/{ident}", params={"force": str(force).lower()})

    def total_stats(self, minutes: int = 60) -> TotalStats:
        return self._one(TotalStats, "GET", "/stats", params={"minutes": minutes})

    def network_stats(self, ident: str, minutes: int = 60) -> NetworkStats:
        return self._one(
            NetworkStats, "GET", f"/networks/{ident}/stats", params={"minutes": minutes}
        )

    # -- join tokens ----------------------------------------------------------

    def tokens(self) -> list[TokenOut]:
        return self._many(TokenOut, "/tokens")

    def create_token(
        self,
        *,
        description: str = "",
        max_uses: int | None = 1,
        expires_in_s: int | None = 86_400,
        networks: list[str] | None = None,
        needs_approval: bool = False,
    ) -> TokenCreated:
        body = {
            "description": description,
            "max_uses": max_uses,
            "expires_in_s": expires_in_s,
            "networks": networks or [],
            "needs_approval": needs_approval,
        }
        return self._one(TokenCreated, "POST", "/tokens", body)

    def revoke_token(self, token_id: str) -> None:
        self._request("DELETE", f"/tokens/{token_id}")

    # -- nodes ----------------------------------------------------------------

    def nodes(self, status: str | None = None) -> list[NodeOut]:
        return self._many(NodeOut, "/nodes", self._clean(status=status))

    def node(self, ident: str) -> NodeOut:
        return self._one(NodeOut, "GET", f"/nodes/{ident}")

    def update_node(
        self, ident: str, *, name: str | None = None, tags: list[str] | None = None
    ) -> NodeOut:
        return self._one(NodeOut, "PATCH", f"/nodes/{ident}", self._clean(name=name, tags=tags))

    def approve_node(self, ident: str) -> NodeOut:
        return self._one(NodeOut, "POST", f"/nodes/{ident}/approve")

    def deny_node(self, ident: str) -> NodeOut:
        return self._one(NodeOut, "POST", f"/nodes/{ident}/deny")

    def delete_node(self, ident: str) -> None:
        self._request("DELETE", f"/nodes/{ident}")

    def node_netmap(self, ident: str) -> NetMap:
        from skylan.model.netmap import NetMap  # noqa: PLC0415

        return self._one(NetMap, "GET", f"/nodes/{ident}/netmap")

    def node_stats(self, ident: str, minutes: int = 60) -> NodeStats:
        return self._one(NodeStats, "GET", f"/nodes/{ident}/stats", params={"minutes": minutes})

    # -- ports ----------------------------------------------------------------

    def ports(self, network: str) -> list[PortOut]:
        return self._many(PortOut, f"/networks/{network}/ports")

    def attach(
        self,
        network: str,
        node: str,
        *,
        ipv4: str | None = None,
        extra_ips: list[str] | None = None,
        ipv6: str | None = None,
    ) -> PortOut:
        """``ipv6``: a static IPv6 address; default: the network's prefix with
        the IPv4 host part."""
        body = self._clean(node=node, ipv4=ipv4, extra_ips=extra_ips, ipv6=ipv6)
        return self._one(PortOut, "POST", f"/networks/{network}/ports", body)

    def update_port(
        self,
        network: str,
        port: str,
        *,
        ipv4: str | None = None,
        extra_ips: list[str] | None = None,
        ipv6: str | None = None,
    ) -> PortOut:
        """``ipv6``: a static IPv6 address, or ``"auto"`` for the derived one."""
        body: dict[str, Any] = self._clean(ipv4=ipv4, extra_ips=extra_ips, ipv6=ipv6)
        if ipv6 == "auto":
            body["ipv6"] = None
        return self._one(PortOut, "PATCH", f"/networks/{network}/ports/{port}", body)

    def detach(self, network: str, port: str) -> None:
        self._request("DELETE", f"/networks/{network}/ports/{port}")

    # -- routes and cloak rules -------------------------------------------------

    def routes(self, network: str) -> list[RouteOut]:
        return self._many(RouteOut, f"/networks/{network}/routes")

    def add_route(
        self, network: str, prefix: str, via: str, metric: int = 100, masquerade: bool = True
    ) -> RouteOut:
        """Make ``via`` the gateway for ``prefix`` in ``network``."""
        body = {"prefix": prefix, "via": via, "metric": metric, "masquerade": masquerade}
        return self._one(RouteOut, "POST", f"/networks/{network}/routes", body)

    def gateway_candidates(self, network: str) -> list[GatewayCandidate]:
        return self._many(GatewayCandidate, f"/networks/{network}/gateway-candidates")

    def delete_route(self, network: str, route_id: str) -> None:
        self._request("DELETE", f"/networks/{network}/routes/{route_id}")

    def cloak_rules(self, network: str) -> list[CloakRuleOut]:
        return self._many(CloakRuleOut, f"/networks/{network}/cloak-rules")

    def add_cloak_rule(
        self,
        network: str,
        protocol: str,
        *,
        node: str | None = None,
        port_from: int | None = None,
        port_to: int | None = None,
        source_cidr: str | None = None,
        description: str | None = None,
    ) -> CloakRuleOut:
        body = self._clean(
            protocol=protocol,
            node=node,
            port_from=port_from,
            port_to=port_to,
            source_cidr=source_cidr,
            description=description,
        )
        return self._one(CloakRuleOut, "POST", f"/networks/{network}/cloak-rules", body)

    def delete_cloak_rule(self, network: str, rule_id: str) -> None:
        self._request("DELETE", f"/networks/{network}/cloak-rules/{rule_id}")

    # -- security groups ------------------------------------------------------

    def security_rules(self, network: str) -> list[SecurityRuleOut]:
        return self._many(SecurityRuleOut, f"/networks/{network}/security-rules")

    def add_security_rule(
        self,
        network: str,
        protocol: str,
        *,
        port_from: int | None = None,
        port_to: int | None = None,
        source: str = "any",
        target: str = "all",
        description: str | None = None,
    ) -> SecurityRuleOut:
        """Allow ``protocol`` (ports for tcp/udp) from ``source`` (``any``,
        ``tag:NAME``, ``node:NAME`` or a CIDR) to ``target`` (``all``,
        ``tag:NAME`` or ``node:NAME``). Enforced when the policy is deny."""
        body = self._clean(
            protocol=protocol,
            port_from=port_from,
            port_to=port_to,
            source=source,
            target=target,
            description=description,
        )
        return self._one(SecurityRuleOut, "POST", f"/networks/{network}/security-rules", body)

    def delete_security_rule(self, network: str, rule_id: str) -> None:
        self._request("DELETE", f"/networks/{network}/security-rules/{rule_id}")

    def set_policy(self, network: str, policy: str) -> NetworkOut:
        """``allow`` everything, or ``deny`` all but what the rules allow."""
        return self.update_network(network, policy=policy)

    def check_reachability(
        self, network: str, source: str, target: str, protocol: str, port: int | None = None
    ) -> ReachabilityOut:
        """Dry run: would ``source`` (a member or an address) get through to
        ``target`` on ``protocol``/``port`` now?"""
        params: dict[str, Any] = {"source": source, "target": target, "protocol": protocol}
        if port is not None:
            params["port"] = port
        return self._one(
            ReachabilityOut, "GET", f"/networks/{network}/security-rules/check", params=params
        )

    # -- DNS names --------------------------------------------------------------

    def dns_records(self, network: str) -> list[DnsRecordOut]:
        return self._many(DnsRecordOut, f"/networks/{network}/dns-records")

    def add_dns_record(self, network: str, name: str, address: str) -> DnsRecordOut:
        """Name an address of ``network`` (a floating IP, say): ``name`` is
        relative, so ``vip`` is ``vip.NETWORK.DOMAIN``."""
        body = {"name": name, "address": address}
        return self._one(DnsRecordOut, "POST", f"/networks/{network}/dns-records", body)

    def update_dns_record(
        self, network: str, record: str, *, name: str | None = None, address: str | None = None
    ) -> DnsRecordOut:
        """Rename ``record`` (its id or its name), or move it to another address."""
        body = {k: v for k, v in (("name", name), ("address", address)) if v is not None}
        return self._one(DnsRecordOut, "PATCH", f"/networks/{network}/dns-records/{record}", body)

    def delete_dns_record(self, network: str, record: str) -> None:
        """Remove ``record`` (its id or its name)."""
        self._request("DELETE", f"/networks/{network}/dns-records/{record}")

    # -- API tokens -----------------------------------------------------------

    def api_tokens(self) -> list[ApiTokenOut]:
        return self._many(ApiTokenOut, "/api-tokens")

    def create_api_token(self, name: str, scope: str = "read") -> ApiTokenCreated:
        return self._one(ApiTokenCreated, "POST", "/api-tokens", {"name": name, "scope": scope})

    def revoke_api_token(self, token_id: str) -> None:
        self._request("DELETE", f"/api-tokens/{token_id}")

    # -- the audit log --------------------------------------------------------

    def audit(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        action: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
    ) -> AuditPage:
        """Newest first; ``before`` from the last page's ``next_before``."""
        params = self._clean(
            limit=limit,
            before=before,
            action=action,
            actor=actor,
            target=target,
            since=since.isoformat() if since else None,
        )
        return self._one(AuditPage, "GET", "/audit", params=params)

    # -- relays ---------------------------------------------------------------

    def relays(self) -> list[RelayOut]:
        return self._many(RelayOut, "/relays")

    def create_relay(self, name: str, address: str) -> RelayCreated:
        return self._one(RelayCreated, "POST", "/relays", {"name": name, "address": address})

    def delete_relay(self, relay: str) -> None:
        self._request("DELETE", f"/relays/{relay}")

    def health(self) -> dict[str, Any]:
        data: dict[str, Any] = self._request("GET", "/health").json()
        return data

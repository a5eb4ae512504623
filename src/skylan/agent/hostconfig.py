"""The host-side part of a netmap: gateway forwarding and masquerade, routes
to gateways, cloaking and security groups — computed from the netmap, applied through
:mod:`skylan.hostnet` only when something changed.

Several gateways for one prefix form a failover group: every member installs
a route via each gateway whose tunnel is alive, with the route's metric, so
the kernel uses the lowest; a gateway whose tunnel is dead is left out until
it comes back.

Cloaking protects the physical interfaces of a node in any cloaked network.
Emergency switch: ``SKYLAN_NO_CLOAK=1`` in the agent's environment disables it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from skylan.agent import securitychains
from skylan.hostnet import nftables, routes
from skylan.hostnet.interfaces import InterfaceInfo
from skylan.hostnet.vxlan import VXLAN_PORT
from skylan.model.agentstatus import HostRoute, HostStatus
from skylan.model.netmap import NetMap, NetworkMap


@dataclass(frozen=True)
class Desired:
    rules: nftables.Ruleset
    routes: frozenset[routes.Route]
    forwarding: frozenset[int]  # the IP versions this node forwards (a gateway)


@dataclass(frozen=True)
class _NetworkPart:
    """What one network of a netmap gives the host configuration whatever the
    tunnels and interfaces do: worked out once per netmap, not every period
    (a guard over 10,000 members took 110 ms, 6 % of a core at one run per 2 s)."""

    net: NetworkMap  # the netmap's own object: a new netmap makes a new part
    guard: nftables.Guard | None
    cloak_peers: frozenset[str]
    openings: tuple[nftables.CloakOpening, ...]


def _network_part(net: NetworkMap, own: str, ifname: str) -> _NetworkPart:
    peers: set[str] = set()
    openings: list[nftables.CloakOpening] = []
    if net.cloaked:
        for peer in net.peers or []:
            if peer.node_id == own:
                continue
            for ep in peer.endpoints:
                host = ep.rpartition(":")[0].strip("[]")
                if host:
                    peers.add(host)
            if peer.observed_ip:
                peers.add(peer.observed_ip)
            for candidate in peer.candidates:  # where its NAT, or a relay, sends from
                peers.add(candidate.address.rpartition(":")[0].strip("[]"))
        for rule in net.cloak_rules:
            if rule.node_id in (None, own):
                openings.append(
                    nftables.CloakOpening(
                        rule.protocol, rule.port_from, rule.port_to, rule.source_cidr
                    )
                )
    guard = securitychains.guard(net, own, ifname)
    return _NetworkPart(net, guard, frozenset(peers), tuple(openings))


@dataclass
class HostConfig:
    listen_port: int
    controller_url: str
    lanes: int = 1  # data-plane lanes listen on listen_port, listen_port + 1, ...
    applied: Desired | None = None
    forwarding_before: dict[int, bool] = field(default_factory=dict)  # to restore
    error: str | None = None
    controller_ip: str | None = field(default=None)
    _parts: dict[tuple[int, str, str], _NetworkPart] = field(default_factory=dict, repr=False)

    def desired(
        self,
        netmap: NetMap,
        ifnames: dict[str, str],
        dead_peers: set[str],
        interfaces: list[InterfaceInfo],
    ) -> Desired:
        """``ifnames``: network id -> our TAP name; ``dead_peers``: node ids."""
        own = netmap.node.node_id
        local_nets = [ipaddress.ip_interface(a).network for i in interfaces for a in i.addresses]
        local_ips = {str(ipaddress.ip_interface(a).ip) for i in interfaces for a in i.addresses}
        forwards: list[tuple[str, str]] = []
        masquerades: list[tuple[str, str]] = []
        wanted_routes: set[routes.Route] = set()
        cloaked = False
        peers: set[str] = set()
        openings: list[nftables.CloakOpening] = []
        guards: list[nftables.Guard] = []
        parts: dict[tuple[int, str, str], _NetworkPart] = {}
        for net in netmap.networks:
            ifname = ifnames.get(net.id)
            if ifname is None:
                continue
            key = (id(net), own, ifname)
            part = self._parts.get(key)
            if part is None or part.net is not net:
                part = _network_part(net, own, ifname)
            parts[key] = part
            if part.guard is not None:
                guards.append(part.guard)
            for r in net.routes:
                prefix = ipaddress.ip_network(r.prefix)
                overlay = net.cidr4 if prefix.version == 4 else net.cidr6
                if r.via_node_id == own:
                    forwards.append((ifname, r.prefix))
                    if r.masquerade and overlay:
                        masquerades.append((overlay, r.prefix))
                    continue
                via = r.via_ipv4 if prefix.version == 4 else r.via_ipv6
                if (
                    r.via_node_id in dead_peers
                    or not via
                    or any(
                        prefix.version == n.version and prefix.subnet_of(n)  # type: ignore[arg-type]
                        for n in local_nets
                    )
                ):
                    continue  # gateway down, or we are on that LAN ourselves
                wanted_routes.add(routes.Route(r.prefix, via, ifname, r.metric))
            if net.cloaked:
                cloaked = True
                peers |= part.cloak_peers
                openings += part.openings
        self._parts = parts  # only the current netmap's are kept
        if os.environ.get("SKYLAN_NO_CLOAK") == "1":
            cloaked = False
        controller_ip = self.controller_ip  # (resolve_controller() found it, or not yet)
        controller_port = urlsplit(self.controller_url).port or 443
        rules = nftables.Ruleset(
            forwards=tuple(sorted(set(forwards))),
            masquerades=tuple(sorted(set(masquerades))),
            cloak_interfaces=tuple(i.name for i in interfaces) if cloaked else (),
            tunnel_ports=(*range(self.listen_port, self.listen_port + self.lanes), VXLAN_PORT),
            peer_addresses=tuple(sorted(peers)),
            exceptions=tuple(dict.fromkeys(openings)),
            always_allow=(controller_ip,) if cloaked and controller_ip else (),
            local_tcp_ports=(controller_port,) if cloaked and controller_ip in local_ips else (),
            guards=tuple(guards),
        )
        versions = frozenset(ipaddress.ip_network(prefix).version for _, prefix in forwards)
        return Desired(rules, frozenset(wanted_routes), versions)

    def resolve_controller(self) -> str | None:
        """The controller's address, for the cloak's always-allow rule: a DNS
        lookup the first time, so it is blocking (run it off the event loop,
        before :meth:`desired`, which stays pure). None while it fails."""
        if self.controller_ip is None:
            host = urlsplit(self.controller_url).hostname or ""
            try:
                self.controller_ip = str(ipaddress.ip_address(host))
            except ValueError:
                try:
                    self.controller_ip = socket.gethostbyname(host)
                except OSError:
                    return None
        return self.controller_ip

    def apply(self, desired: Desired) -> None:
        """Blocking (netlink, nft): run it off the event loop."""
        if desired == self.applied:
            return
        try:
            for version in (4, 6):
                if version in desired.forwarding and version not in self.forwarding_before:
                    self.forwarding_before[version] = routes.ip_forwarding(version)
                    routes.set_ip_forwarding(True, version)
                elif version not in desired.forwarding and version in self.forwarding_before:
                    routes.set_ip_forwarding(self.forwarding_before.pop(version), version)
            nftables.apply(desired.rules)
            routes.sync(set(desired.routes))
        except (OSError, nftables.NftError) as exc:
            self.error = str(exc)
            raise
        self.error = None
        self.applied = desired

    def teardown(self) -> None:
        self.apply(Desired(nftables.Ruleset(), frozenset(), frozenset()))

    def status(self) -> HostStatus:
        d = self.applied
        if d is None:
            return HostStatus(applied=False, error=self.error)
        return HostStatus(
            applied=True,
            error=self.error,
            gateway_for=[p for _, p in d.rules.forwards],
            masquerade=[p for _, p in d.rules.masquerades],
            routes=[
                HostRoute(prefix=r.prefix, via=r.via, dev=r.dev, metric=r.metric)
                for r in sorted(d.routes, key=lambda r: (r.prefix, r.metric))
            ],
            cloaked=bool(d.rules.cloak_interfaces),
            cloak_interfaces=list(d.rules.cloak_interfaces),
            cloak_openings=[dict(o.__dict__) for o in d.rules.exceptions],
            guarded={g.interface: len(g.allowances) for g in d.rules.guards},
        )

"""The in-memory state and its indexes.

Mutated only on the event loop, by the change feed (:meth:`State.apply`) and
by heartbeats (:mod:`.liveness`). Code running in worker threads (the service
layer's database transactions) may read it with single lookups and with
``list(...)`` copies, which the GIL makes atomic, but never iterates a live
dict: the loop may change it meanwhile. What a thread reads may be a moment
old; the database's constraints settle any race, and the feed then brings the
state up to date.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from skylan.controller.ipam import AddressPool, Claims
from skylan.controller.state.liveness import Liveness
from skylan.controller.state.records import (
    ApiToken,
    CloakRule,
    DnsRecord,
    Network,
    Node,
    Port,
    Relay,
    Route,
    SecurityRule,
)


@dataclass
class Loaded:
    """Rows read from the database for one batch of changes. An id listed
    without a record was deleted."""

    networks: dict[str, Network | None] = field(default_factory=dict)
    routes: dict[str, list[Route]] = field(default_factory=dict)  # network id -> all its routes
    rules: dict[str, list[CloakRule]] = field(default_factory=dict)  # network id -> all its rules
    security: dict[str, list[SecurityRule]] = field(default_factory=dict)  # the same
    dns: dict[str, list[DnsRecord]] = field(default_factory=dict)  # the same
    nodes: dict[str, Node | None] = field(default_factory=dict)
    ports: dict[str, list[Port]] = field(default_factory=dict)  # node id -> all its ports
    liveness: dict[str, Liveness] = field(default_factory=dict)
    api_tokens: list[ApiToken] | None = None  # None: unchanged; else all of them
    relays: list[Relay] | None = None  # the same


class State:
    def __init__(self) -> None:
        self.networks: dict[str, Network] = {}
        self.network_by_name: dict[str, str] = {}
        self.nodes: dict[str, Node] = {}
        self.node_by_name: dict[str, str] = {}
        self.node_by_key: dict[str, str] = {}
        self.node_by_credential: dict[str, str] = {}
        self.lane_key_owner: dict[str, str] = {}
        self.ports: dict[str, Port] = {}
        self.members: dict[str, dict[str, Port]] = {}  # network -> node -> port
        # node -> its ports by network id (a node has a few: a tuple costs a
        # fifth of a dict)
        self.memberships: dict[str, tuple[Port, ...]] = {}
        self.routes: dict[str, dict[str, Route]] = {}  # network -> id -> route
        self.rules: dict[str, dict[str, CloakRule]] = {}  # network -> id -> rule
        self.security: dict[str, dict[str, SecurityRule]] = {}  # the same
        self.dns: dict[str, dict[str, DnsRecord]] = {}  # the same
        self.api_tokens: dict[str, ApiToken] = {}  # by secret hash
        self.api_token_ids: dict[str, ApiToken] = {}
        self.relays: dict[str, Relay] = {}
        self.relay_by_credential: dict[str, str] = {}
        self.liveness: dict[str, Liveness] = {}
        self.pools: dict[str, AddressPool] = {}
        self.claims = Claims()  # addresses in transactions not yet in the pools

    # -- lookups (safe from threads: single dict reads) -----------------------

    def network(self, ident: str) -> Network | None:
        net = self.networks.get(ident)
        if net is None and (found := self.network_by_name.get(ident)) is not None:
            net = self.networks.get(found)
        return net

    def node(self, ident: str) -> Node | None:
        node = self.nodes.get(ident)
        if node is None and (found := self.node_by_name.get(ident)) is not None:
            node = self.nodes.get(found)
        return node

    def port(self, net: Network, ident: str) -> Port | None:
        """A port of ``net`` by its id, or by its node's id or name."""
        port = self.ports.get(ident)
        if port is not None and port.network_id == net.id:
            return port
        node = self.node(ident)
        if node is None:
            return None
        return self.members.get(net.id, {}).get(node.id)

    def ports_of(self, node_id: str) -> tuple[Port, ...]:
        return self.memberships.get(node_id, ())

    def node_networks(self, node_id: str) -> list[str]:
        return [port.network_id for port in self.ports_of(node_id)]

    # -- changes (event loop only) ----------------------------------------------

    def apply(self, loaded: Loaded) -> None:
        for net_id, net in loaded.networks.items():
            self._set_network(net_id, net)
        for net_id, routes in loaded.routes.items():
            if net_id in self.networks:
                self.routes[net_id] = {r.id: r for r in routes}
        for net_id, rules in loaded.rules.items():
            if net_id in self.networks:
                self.rules[net_id] = {r.id: r for r in rules}
        for net_id, security in loaded.security.items():
            if net_id in self.networks:
                self.security[net_id] = {r.id: r for r in security}
        for net_id, records in loaded.dns.items():
            if net_id in self.networks:
                self.dns[net_id] = {r.id: r for r in records}
        for node_id, node in loaded.nodes.items():
            self._set_node(node_id, node)
        for node_id, ports in loaded.ports.items():
            self._set_ports(node_id, ports if node_id in self.nodes else [])
        for node_id, seen in loaded.liveness.items():
            if node_id in self.nodes:
                mine = self.liveness.get(node_id)
                if mine is None or seen.newer_than(mine):
                    self.liveness[node_id] = seen
        if loaded.api_tokens is not None:
            self.api_tokens = {t.secret_hash: t for t in loaded.api_tokens}
            self.api_token_ids = {t.id: t for t in loaded.api_tokens}
        if loaded.relays is not None:
            self.relays = {r.id: r for r in loaded.relays}
            self.relay_by_credential = {r.credential_hash: r.id for r in loaded.relays}

    def _set_network(self, net_id: str, net: Network | None) -> None:
        old = self.networks.pop(net_id, None)
        if old is not None:
            self.network_by_name.pop(old.name, None)
        if net is None:
            self.routes.pop(net_id, None)
            self.rules.pop(net_id, None)
            self.security.pop(net_id, None)
            self.dns.pop(net_id, None)
            self.pools.pop(net_id, None)
            for port in list(self.members.pop(net_id, {}).values()):
                self.ports.pop(port.id, None)
                left = tuple(p for p in self.ports_of(port.node_id) if p.network_id != net_id)
                if left:
                    self.memberships[port.node_id] = left
                else:
                    self.memberships.pop(port.node_id, None)
            return
        self.networks[net_id] = net
        self.network_by_name[net.name] = net_id
        if net_id not in self.pools:
            pool = self.pools[net_id] = AddressPool(net.cidr4)
            for port in self.members.get(net_id, {}).values():
                pool.take(port.ipv4)

    def _set_node(self, node_id: str, node: Node | None) -> None:
        old = self.nodes.pop(node_id, None)
        if old is not None:
            self.node_by_name.pop(old.name, None)
            self.node_by_key.pop(old.public_key, None)
            self.node_by_credential.pop(old.credential_hash, None)
            for key in old.lane_keys:
                if self.lane_key_owner.get(key) == node_id:
                    del self.lane_key_owner[key]
        if node is None:
            self._set_ports(node_id, [])
            self.liveness.pop(node_id, None)
            for rules in self.rules.values():
                for rule_id in [r.id for r in rules.values() if r.node_id == node_id]:
                    del rules[rule_id]  # the database cascades too
            for security in self.security.values():
                for rule_id in [r.id for r in security.values() if _names(r, node_id)]:
                    del security[rule_id]  # the same
            return
        self.nodes[node_id] = node
        self.node_by_name[node.name] = node_id
        self.node_by_key[node.public_key] = node_id
        self.node_by_credential[node.credential_hash] = node_id
        for key in node.lane_keys:
            self.lane_key_owner[key] = node_id
        self.liveness.setdefault(node_id, Liveness())

    def _set_ports(self, node_id: str, ports: Iterable[Port]) -> None:
        fresh = {p.network_id: p for p in ports if p.network_id in self.networks}
        for old in self.memberships.pop(node_id, ()):
            net_id = old.network_id
            self.ports.pop(old.id, None)
            self.members.get(net_id, {}).pop(node_id, None)
            if (pool := self.pools.get(net_id)) is not None:
                pool.release(old.ipv4)
            gone = fresh.get(net_id) is None or fresh[net_id].id != old.id
            if gone and (routes := self.routes.get(net_id)):
                for route_id in [r.id for r in routes.values() if r.via_port_id == old.id]:
                    del routes[route_id]  # the database cascades too
        if fresh:
            self.memberships[node_id] = tuple(sorted(fresh.values(), key=_network_of))
        for net_id, port in fresh.items():
            self.ports[port.id] = port
            self.members.setdefault(net_id, {})[node_id] = port
            self.pools[net_id].take(port.ipv4)


def _names(rule: SecurityRule, node_id: str) -> bool:
    sides = (rule.info.source, rule.info.target)
    return any(side.kind == "node" and side.value == node_id for side in sides)


def _network_of(port: Port) -> str:
    return port.network_id

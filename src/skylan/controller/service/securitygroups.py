"""Security group rules of a network, and the dry run that answers "can A
reach B on tcp/5432?" from the rules every member enforces.

The dry run evaluates the same compiled rules the netmap carries with
:func:`skylan.model.securitygroups.verdict`, which is what the agents'
nftables chains are built from (:mod:`skylan.agent.securitychains`), so its
answer is what the receiving node does.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from skylan.controller.service import lookup, networkrows
from skylan.controller.service.errors import Conflict, Invalid
from skylan.controller.state.records import Network, Port
from skylan.controller.state.store import State
from skylan.controller.storage.tables import SecurityRuleRow
from skylan.model import dualstack
from skylan.model.requests import SecurityRuleCreate
from skylan.model.securitygroups import (
    MAX_RULES,
    Match,
    Member,
    Protocol,
    Sender,
    Verdict,
    parse_source,
    parse_target,
    verdict,
)


def create(db: Session, state: State, network: str, body: SecurityRuleCreate) -> str:
    net = lookup.network(state, network)
    if len(state.security.get(net.id, {})) >= MAX_RULES:
        raise Conflict(f"{net.name!r} has {MAX_RULES} security rules already, the most it may")
    source = _resolved(state, net, parse_source(body.source), "source")
    target = _resolved(state, net, parse_target(body.target), "target")
    row = SecurityRuleRow(
        network_id=net.id,
        protocol=body.protocol,
        port_from=body.port_from,
        port_to=body.port_to,
        source_kind=source.kind,
        source_value=source.value if source.kind in ("tag", "cidr") else None,
        source_node_id=source.value if source.kind == "node" else None,
        target_kind=target.kind,
        target_value=target.value if target.kind == "tag" else None,
        target_node_id=target.value if target.kind == "node" else None,
        description=body.description,
    )
    return networkrows.add(db, row)


def delete(db: Session, state: State, network: str, rule_id: str) -> None:
    networkrows.remove(db, state, network, SecurityRuleRow, rule_id, what="security rule")


def _resolved(state: State, net: Network, match: Match, side: str) -> Match:
    """A node named by its name or id becomes its id; it must be a member."""
    if match.kind != "node":
        return match
    node = lookup.node(state, match.value or "")
    if node.id not in state.members.get(net.id, {}):
        raise Invalid(f"node {node.name!r} is not a member of {net.name!r}", field=side)
    return Match(kind="node", value=node.id)


@dataclass(frozen=True)
class Checked:
    verdict: Verdict
    source: str  # the address the connection comes from
    target: str  # the member that lets it in or not
    via: str | None  # the route's prefix, when the target is a gateway to it


def check(
    state: State, network: str, source: str, target: str, *, protocol: Protocol, port: int | None
) -> Checked:
    """Whether a new connection from ``source`` (a member's name or id, or an
    address) to ``target`` is let in. ``target`` is a member (name, id or one
    of its addresses) or an address behind a gateway member: the gateway's
    rules decide, as its chains see the connection pass."""
    net = lookup.network(state, network)
    if protocol in ("tcp", "udp") and port is None:
        raise Invalid(f"{protocol} needs a port", field="port")
    if protocol not in ("tcp", "udp") and port is not None:
        raise Invalid(f"{protocol} takes no port", field="port")
    to = _member(state, net, target)
    via = None
    if to is None and (address := _address_or_none(target)) is not None:
        to, via = _gateway(state, net, address) or (None, None)
    if to is None:
        raise Invalid(
            f"{target!r} is neither a member of {net.name!r} nor behind one of its gateways",
            field="target",
        )
    sender = _sender(state, net, source)
    rules = sorted(state.security.get(net.id, {}).values(), key=lambda r: r.created_at)
    answer = verdict(
        net.policy,
        [r.info for r in rules],
        sender,
        _as_member(state, to),
        protocol=protocol,
        port=port,
    )
    name = node.name if (node := state.nodes.get(to.node_id)) else to.node_id
    return Checked(answer, sender.address, name, via)


def _gateway(state: State, net: Network, address: Address) -> tuple[Port, str] | None:
    """The member that carries traffic to ``address`` on a LAN behind it, and
    the route's prefix: as each member's kernel picks among the routes it
    installs (via gateways whose tunnels are up), the longest prefix, then the
    lowest metric. An offline gateway is chosen only when no other is there."""
    now = time.time()
    best: tuple[tuple[bool, int, int], Port, str] | None = None
    for route in list(state.routes.get(net.id, {}).values()):
        prefix = ipaddress.ip_network(route.prefix)
        gateway = state.ports.get(route.via_port_id)
        if gateway is None or prefix.version != address.version or address not in prefix:
            continue
        live = state.liveness.get(gateway.node_id)
        online = live is not None and live.online(now)
        rank = (not online, -prefix.prefixlen, route.metric)
        if best is None or rank < best[0]:
            best = (rank, gateway, route.prefix)
    return None if best is None else (best[1], best[2])


def _member(state: State, net: Network, ident: str) -> Port | None:
    """A member's port by its node's name or id, or by one of its addresses."""
    found = state.port(net, ident)
    if found is not None:
        return found
    address = _address_or_none(ident)
    if address is None:
        return None
    for port in list(state.members.get(net.id, {}).values()):
        if _holds(net, port, address):
            return port
    return None


def _sender(state: State, net: Network, ident: str) -> Sender:
    asked = _address_or_none(ident)
    port = _member(state, net, ident)
    if port is not None:
        # it sends from the address asked about, or else from its port's
        return Sender(str(asked) if asked is not None else port.ipv4, _as_member(state, port))
    if asked is None:
        raise Invalid(
            f"{ident!r} is neither a member of {net.name!r} nor an IP address", field="source"
        )
    return Sender(str(asked))


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address_or_none(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _holds(net: Network, port: Port, address: Address) -> bool:
    """Whether ``address`` is the member's: its port's, IPv6 or floating."""
    own = [port.ipv4, *port.extra_ips]
    ipv6 = dualstack.address_of(net.cidr4, net.cidr6, port.ipv4, port.ipv6)
    if ipv6 is not None:
        own.append(ipv6)
    return any(
        address.version == (n := ipaddress.ip_network(a)).version and address in n for a in own
    )


def _as_member(state: State, port: Port) -> Member:
    node = state.nodes.get(port.node_id)
    return Member(node_id=port.node_id, tags=frozenset(node.tags if node else ()))

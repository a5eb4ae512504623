"""Finding things by id or name in the state, or a :class:`NotFound` that
says what was looked for."""

from __future__ import annotations

from skylan.controller.service.errors import NotFound
from skylan.controller.state.records import Network, Node, Port
from skylan.controller.state.store import State


def network(state: State, ident: str) -> Network:
    found = state.network(ident)
    if found is None:
        raise NotFound(f"network {ident!r} not found")
    return found


def node(state: State, ident: str) -> Node:
    found = state.node(ident)
    if found is None:
        raise NotFound(f"node {ident!r} not found")
    return found


def port(state: State, net: Network, ident: str) -> Port:
    """A port of ``net`` by its id, or by its node's id or name."""
    found = state.port(net, ident)
    if found is None:
        raise NotFound(f"port in network {net.name!r} {ident!r} not found")
    return found

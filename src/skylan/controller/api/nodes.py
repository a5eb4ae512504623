"""``/api/v1/nodes``: enrolled machines, their approval, names and tags."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response

from skylan.controller.api.deps import AdminAccess, Ctl, ReadAccess
from skylan.controller.api.errors import ApiError
from skylan.controller.api.views import node_out
from skylan.controller.runtime import Controller
from skylan.controller.service import lookup, nodes
from skylan.controller.state.records import Node
from skylan.model.api import NodeOut
from skylan.model.requests import NodeUpdate

router = APIRouter(prefix="/nodes", tags=["nodes"])


async def tunnel_lists(ctl: Controller, nodes: list[Node]) -> dict[str, bytes]:
    """The reported tunnels of the nodes shown that are online (only theirs
    are shown)."""
    now = time.time()
    online = [n.id for n in nodes if (live := ctl.memory.liveness.get(n.id)) and live.online(now)]
    return await ctl.liveliness.tunnel_lists(online) if online else {}


async def one_node(ctl: Controller, node: Node) -> NodeOut:
    return node_out(ctl.memory, node, (await tunnel_lists(ctl, [node])).get(node.id))


@router.get("", dependencies=[ReadAccess])
async def list_nodes(ctl: Ctl, status: str | None = None) -> list[NodeOut]:
    if status is not None and status not in ("pending", "approved", "denied"):
        raise ApiError(422, "status: must be pending, approved or denied")
    found = sorted(ctl.memory.nodes.values(), key=lambda n: n.name)
    shown = [n for n in found if status is None or n.status == status]
    tunnels = await tunnel_lists(ctl, shown)
    return [node_out(ctl.memory, n, tunnels.get(n.id)) for n in shown]


@router.get("/{ident}", dependencies=[ReadAccess])
async def get_node(ident: str, ctl: Ctl) -> NodeOut:
    return await one_node(ctl, lookup.node(ctl.memory, ident))


@router.patch("/{ident}", dependencies=[AdminAccess])
async def update_node(ident: str, body: NodeUpdate, ctl: Ctl) -> NodeOut:
    node_id = await ctl.write(lambda db: nodes.update(db, ctl.memory, ident, body))
    return await one_node(ctl, lookup.node(ctl.memory, node_id))


@router.post("/{ident}/approve", dependencies=[AdminAccess])
async def approve_node(ident: str, ctl: Ctl) -> NodeOut:
    """Approve a pending (or denied) node: it joins its join token's networks now."""
    node_id = await ctl.write(lambda db: nodes.set_status(db, ctl.memory, ident, "approved"))
    return await one_node(ctl, lookup.node(ctl.memory, node_id))


@router.post("/{ident}/deny", dependencies=[AdminAccess])
async def deny_node(ident: str, ctl: Ctl) -> NodeOut:
    """A denied node keeps its credential but is in no one's netmap."""
    node_id = await ctl.write(lambda db: nodes.set_status(db, ctl.memory, ident, "denied"))
    return await one_node(ctl, lookup.node(ctl.memory, node_id))


@router.delete("/{ident}", status_code=204, dependencies=[AdminAccess])
async def delete_node(ident: str, ctl: Ctl) -> Response:
    """Delete the node; its credential stops working at once."""
    await ctl.write(lambda db: nodes.delete(db, ctl.memory, ident))
    return Response(status_code=204)


@router.get("/{ident}/netmap", dependencies=[ReadAccess])
async def node_netmap(ident: str, ctl: Ctl) -> Response:
    """The netmap this node's agent currently receives."""
    node = lookup.node(ctl.memory, ident)
    body = ctl.feed.netmap(node.id)
    if body is None:
        raise ApiError(409, "the netmap of this node is being computed; retry in a moment")
    return Response(body, media_type="application/json")

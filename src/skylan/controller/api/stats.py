"""Traffic history per node and per network (sums of member nodes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from skylan.controller.api.deps import Ctl, ReadAccess
from skylan.controller.service import lookup
from skylan.controller.service.stats import RETENTION_MINUTES, port_key
from skylan.model.api import NetworkStats, NodeStats, TotalStats

router = APIRouter(tags=["statistics"], dependencies=[ReadAccess])

Minutes = Annotated[int, Query(ge=1, le=RETENTION_MINUTES)]


@router.get("/nodes/{ident}/stats")
async def node_stats(ident: str, ctl: Ctl, minutes: Minutes = 60) -> NodeStats:
    node = lookup.node(ctl.memory, ident)
    return NodeStats(
        node_id=node.id,
        minutes=minutes,
        buckets=await ctl.stats.history([node.id], minutes),
        peers=await ctl.stats.peer_summary(node.id, minutes),
    )


@router.get("/networks/{ident}/stats")
async def network_stats(ident: str, ctl: Ctl, minutes: Minutes = 60) -> NetworkStats:
    net = lookup.network(ctl.memory, ident)
    members = list(ctl.memory.members.get(net.id, {}))
    # each member's own count of its traffic in this network (not its node total,
    # which would count a node's other networks too)
    buckets = await ctl.stats.history(members, minutes, peer_id=port_key(net.id))
    return NetworkStats(network_id=net.id, minutes=minutes, buckets=buckets)


@router.get("/stats")
async def total_stats(ctl: Ctl, minutes: Minutes = 60) -> TotalStats:
    """Every node's own totals summed: what all agents sent and received.

    Traffic between two nodes counts once as one's ``tx`` and once as the
    other's ``rx``, so ``tx_bytes`` alone is the traffic carried.
    """
    buckets = await ctl.stats.history(None, minutes)
    return TotalStats(minutes=minutes, nodes=len(ctl.memory.nodes), buckets=buckets)

"""Traffic history per node and per network (sums of member nodes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from skylan.controller import stats
from skylan.controller.api import lookup
from skylan.controller.api.deps import Db, ReadAccess
from skylan.controller.storage.tables import NodeRow, PortRow
from skylan.model.api import NetworkStats, NodeStats, TotalStats

router = APIRouter(tags=["statistics"], dependencies=[ReadAccess])

Minutes = Annotated[int, Query(ge=1, le=stats.RETENTION_MINUTES)]


@router.get("/nodes/{ident}/stats")
def node_stats(ident: str, db: Db, minutes: Minutes = 60) -> NodeStats:
    node = lookup.node(db, ident)
    return NodeStats(
        node_id=node.id,
        minutes=minutes,
        buckets=stats.history(db, [node.id], minutes),
        peers=stats.peer_summary(db, node.id, minutes),
    )


@router.get("/networks/{ident}/stats")
def network_stats(ident: str, db: Db, minutes: Minutes = 60) -> NetworkStats:
    net = lookup.network(db, ident)
    members = list(db.scalars(select(PortRow.node_id).where(PortRow.network_id == net.id)))
    # each member's own count of its traffic in this network (not its node total,
    # which would count a node's other networks too)
    buckets = stats.history(db, members, minutes, peer_id=stats.port_key(net.id))
    return NetworkStats(network_id=net.id, minutes=minutes, buckets=buckets)


@router.get("/stats")
def total_stats(db: Db, minutes: Minutes = 60) -> TotalStats:
    """Every node's own totals summed: what all agents sent and received.

    Traffic between two nodes counts once as one's ``tx`` and once as the
    other's ``rx``, so ``tx_bytes`` alone is the traffic carried.
    """
    nodes = list(db.scalars(select(NodeRow.id)))
    return TotalStats(minutes=minutes, nodes=len(nodes), buckets=stats.history(db, nodes, minutes))

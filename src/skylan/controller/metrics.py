"""Prometheus ``/metrics``: inventory, online nodes, traffic and the feed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from skylan.controller.api.nodes import ONLINE_WINDOW
from skylan.controller.feed import NetmapFeed
from skylan.controller.storage.tables import NetworkRow, NodeRow, StatsRow


class ControllerCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session], feed: NetmapFeed) -> None:
        self._sessions = sessions
        self._feed = feed

    def collect(self) -> Iterator[Metric]:
        with self._sessions() as db:
            networks = db.scalar(select(func.count()).select_from(NetworkRow)) or 0
            by_status = GaugeMetricFamily("skylan_nodes", "Enrolled nodes", labels=["status"])
            for status, count in db.execute(
                select(NodeRow.status, func.count()).group_by(NodeRow.status)
            ):
                by_status.add_metric([status], count)
            cutoff = datetime.now(UTC) - ONLINE_WINDOW
            online = (
                db.scalar(
                    select(func.count()).select_from(NodeRow).where(NodeRow.last_seen >= cutoff)
                )
                or 0
            )
            traffic = CounterMetricFamily(
                "skylan_node_traffic_bytes",
                "Bytes reported by agents (24 h window)",
                labels=["node", "direction"],
            )
            for name, rx, tx in db.execute(
                select(NodeRow.name, func.sum(StatsRow.rx_bytes), func.sum(StatsRow.tx_bytes))
                .join(StatsRow, StatsRow.node_id == NodeRow.id)
                .where(StatsRow.peer_id == "")
                .group_by(NodeRow.name)
            ):
                traffic.add_metric([name, "rx"], float(rx or 0))
                traffic.add_metric([name, "tx"], float(tx or 0))
        yield GaugeMetricFamily("skylan_networks", "Virtual networks", value=networks)
        yield by_status
        yield GaugeMetricFamily("skylan_nodes_online", "Nodes seen in the last 45 s", value=online)
        yield traffic
        yield GaugeMetricFamily(
            "skylan_netmap_change", "Last change applied to netmaps", value=self._feed.last_change
        )
        yield GaugeMetricFamily(
            "skylan_netmap_longpolls", "Agents waiting on a long-poll", value=self._feed.waiting
        )

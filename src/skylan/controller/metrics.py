"""Prometheus ``/metrics``: inventory, online nodes, traffic and the feed,
all from memory (a scrape costs no database work)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from skylan.controller.agentconnection import AgentFront
from skylan.controller.reflector import AddressReflector
from skylan.controller.runtime import Controller


class ControllerCollector(Collector):
    def __init__(
        self, ctl: Controller, front: AgentFront, reflector: AddressReflector | None = None
    ) -> None:
        self._ctl = ctl
        self._front = front
        self._reflector = reflector

    def collect(self) -> Iterator[Metric]:
        memory = self._ctl.memory
        now = time.time()
        nodes = list(memory.nodes.values())
        by_status = GaugeMetricFamily("skylan_nodes", "Enrolled nodes", labels=["status"])
        for status, count in sorted(Counter(n.status for n in nodes).items()):
            by_status.add_metric([status], count)
        online = sum(
            1 for n in nodes if (live := memory.liveness.get(n.id)) is not None and live.online(now)
        )
        traffic = CounterMetricFamily(
            "skylan_node_traffic_bytes",
            "Bytes agents reported since this controller started",
            labels=["node", "direction"],
        )
        for node_id, rx, tx in self._ctl.stats.totals():
            node = memory.nodes.get(node_id)
            if node is not None:
                traffic.add_metric([node.name, "rx"], float(rx))
                traffic.add_metric([node.name, "tx"], float(tx))
        feed = self._ctl.feed
        yield GaugeMetricFamily("skylan_networks", "Virtual networks", value=len(memory.networks))
        yield by_status
        yield GaugeMetricFamily("skylan_nodes_online", "Nodes seen in the last 45 s", value=online)
        yield traffic
        yield GaugeMetricFamily(
            "skylan_netmap_change", "Last change applied to netmaps", value=feed.last_change
        )
        yield GaugeMetricFamily(
            "skylan_netmap_longpolls", "Agents waiting on a long-poll", value=feed.waiting
        )
        yield CounterMetricFamily(
            "skylan_agent_connection_write_pauses",
            "Times an agent connection stopped taking requests until its client read its answers",
            value=self._front.write_pauses,
        )
        yield from self._relays()
        if self._reflector is not None:
            yield CounterMetricFamily(
                "skylan_reflector_answers",
                "Reflexive-address questions answered (UDP)",
                value=self._reflector.answered,
            )
            dropped = CounterMetricFamily(
                "skylan_reflector_drops",
                "Datagrams to the reflexive-address service dropped",
                labels=["reason"],
            )
            for reason, n in sorted(self._reflector.drops.items()):
                dropped.add_metric([reason], n)
            yield dropped
        yield GaugeMetricFamily(
            "skylan_writes_waiting", "Writes queued for a slot", value=self._ctl.writer.waiting
        )
        yield GaugeMetricFamily(
            "skylan_event_loop_lag_seconds",
            "The event loop's worst lag since the last scrape",
            value=self._ctl.lag.take_worst(),
        )
        flushes = GaugeMetricFamily(
            "skylan_flush_seconds", "How long the last batch write took", labels=["what"]
        )
        flushes.add_metric(["heartbeats"], self._ctl.liveliness.last_flush_s)
        flushes.add_metric(["statistics"], self._ctl.stats.last_flush_s)
        yield flushes

    def _relays(self) -> Iterator[Metric]:
        """What each relay last reported to this replica (since it started)."""
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "forwarded_bytes": CounterMetricFamily(
                "skylan_relay_forwarded_bytes", "Bytes a relay forwarded", labels=["relay"]
            ),
            "forwarded_packets": CounterMetricFamily(
                "skylan_relay_forwarded_packets", "Datagrams a relay forwarded", labels=["relay"]
            ),
            "dropped": CounterMetricFamily(
                "skylan_relay_dropped", "Datagrams a relay dropped", labels=["relay"]
            ),
            "nodes": GaugeMetricFamily(
                "skylan_relay_nodes", "Nodes registered with a relay", labels=["relay"]
            ),
        }
        relays = self._ctl.memory.relays
        for relay_id, report in sorted(self._ctl.relay_reports.items()):
            relay = relays.get(relay_id)
            if relay is None:
                continue
            for name, family in families.items():
                family.add_metric([relay.name], float(getattr(report, name)))
        yield from families.values()

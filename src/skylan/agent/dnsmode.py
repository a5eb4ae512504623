"""How the agent points the host's resolver at itself (``--dns``); see
:mod:`skylan.agent.localdns`. Its own module so the CLI can offer the choice
without loading the DNS server."""

from __future__ import annotations

from enum import StrEnum


class DnsMode(StrEnum):
    auto = "auto"  # resolved where it serves this network namespace, else resolv-conf
    resolved = "resolved"
    resolv_conf = "resolv-conf"
    off = "off"

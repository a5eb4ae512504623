"""What the host's own network looks like: interfaces, addresses, default route.

Agents report this to the controller (it is how gateway candidates are found)
and derive their UDP endpoints from it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from pyroute2 import IPRoute

from skylan.model.agentapi import InterfaceReport

OVERLAY_PREFIX = "sky"  # skylan's own TAP devices: never reported as physical


@dataclass
class InterfaceInfo:
    name: str
    mac: str | None
    addresses: list[str] = field(default_factory=list)  # "address/prefixlen"
    default_route: bool = False
    up: bool = False

    def as_report(self) -> InterfaceReport:
        return InterfaceReport(
            name=self.name,
            mac=self.mac,
            addresses=list(self.addresses),
            default_route=self.default_route,
        )


def physical_interfaces() -> list[InterfaceInfo]:
    """Every non-loopback, non-skylan interface with its addresses."""
    with IPRoute() as ipr:
        by_index: dict[int, InterfaceInfo] = {}
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME")
            if name == "lo" or name.startswith(OVERLAY_PREFIX):
                continue
            by_index[link["index"]] = InterfaceInfo(
                name=name,
                mac=link.get_attr("IFLA_ADDRESS"),
                up=bool(link["flags"] & 1),
            )
        for addr in ipr.get_addr():
            info = by_index.get(addr["index"])
            if info is None:
                continue
            ip = addr.get_attr("IFA_ADDRESS")
            parsed = ipaddress.ip_address(ip)
            if parsed.is_link_local:
                continue
            info.addresses.append(f"{ip}/{addr['prefixlen']}")
        for family in (2, 10):
            for route in ipr.get_default_routes(family=family):
                info = by_index.get(route.get_attr("RTA_OIF"))
                if info is not None:
                    info.default_route = True
    return sorted(by_index.values(), key=lambda i: i.name)


def endpoints(interfaces: list[InterfaceInfo], port: int) -> list[str]:
    """UDP endpoints peers may try: every global address with our port."""
    out = []
    for info in interfaces:
        if not info.up:
            continue
        for cidr in info.addresses:
            ip = ipaddress.ip_interface(cidr).ip
            out.append(f"{ip}:{port}" if ip.version == 4 else f"[{ip}]:{port}")
    return out

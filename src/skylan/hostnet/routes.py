"""Routes skylan installs toward gateways, tagged with their own protocol
number so they can be found and removed without touching anyone else's."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute

RTPROT_SKYLAN = 222


@dataclass(frozen=True)
class Route:
    prefix: str
    via: str
    dev: str
    metric: int


def installed() -> set[Route]:
    out = set()
    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        found = [
            *ipr.get_routes(family=socket.AF_INET, proto=RTPROT_SKYLAN),
            *ipr.get_routes(family=socket.AF_INET6, proto=RTPROT_SKYLAN),
        ]
        for r in found:
            dst = r.get_attr("RTA_DST")
            gw = r.get_attr("RTA_GATEWAY")
            if dst is None or gw is None:
                continue
            out.add(
                Route(
                    f"{dst}/{r['dst_len']}",
                    gw,
                    names.get(r.get_attr("RTA_OIF"), ""),
                    r.get_attr("RTA_PRIORITY") or 0,
                )
            )
    return out


def _family(prefix: str) -> int:
    v6 = ipaddress.ip_network(prefix).version == 6
    return socket.AF_INET6 if v6 else socket.AF_INET


def sync(wanted: set[Route]) -> None:
    """Make skylan's routes exactly ``wanted``."""
    have = installed()
    with IPRoute() as ipr:
        for route in have - wanted:
            ipr.route(
                "del",
                family=_family(route.prefix),
                dst=route.prefix,
                gateway=route.via,
                priority=route.metric,
                proto=RTPROT_SKYLAN,
            )
        for route in wanted - have:
            idx = ipr.link_lookup(ifname=route.dev)
            if not idx:
                continue
            ipr.route(
                "replace",
                family=_family(route.prefix),
                dst=route.prefix,
                gateway=route.via,
                oif=idx[0],
                priority=route.metric,
                proto=RTPROT_SKYLAN,
            )


# IPv6's switch also stops the host taking router advertisements on interfaces
# with accept_ra=1 (docs/gateways-and-cloaking.md says so)
IP_FORWARD = {
    4: Path("/proc/sys/net/ipv4/ip_forward"),
    6: Path("/proc/sys/net/ipv6/conf/all/forwarding"),
}


def ip_forwarding(version: int = 4) -> bool:
    return IP_FORWARD[version].read_text().strip() == "1"


def set_ip_forwarding(on: bool, version: int = 4) -> None:
    IP_FORWARD[version].write_text("1\n" if on else "0\n")

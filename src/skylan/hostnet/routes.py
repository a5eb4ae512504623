"""Routes skylan installs toward gateways, tagged with their own protocol
number so they can be found and removed without touching anyone else's."""

from __future__ import annotations

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
        for r in ipr.get_routes(family=2, proto=RTPROT_SKYLAN):
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


def sync(wanted: set[Route]) -> None:
    """Make skylan's routes exactly ``wanted``."""
    have = installed()
    with IPRoute() as ipr:
        for route in have - wanted:
            ipr.route(
                "del",
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
                dst=route.prefix,
                gateway=route.via,
                oif=idx[0],
                priority=route.metric,
                proto=RTPROT_SKYLAN,
            )


IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def ip_forwarding() -> bool:
    return IP_FORWARD.read_text().strip() == "1"


def set_ip_forwarding(on: bool) -> None:
    IP_FORWARD.write_text("1\n" if on else "0\n")

"""Idempotent configuration of skylan's interfaces with pyroute2."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from pyroute2 import IPRoute, NetlinkError


def configure(
    ifname: str, *, mac: str, mtu: int, addresses: list[str], dropped: Iterable[str] = ()
) -> None:
    """Make ``ifname`` have this MAC, MTU and ``addresses``, and be up; of its
    other addresses, remove those in ``dropped`` (what we gave it before) and
    no other: a floating IP a VRRP daemon holds there must survive a netmap
    change."""
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)
        if not index:
            raise LookupError(f"no interface {ifname}")
        idx = index[0]
        link = ipr.get_links(idx)[0]
        if link.get_attr("IFLA_ADDRESS") != mac.lower():
            # (down only for a new MAC: going down flushes the IPv6 addresses
            # and the routes through it)
            ipr.link("set", index=idx, state="down")
            ipr.link("set", index=idx, address=mac)
        if link.get_attr("IFLA_MTU") != mtu:
            ipr.link("set", index=idx, mtu=mtu)
        wanted = {ipaddress.ip_interface(a) for a in addresses}
        ours = {ipaddress.ip_interface(a) for a in dropped}
        have = {
            ipaddress.ip_interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
            for a in ipr.get_addr(index=idx)
            if not ipaddress.ip_address(a.get_attr("IFA_ADDRESS")).is_link_local
        }
        for addr in (have - wanted) & ours:
            ipr.addr("del", index=idx, address=str(addr.ip), prefixlen=addr.network.prefixlen)
        for addr in wanted - have:
            try:
                ipr.addr("add", index=idx, address=str(addr.ip), prefixlen=addr.network.prefixlen)
            except NetlinkError as exc:
                if exc.code != 17:  # EEXIST: someone added it meanwhile
                    raise
        ipr.link("set", index=idx, state="up")


def delete(ifname: str) -> None:
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)
        if index:
            ipr.link("del", index=index[0])

"""Unencrypted networks on the kernel's VXLAN: the same netmap and switching
semantics, at nearly native speed, with no userspace hop.

One VXLAN interface per network (VNI = the network's id), address learning
off; the agent programs the FDB from the netmap: each peer port's MAC points
at the peer's underlay address, and one all-zero entry per peer makes the
kernel replicate broadcast, multicast and unknown unicast to every peer
(head-end replication). Floating IPs and VRRP still work: the kernel updates
neighbour caches from gratuitous ARP, and the frames to a moved address go to
the MAC that now answers for it.

Storm control is the network's limit as nftables rules on the interface
(:mod:`skylan.hostnet.stormrules`). Limits: peers must reach each other's underlay
address directly (no NAT traversal without the tunnel).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyroute2 import IPRoute, NetlinkError

VXLAN_PORT = 4789
ZERO_MAC = "00:00:00:00:00:00"


@dataclass
class VxlanPort:
    network_id: str
    name: str
    vni: int
    remotes: dict[str, str] = field(default_factory=dict)  # peer MAC -> underlay IP

    def create(self) -> None:
        with IPRoute() as ipr:
            if ipr.link_lookup(ifname=self.name):
                return
            ipr.link(
                "add",
                ifname=self.name,
                kind="vxlan",
                vxlan_id=self.vni,
                vxlan_port=VXLAN_PORT,
                vxlan_learning=0,
            )

    def program(self, remotes: dict[str, str]) -> None:
        """Make the FDB exactly ``remotes`` (MAC -> underlay IP) plus the
        all-zero flood entries, one per distinct peer address."""
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=self.name)[0]
            want = {(mac.lower(), ip) for mac, ip in remotes.items()}
            want |= {(ZERO_MAC, ip) for ip in set(remotes.values())}
            have = set()
            for entry in ipr.fdb("dump", ifindex=idx):
                mac, dst = entry.get_attr("NDA_LLADDR"), entry.get_attr("NDA_DST")
                if mac and dst and entry["ifindex"] == idx:
                    have.add((mac.lower(), dst))
            for mac, dst in have - want:
                try:
                    ipr.fdb("del", ifindex=idx, lladdr=mac, dst=dst)
                except NetlinkError:
                    pass
            for mac, dst in want - have:
                ipr.fdb("append", ifindex=idx, lladdr=mac, dst=dst)
        self.remotes = dict(remotes)

    def delete(self) -> None:
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=self.name)
            if idx:
                ipr.link("del", index=idx[0])

"""Storm control for interfaces the kernel switches itself (kernel VXLAN).

The encrypted data plane limits broadcast and multicast per port in its own
switch; a kernel VXLAN interface has no such switch, so the same per-network
limit is an nftables rule on the interface: in the ``netdev skylan_storm``
table, each interface gets an ingress chain (floods arriving from peers) and
an egress chain (floods this node replicates to its peers) that drop
broadcast and multicast frames above the limit. The table is replaced
atomically as a whole and touches nothing else.
"""

from __future__ import annotations

import re

from skylan.hostnet.nftables import NftError, run_script

TABLE = "skylan_storm"
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
StormError = NftError


def render(limits: dict[str, int]) -> str:
    """The nft script for ``{interface: packets per second}`` (0 = no limit)."""
    out = [f"table netdev {TABLE} {{"]
    for ifname, pps in sorted(limits.items()):
        if pps <= 0:
            continue
        if not _IFNAME.fullmatch(ifname):
            raise ValueError(f"{ifname!r} is not an interface name")
        for direction in ("ingress", "egress"):
            out += [
                f"  chain {direction}_{ifname.replace('-', '_').replace('.', '_')} {{",
                f'    type filter hook {direction} device "{ifname}" priority 0; policy accept;',
                "    meta pkttype { broadcast, multicast } "
                f"limit rate over {pps}/second burst {pps} packets counter drop",
                "  }",
            ]
    out.append("}")
    return "\n".join(out) + "\n"


def apply(limits: dict[str, int]) -> None:
    """Make the table exactly ``limits`` (or remove it when nothing is limited)."""
    script = f"add table netdev {TABLE}\ndelete table netdev {TABLE}\n"
    if any(pps > 0 for pps in limits.values()):
        script += render(limits)
    run_script(script)

"""skylan's one nftables table, ``inet skylan``: gateway forwarding and
masquerade, cloaking, and security groups. Replaced atomically as a whole (one ``nft -f``
transaction) and never touching any other table.
"""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass, field

TABLE = "skylan"


class NftError(RuntimeError):
    pass


@dataclass(frozen=True)
class CloakOpening:
    """An opening in the cloak: protocol, destination ports, allowed sources."""

    protocol: str  # tcp, udp, icmp, any
    port_from: int | None = None
    port_to: int | None = None
    source_cidr: str = "0.0.0.0/0"


@dataclass(frozen=True)
class Allowance:
    """What one security rule lets into an overlay interface: a protocol and
    ports, from anyone, from prefixes, or from members. A member is its port's
    MAC with each of its addresses: the switch never lets one member send with
    another's MAC, so a member cannot pass for another by its source address."""

    protocol: str  # tcp, udp, icmp, any
    port_from: int | None = None
    port_to: int | None = None
    everyone: bool = False
    prefixes: tuple[str, ...] = ()
    members: tuple[tuple[str, str], ...] = ()  # (MAC, address)
    member_macs: tuple[str, ...] = ()  # their IPv6 link-local traffic (VRRP, ND) by MAC


@dataclass(frozen=True)
class Guard:
    """A security group on one overlay interface: only what an allowance
    lets in starts a connection, in to the node or forwarded through it."""

    interface: str
    allowances: tuple[Allowance, ...] = ()


# neighbour discovery and the path MTU must pass, or nothing IPv6 works
_ICMPV6_BASICS = (
    "nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert, "
    "mld-listener-query, mld-listener-report, mld2-listener-report, packet-too-big"
)


@dataclass(frozen=True)
class Ruleset:
    # gateway: (overlay interface, LAN prefix) pairs to forward, and masquerades
    forwards: tuple[tuple[str, str], ...] = ()
    masquerades: tuple[tuple[str, str], ...] = ()  # (overlay cidr, LAN prefix)
    # cloaking: which interfaces, who may reach the tunnel port, what else is open
    cloak_interfaces: tuple[str, ...] = ()
    tunnel_ports: tuple[int, ...] = (51820,)  # skylan's UDP, and 4789 for kernel VXLAN
    peer_addresses: tuple[str, ...] = ()
    exceptions: tuple[CloakOpening, ...] = ()
    always_allow: tuple[str, ...] = field(default=())  # e.g. the controller's address
    local_tcp_ports: tuple[int, ...] = ()  # e.g. a controller running on this node
    guards: tuple[Guard, ...] = ()  # security groups, one per overlay interface

    @property
    def empty(self) -> bool:
        return not (self.forwards or self.masquerades or self.cloak_interfaces or self.guards)


def _family(prefix: str) -> str:
    return "ip" if ipaddress.ip_network(prefix).version == 4 else "ip6"


def _version(address_or_prefix: str) -> int:
    return ipaddress.ip_network(address_or_prefix, strict=False).version


def _set(items: list[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def render(rules: Ruleset) -> str:
    """The nft script for ``rules`` (pure, so it is unit-tested as text)."""
    out = [f"table inet {TABLE} {{"]
    if rules.forwards or rules.guards:
        out.append("  chain forward {")
        out.append("    type filter hook forward priority filter; policy accept;")
        for guard in rules.guards:
            out.append(f'    iifname "{guard.interface}" jump {_guard_chain(guard)}')
        out.append("    ct state established,related accept")
        for iface, prefix in rules.forwards:
            out.append(f'    iifname "{iface}" {_family(prefix)} daddr {prefix} accept')
        out.append("  }")
    if rules.masquerades:
        out.append("  chain postrouting {")
        out.append("    type nat hook postrouting priority srcnat; policy accept;")
        for overlay, prefix in rules.masquerades:
            out.append(
                f"    {_family(prefix)} saddr {overlay} {_family(prefix)} daddr {prefix} masquerade"
            )
        out.append("  }")
    if rules.cloak_interfaces or rules.guards:
        out.append("  chain input {")
        out.append("    type filter hook input priority filter; policy accept;")
        for guard in rules.guards:
            out.append(f'    iifname "{guard.interface}" jump {_guard_chain(guard)}')
        if rules.cloak_interfaces:
            ifaces = _set([f'"{i}"' for i in rules.cloak_interfaces])
            out.append(f"    iifname {ifaces} jump cloak")
        out.append("  }")
    for guard in rules.guards:
        out.extend(_guard(guard))
    if rules.cloak_interfaces:
        out.append("  chain cloak {")
        out.append("    ct state established,related accept")
        peers4 = [a for a in rules.peer_addresses if ipaddress.ip_address(a).version == 4]
        peers6 = [a for a in rules.peer_addresses if ipaddress.ip_address(a).version == 6]
        ports = _set([str(p) for p in rules.tunnel_ports])
        if peers4:
            out.append(f"    ip saddr {_set(peers4)} udp dport {ports} accept")
        if peers6:
            out.append(f"    ip6 saddr {_set(peers6)} udp dport {ports} accept")
        for addr in rules.always_allow:
            out.append(f"    {_family(addr)} saddr {addr} accept")
        for port in rules.local_tcp_ports:
            out.append(f"    tcp dport {port} accept")
        for exc in rules.exceptions:
            out.append("    " + _exception(exc))
        out.append("    counter drop")
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


def _guard_chain(guard: Guard) -> str:
    return f"guard-{guard.interface}"


def _guard(guard: Guard) -> list[str]:
    out = [f"  chain {_guard_chain(guard)} {{", "    ct state established,related accept"]
    out.append(f"    icmpv6 type {{ {_ICMPV6_BASICS} }} accept")
    for allowance in guard.allowances:
        out.extend(f"    {rule}" for rule in _allowance(allowance))
    out.append("    counter drop")
    out.append("  }")
    return out


def _allowance(a: Allowance) -> list[str]:
    """The rules of one allowance: one per kind of source."""
    sources: list[str] = []
    if a.everyone:
        sources.append("")
    sources.extend(f"{_family(prefix)} saddr {prefix}" for prefix in a.prefixes)
    for fam, ip in (("ip", 4), ("ip6", 6)):
        pairs = sorted({f"{mac} . {addr}" for mac, addr in a.members if _version(addr) == ip})
        if pairs:
            sources.append(f"ether saddr . {fam} saddr {_set(pairs)}")
    if a.member_macs:
        sources.append(f"ether saddr {_set(sorted(set(a.member_macs)))} ip6 saddr fe80::/10")
    what = _protocol(a.protocol, a.port_from, a.port_to)
    return [_accept(source, what) for source in sources]


def _accept(*matches: str) -> str:
    """An accept rule of the non-empty ``matches``."""
    return " ".join([*filter(None, matches), "accept"])


def _protocol(protocol: str, port_from: int | None, port_to: int | None) -> str:
    if protocol in ("tcp", "udp"):
        ports = str(port_from) if port_from == port_to else f"{port_from}-{port_to}"
        return f"{protocol} dport {ports}"
    if protocol == "icmp":
        return "meta l4proto { icmp, ipv6-icmp }"
    return ""


def _exception(exc: CloakOpening) -> str:
    fam = _family(exc.source_cidr)
    anywhere = ipaddress.ip_network(exc.source_cidr).prefixlen == 0
    source = "" if anywhere else f"{fam} saddr {exc.source_cidr}"
    return _accept(source, _protocol(exc.protocol, exc.port_from, exc.port_to))


def run_script(script: str) -> None:
    """Run an ``nft -f`` script: one transaction, all or nothing."""
    proc = subprocess.run(
        ["nft", "-f", "-"], input=script, capture_output=True, text=True, check=False, timeout=30
    )
    if proc.returncode != 0:
        raise NftError(proc.stderr.strip() or "nft failed")


def list_table(family: str, name: str) -> str:
    """The table as ``nft list`` prints it; empty if it does not exist."""
    proc = subprocess.run(
        ["nft", "list", "table", family, name],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    return proc.stdout if proc.returncode == 0 else ""


def apply(rules: Ruleset) -> None:
    """Replace the table atomically (or remove it when there is nothing to do)."""
    if rules.empty:
        remove()
        return
    # add-then-delete makes the delete succeed whether or not the table exists,
    # and the whole script is one transaction: no moment without the rules
    run_script(f"add table inet {TABLE}\ndelete table inet {TABLE}\n" + render(rules))


def remove() -> None:
    run_script(f"add table inet {TABLE}\ndelete table inet {TABLE}\n")


def current() -> str:
    return list_table("inet", TABLE)

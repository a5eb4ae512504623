"""The kinds of NAT the lab puts hosts behind, as nftables rulesets for the
router namespace between a host's private LAN (``lan``) and the underlay
(``wan``).

They are the cases a mesh must get through (RFC 4787's terms):

- ``eim``: endpoint-independent mapping. Masquerade keeps the source port
  when it is free, so a socket keeps one public address and port whatever it
  sends to; inbound packets pass only as answers to what went out (address-
  and port-dependent filtering). A home router; two of them are punched
  through by both sides sending at once.
- ``cone``: endpoint-independent mapping *and* filtering (a "full cone"):
  once the host has sent from a port, anyone may send to that port. Some
  home routers and some cloud NATs; the one kind a peer behind a symmetric
  NAT reaches directly. (The lab forwards what arrives unasked on a UDP port
  to its host, the same port: masquerade kept the port, so that is the
  mapping. One host behind it.)
- ``symmetric``: every new destination gets a new random public port
  (``fully-random``), so the port a third party saw is of no use to a peer:
  cloud NAT gateways and carrier-grade NAT behave so. Only a relay, or a peer
  behind a ``cone`` NAT (or none), gets through; two of them, or one and an
  ``eim`` NAT, need the relay.
- ``tcp443``: a corporate firewall. Outbound TCP to port 443 only, and no
  UDP at all.

Like any real router, it takes nothing unasked from the underlay for itself
(its input hook drops what is not an answer or a ping): a packet that arrived
unasked, say a peer's punch that came early, then leaves no connection-
tracking entry behind to take the port its host's own mapping needs.

Every router also lets the hosts on its own LAN talk to each other (two hosts
behind one NAT): its LAN is a bridge, and with ``br_netfilter`` loaded bridged
packets meet the forward hook too.
"""

from __future__ import annotations

from enum import StrEnum


class NatType(StrEnum):
    EIM = "eim"
    CONE = "cone"
    SYMMETRIC = "symmetric"
    TCP443 = "tcp443"


def ruleset(kind: NatType, inside: str) -> str:
    """``inside``: the (first) host's address on the LAN."""
    masquerade = "masquerade fully-random" if kind is NatType.SYMMETRIC else "masquerade"
    outbound = (
        'iifname "lan" oifname "wan" tcp dport 443 accept'
        if kind is NatType.TCP443
        else 'iifname "lan" oifname "wan" accept'
    )
    cone = (
        f'iifname "wan" udp dport 1024-65535 ct state new dnat to {inside}'
        if kind is NatType.CONE
        else ""
    )
    cone_forward = f'iifname "wan" ip daddr {inside} ct status dnat accept' if cone else ""
    return f"""
table ip skylab_nat {{
    set blocked {{ type ipv4_addr; }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        {cone}
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" {masquerade}
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "wan" ct state established,related accept
        iifname "wan" icmp type echo-request accept
        iifname "wan" drop
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ip daddr @blocked drop
        ip saddr @blocked drop
        ct state established,related accept
        {cone_forward}
        iifname "lan" oifname "lan" accept
        {outbound}
    }}
}}
"""

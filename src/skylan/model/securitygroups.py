"""Security groups: who may open connections to whom inside a network.

A network's ``policy`` is ``allow`` (every member reaches every port of every
other, as before security groups) or ``deny`` (only what a rule allows, plus
neighbour discovery and the answers to connections already allowed). A rule
allows one protocol (and a port range for tcp/udp) *from* a source (anyone, a
tag, a node or a CIDR) *to* a target (every member, a tag or a node).

The netmap carries the rules compiled (node names resolved to ids, ports and
protocols normalised) but keeps tags as tags: each member's entry carries its
tags, so a member joining or retagged changes one entry, not every member's
rule set. The receiving node enforces them (nftables on its skylan interface,
see :mod:`skylan.agent.securitychains`), and the controller's dry run answers
from the same rules with :func:`verdict`. Both read this module, so they agree.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Policy = Literal["allow", "deny"]
Protocol = Literal["tcp", "udp", "icmp", "any"]
MAX_RULES = 500  # per network: each is a line on every member's firewall

SELECTOR_HELP = "any, tag:NAME, node:NAME or a CIDR such as 10.0.0.0/8"
TARGET_HELP = "all, tag:NAME or node:NAME"


class Match(BaseModel):
    """One side of a rule. ``value``: the tag, the node id, or the CIDR."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["any", "tag", "node", "cidr"]
    value: str | None = None

    @model_validator(mode="after")
    def _value(self) -> Match:
        if (self.kind == "any") != (self.value is None):
            raise ValueError("'any' takes no value; tag, node and cidr need one")
        return self


class SecurityRuleInfo(BaseModel):
    """A compiled rule, as the netmap carries it."""

    model_config = ConfigDict(frozen=True)

    id: str
    protocol: Protocol
    port_from: int | None = Field(None, ge=1, le=65535)
    port_to: int | None = Field(None, ge=1, le=65535)
    source: Match
    target: Match


def parse_source(text: str) -> Match:
    """``any``, ``tag:NAME``, ``node:NAME`` or a CIDR (``cidr:`` optional).
    A node keeps its name here; the controller resolves it to an id."""
    text = text.strip()
    if text in ("any", "*"):
        return Match(kind="any")
    kind, sep, value = text.partition(":")
    if sep and kind in ("tag", "node") and value:
        return Match(kind=kind, value=value)
    cidr = value if sep and kind == "cidr" else text
    try:
        return Match(kind="cidr", value=str(ipaddress.ip_network(cidr, strict=False)))
    except ValueError:
        raise ValueError(f"{text!r} is not a source: use {SELECTOR_HELP}") from None


def parse_target(text: str) -> Match:
    """``all`` (every member), ``tag:NAME`` or ``node:NAME``."""
    text = text.strip()
    if text in ("all", "any", "*"):
        return Match(kind="any")
    kind, sep, value = text.partition(":")
    if sep and kind in ("tag", "node") and value:
        return Match(kind=kind, value=value)
    raise ValueError(f"{text!r} is not a target: use {TARGET_HELP}")


@dataclass(frozen=True)
class Member:
    """What a rule may ask of a member: who it is and what it is tagged."""

    node_id: str
    tags: frozenset[str]


@dataclass(frozen=True)
class Sender:
    """Where a connection comes from: an address, and the member it belongs to
    (None: an address beyond the network, e.g. on a gateway's LAN)."""

    address: str
    member: Member | None = None


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule_id: str | None  # the rule that allows it, if one does
    reason: str


def targets(rule: SecurityRuleInfo, member: Member) -> bool:
    """Whether ``rule`` protects ``member`` (is enforced on it)."""
    return selects(rule.target, member)


def admits(rule: SecurityRuleInfo, sender: Sender) -> bool:
    """Whether ``sender`` is among the rule's sources."""
    source = rule.source
    if source.kind == "any":
        return True
    if source.kind == "cidr":
        address = ipaddress.ip_address(sender.address)
        network = ipaddress.ip_network(source.value or "")
        return address.version == network.version and address in network
    return sender.member is not None and selects(source, sender.member)


def covers(rule: SecurityRuleInfo, protocol: Protocol, port: int | None) -> bool:
    """Whether the rule's protocol and ports include this connection."""
    if rule.protocol == "any":
        return True
    if rule.protocol != protocol:
        return False
    if protocol == "icmp":
        return True
    return port is not None and (rule.port_from or 0) <= port <= (rule.port_to or 0)


def verdict(
    policy: Policy,
    rules: list[SecurityRuleInfo],
    sender: Sender,
    target: Member,
    *,
    protocol: Protocol,
    port: int | None,
) -> Verdict:
    """Whether a new connection from ``sender`` to ``target`` is let in."""
    if policy == "allow":
        return Verdict(True, None, "the network's default policy allows everything")
    if sender.member is not None and sender.member.node_id == target.node_id:
        return Verdict(True, None, "a node always reaches itself")
    for rule in rules:
        if targets(rule, target) and admits(rule, sender) and covers(rule, protocol, port):
            return Verdict(True, rule.id, f"allowed by rule {rule.id}")
    return Verdict(False, None, "no rule allows it and the default policy is deny")


def selects(match: Match, member: Member) -> bool:
    """Whether a rule's side names this member (a CIDR side names none)."""
    if match.kind == "any":
        return True
    if match.kind == "tag":
        return match.value in member.tags
    if match.kind == "node":
        return match.value == member.node_id
    return False

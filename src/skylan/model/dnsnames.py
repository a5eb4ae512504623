"""DNS names for members: ``NODE.NETWORK.DOMAIN`` (the domain is the
network's ``dns_domain``, default ``skylan.internal``), and names an
administrator gives other addresses of a network, such as floating IPs
(``NAME.NETWORK.DOMAIN``). Every member's agent answers them from its netmap
(see :mod:`skylan.agent.dnsanswers`)."""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict

DEFAULT_DOMAIN = "skylan.internal"
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
MAX_NAME = 200  # leaves room for the zone within DNS's 253 characters


class DnsRecordInfo(BaseModel):
    """A name in a network's zone for an address that is not a member's own."""

    model_config = ConfigDict(frozen=True)

    name: str  # relative to the zone: "vip" is vip.NETWORK.DOMAIN
    address: str


def dns_name(value: str, what: str = "name") -> str:
    """A relative or absolute DNS name: dot-separated labels of letters,
    digits, '-' and '_' (not at a label's ends), at most 63 characters each;
    lower-cased (DNS is not case-sensitive)."""
    text = value.strip().rstrip(".").lower()
    if not text or len(text) > MAX_NAME:
        raise ValueError(f"{what} {value!r}: use 1-{MAX_NAME} characters")
    for label in text.split("."):
        if _LABEL.fullmatch(label) is None:
            raise ValueError(
                f"{what} {value!r}: each dot-separated part is 1-63 letters, digits, "
                "'-' or '_', not starting or ending with '-'"
            )
    return text


def zone_of(network: str, domain: str | None) -> str | None:
    """The network's zone; None when DNS is off for it (no domain) or its
    name cannot be a DNS label."""
    if domain is None:
        return None
    try:
        return dns_name(f"{network}.{domain}")
    except ValueError:
        return None


def address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None

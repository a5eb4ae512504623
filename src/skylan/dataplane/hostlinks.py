"""What a data plane asks of the host's network configuration, and no more.

The data plane owns packets, not the host: giving its TAPs their MAC, MTU and
addresses, creating kernel VXLAN interfaces for unencrypted networks and
installing storm-control rules are the host's business (:mod:`skylan.hostnet`).
Lane 0 is handed an implementation of :class:`HostLinks` by whoever runs it
(the agent); worker lanes configure nothing and get none.
"""

from __future__ import annotations

from typing import Protocol


class HostLinkError(Exception):
    """The host refused a configuration (a message for ``skylan status``)."""


class VxlanLink(Protocol):
    """One unencrypted network's kernel VXLAN interface."""

    network_id: str
    name: str
    vni: int
    remotes: dict[str, str]  # peer MAC -> underlay IP

    def create(self) -> None: ...

    def program(self, remotes: dict[str, str]) -> None: ...

    def delete(self) -> None: ...


class HostLinks(Protocol):
    def configure(self, name: str, *, mac: str, mtu: int, addresses: list[str]) -> None:
        """Give interface ``name`` this MAC, MTU and addresses, and bring it up.
        Addresses it gave before and no longer gives go; others (a floating IP
        that keepalived holds, one an administrator added) stay."""

    def vxlan(self, network_id: str, name: str, vni: int) -> VxlanLink:
        """The VXLAN interface ``name`` for a network (not created yet)."""

    def apply_storm(self, limits: dict[str, int]) -> None:
        """Limit broadcast and multicast per interface (packets/s); raises
        :class:`HostLinkError` or ``OSError`` if the host refuses."""

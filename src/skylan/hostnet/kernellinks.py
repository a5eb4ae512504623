"""The host side of a data plane's links, on this machine's kernel
(:class:`skylan.dataplane.hostlinks.HostLinks`)."""

from __future__ import annotations

from skylan.dataplane.hostlinks import HostLinkError
from skylan.hostnet import links, stormrules
from skylan.hostnet.vxlan import VxlanPort


class KernelLinks:
    def __init__(self) -> None:
        # what each interface was given last: only those may be taken away
        # (an interface is new when the agent starts: the TAP dies with it)
        self._given: dict[str, list[str]] = {}

    def configure(self, name: str, *, mac: str, mtu: int, addresses: list[str]) -> None:
        links.configure(
            name, mac=mac, mtu=mtu, addresses=addresses, dropped=self._given.get(name, [])
        )
        self._given[name] = list(addresses)

    def vxlan(self, network_id: str, name: str, vni: int) -> VxlanPort:
        return VxlanPort(network_id, name, vni)

    def apply_storm(self, limits: dict[str, int]) -> None:
        try:
            stormrules.apply(limits)
        except stormrules.StormError as exc:
            raise HostLinkError(str(exc)) from exc

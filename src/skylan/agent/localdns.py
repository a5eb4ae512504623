"""Names for members on this node: the DNS server (:mod:`.dnsservice`) and
the host's resolver pointed at it for skylan's zones only
(:mod:`skylan.hostnet.resolver`), kept in step with the netmap.

Modes (``skylan agent run --dns``):

- ``resolved``: systemd-resolved per-link DNS. The server listens on the
  node's own address in each network, and that interface routes only its zone
  there.
- ``resolv-conf``: the server listens on 127.0.0.153. It goes first in
  /etc/resolv.conf, and every other name is forwarded to the servers the file
  named before.
- ``auto`` (the default): ``resolved`` where systemd-resolved serves this
  network namespace, else ``resolv-conf``.
- ``off``: the host's resolver is left alone.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from skylan.agent.dnsanswers import zones_of
from skylan.agent.dnsmode import DnsMode
from skylan.agent.dnsservice import DnsService
from skylan.hostnet import resolver
from skylan.model.agentstatus import DnsStatus
from skylan.model.netmap import NetMap

log = logging.getLogger(__name__)

LOOPBACK_ADDRESS = "127.0.0.153"


class LocalDns:
    def __init__(
        self,
        mode: DnsMode = DnsMode.auto,
        *,
        resolv_conf: Path = resolver.RESOLV_CONF,
        address: str = LOOPBACK_ADDRESS,
        port: int = 53,
    ) -> None:
        self.wanted = mode
        self.mode = DnsMode.off
        self.resolv_conf = resolv_conf
        self.address = address
        self.port = port
        self.service = DnsService()
        self.error: str | None = None
        self._links: dict[str, tuple[str, tuple[str, ...]]] = {}  # ifname -> (server, zones)
        self._installed = False
        self._zones_of: NetMap | None = None  # the netmap the zones were made from

    async def reconcile(self, netmap: NetMap | None, ifnames: dict[str, str]) -> None:
        """Serve the netmap's zones and keep the host's resolver pointed at
        them (re-done every few seconds: another program may rewrite it)."""
        if self.wanted is DnsMode.off:
            return
        if netmap is not self._zones_of:  # (a new netmap is a new object)
            self.service.set_zones(zones_of(netmap))
            self._zones_of = netmap
        zones = self.service.answerer.zones
        if not zones:
            await self._undo()
            return
        if self.wanted is DnsMode.auto:
            here = await asyncio.to_thread(resolver.resolved_here)
            self.mode = DnsMode.resolved if here else DnsMode.resolv_conf
        else:
            self.mode = self.wanted
        try:
            if self.mode is DnsMode.resolved:
                await self._per_link(netmap, ifnames)
            else:
                await self._in_resolv_conf()
            self.error = None
        except (OSError, resolver.ResolverError) as exc:
            if str(exc) != self.error:
                log.warning("DNS: %s", exc)
            self.error = str(exc)

    async def _per_link(self, netmap: NetMap | None, ifnames: dict[str, str]) -> None:
        wanted: dict[str, tuple[str, tuple[str, ...]]] = {}
        for net in netmap.networks if netmap else []:
            own = netmap.own_port(net) if netmap else None
            ifname = ifnames.get(net.id)
            if net.dns_zone and own is not None and ifname is not None:
                wanted[ifname] = (own.ipv4, (net.dns_zone,))
        await self.service.listen({server for server, _ in wanted.values()}, self.port)
        for ifname in set(self._links) - set(wanted):
            await asyncio.to_thread(resolver.revert_link, ifname)
            del self._links[ifname]
        for ifname, (server, zones) in wanted.items():
            if self._links.get(ifname) != (server, zones) and server in self.service.listening:
                await asyncio.to_thread(resolver.set_link, ifname, server, list(zones))
                self._links[ifname] = (server, zones)
        self._raise_listen_errors()

    async def _in_resolv_conf(self) -> None:
        await self.service.listen({self.address}, self.port)
        self._raise_listen_errors()  # never name a server that is not there
        self.service.upstreams = await asyncio.to_thread(
            resolver.install, self.address, self.resolv_conf
        )
        self._installed = True

    def _raise_listen_errors(self) -> None:
        if self.service.errors:
            address, why = next(iter(self.service.errors.items()))
            raise resolver.ResolverError(f"cannot serve DNS on {address}:{self.port}: {why}")

    async def _undo(self) -> None:
        if self._installed:
            await asyncio.to_thread(resolver.uninstall, self.resolv_conf)
            self._installed = False
        for ifname in list(self._links):
            await asyncio.to_thread(resolver.revert_link, ifname)
        self._links.clear()
        await self.service.listen(set())
        self.service.upstreams = []

    async def aclose(self) -> None:
        try:
            await self._undo()
        except (OSError, resolver.ResolverError) as exc:
            log.warning("DNS: could not undo the resolver's configuration: %s", exc)
        await self.service.aclose()

    def status(self) -> DnsStatus:
        return DnsStatus(
            mode=self.mode.value if self.wanted is not DnsMode.off else "off",
            zones=sorted(z.origin for z in self.service.answerer.zones),
            listening=self.service.listening,
            upstreams=list(self.service.upstreams),
            error=self.error,
            counts=dict(self.service.counts),
        )

"""The :class:`Lab`: builds and tears down a multi-host topology.

Layout (all inside namespaces named ``skl-<id>-<role>``)::

    underlay ns: bridge br0 ── u<N> ⇄ eth0 of host N       198.18.1.N/16
                           ── u<N> ⇄ wan of NAT router N    198.18.2.N/16
                                          lan 198.19.N.1/24 ⇄ eth0 of host 198.19.N.2
                           ── u<N> ⇄ eth0 of "internet"     198.18.3.N/16
    office LAN: lan0 on the chosen host ⇄ eth0 of the LAN host (e.g. 192.168.10.0/24)

The underlay bridge carries no address and no namespace has a link to the
host's own interfaces, so lab traffic can only reach lab namespaces.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import select
import signal
import subprocess
import sys
from dataclasses import dataclass
from types import TracebackType

from skylan.lab import naming, netns
from skylan.lab.cleanup import clean_lab
from skylan.lab.errors import LabError
from skylan.lab.host import Host
from skylan.lab.nat import NatType, ruleset
from skylan.lab.procs import kill_pids, process_start_time, signal_group, stop_process
from skylan.lab.state import LabState, TrackedProcess

UNDERLAY_PREFIXLEN = 16


@dataclass(frozen=True)
class Netem:
    """Impairments for one underlay link, applied in both directions.

    The semantics are ``tc netem``'s (``reorder_pct`` of frames skip the
    delay); the lab applies them with :mod:`skylan.lab.impair` because the
    kernel may not have netem.
    """

    loss_pct: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder_pct: float = 0.0
    seed: int | None = None

    def args(self) -> list[str]:
        out: list[str] = []
        for flag, value in (
            ("--loss", self.loss_pct),
            ("--delay", self.delay_ms),
            ("--jitter", self.jitter_ms),
            ("--reorder", self.reorder_pct),
        ):
            if value:
                out += [flag, str(value)]
        if out and self.seed is not None:
            out += ["--seed", str(self.seed)]
        return out


@dataclass
class _Router:
    """A NAT router namespace and the hosts on its LAN."""

    netns: str
    private_net: str  # the first three octets of its LAN's /24
    wan: str  # its (public) underlay address
    kind: NatType
    hosts: int = 0


@dataclass(frozen=True)
class _Uplink:
    """The two ends of a host's link into the underlay bridge."""

    netns: str
    ifname: str
    bridge_port: str


class Lab:
    """A disposable topology of namespaces. Use as a context manager."""

    def __init__(self, *, reaper: bool = True) -> None:
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces)")
        self.id = naming.new_lab_id()
        self.hosts: dict[str, Host] = {}
        self._uplinks: dict[str, _Uplink] = {}
        self._routers: dict[str, _Router] = {}  # host -> the NAT it is behind
        self._procs: list[subprocess.Popen[bytes]] = []
        self._relays: dict[str, subprocess.Popen[bytes]] = {}
        self._lossy: set[str] = set()  # hosts whose link loses packets (see drop)
        self._ports = 0
        self._nat_count = 0
        self._closed = False
        self._state = LabState(lab_id=self.id, owner_pid=os.getpid())
        self._state.save()
        self._reaper: subprocess.Popen[bytes] | None = None
        atexit.register(self.close)
        try:
            if reaper:
                self._reaper = subprocess.Popen(
                    [sys.executable, "-m", "skylan.lab.reaper", self.id, str(os.getpid())],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            self.underlay = self._add_netns("u")
            netns.ip("link", "add", "br0", "type", "bridge", netns=self.underlay)
            netns.ip("link", "set", "br0", "up", netns=self.underlay)
        except BaseException:
            self.close()
            raise

    # -- building -----------------------------------------------------------

    def add_host(
        self, name: str, *, nat: bool | NatType = False, behind: str | None = None
    ) -> Host:
        """A host on the underlay. With ``nat`` it sits behind a router of
        that kind (``True``: endpoint-independent, a home router's) and can
        reach out but cannot be reached from the underlay. ``behind``: on the
        LAN of the NAT another host sits behind (two hosts behind one NAT)."""
        self._check_name(name)
        index = len(self.hosts) + 1
        if index > 250:
            raise LabError("a lab holds at most 250 hosts")
        if behind is not None:
            return self._add_behind(name, behind)
        ns = self._add_netns(name)
        if not nat:
            address = f"198.18.1.{index}"
            self._uplink(name, ns, "eth0", address)
            host = self._make_host(name, ns, address, address)
        else:
            kind = NatType.EIM if nat is True else NatType(nat)
            self._nat_count += 1
            n = self._nat_count
            router = self._add_netns(f"{name}-nat")
            wan = f"198.18.2.{n}"
            self._uplink(name, router, "wan", wan)
            private_net = f"198.19.{n}"
            netns.ip("link", "add", "lan", "type", "bridge", netns=router)
            netns.ip("addr", "add", f"{private_net}.1/24", "dev", "lan", netns=router)
            netns.ip("link", "set", "lan", "up", netns=router)
            self._sysctl(router, "net.ipv4.ip_forward", "1")
            self._nft(router, ruleset(kind, f"{private_net}.2"))
            self._routers[name] = _Router(router, private_net, wan, kind)
            host = self._lan_host(name, ns, self._routers[name])
        self.hosts[name] = host
        return host

    def nat_type(self, name: str) -> NatType | None:
        """The kind of NAT the host is behind (None: on the underlay)."""
        router = self._routers.get(name)
        return router.kind if router is not None else None

    def block(self, name: str, address: str, *, blocked: bool = True) -> None:
        """Cut (or, with ``blocked=False``, mend) every path between the host
        behind a NAT and the underlay ``address``, established flows too: a
        direct path that stops working, or starts to."""
        router = self._routers.get(name)
        if router is None:
            raise LabError(f"{name!r} is not a host behind a NAT")
        verb = "add" if blocked else "delete"
        # (the forward hook drops before it accepts established flows)
        self._nft(router.netns, f"{verb} element ip skylab_nat blocked {{ {address} }}\n")

    def _add_behind(self, name: str, other: str) -> Host:
        router = self._routers.get(other)
        if router is None:
            raise LabError(f"{other!r} is not a host behind a NAT")
        if router.hosts >= 250:
            raise LabError(f"the NAT of {other!r} holds at most 250 hosts")
        host = self._lan_host(name, self._add_netns(name), router)
        self._routers[name] = router
        self.hosts[name] = host
        return host

    def _lan_host(self, name: str, ns: str, router: _Router) -> Host:
        """A host on a NAT router's LAN (a bridge, so several can share it)."""
        router.hosts += 1
        port = f"l{router.hosts}"
        self._veth(router.netns, port, ns, "eth0")
        netns.ip("link", "set", port, "master", "lan", netns=router.netns)
        netns.ip("link", "set", port, "up", netns=router.netns)
        address = f"{router.private_net}.{router.hosts + 1}"
        netns.ip("addr", "add", f"{address}/24", "dev", "eth0", netns=ns)
        netns.ip("link", "set", "eth0", "up", netns=ns)
        netns.ip("route", "add", "default", "via", f"{router.private_net}.1", netns=ns)
        return self._make_host(name, ns, address, router.wan)

    def add_internet(self, name: str = "internet") -> Host:
        """A scanner's vantage point: just another underlay host, by role."""
        return self.add_host(name)

    def add_office_lan(
        self,
        behind: str,
        *,
        prefix: str = "192.168.10.0/24",
        name: str = "lan",
        prefix6: str | None = None,
    ) -> Host:
        """An office LAN namespace reachable only through host ``behind``.

        The chosen host gets ``lan0`` with the first address of ``prefix``
        (and of ``prefix6``, if given); the LAN host gets the tenth and a
        default route through it.
        """
        self._check_name(name)
        gateway = self.host(behind)
        net = ipaddress.ip_network(prefix)
        if net.version != 4 or net.num_addresses < 16:
            raise LabError("office LAN prefix must be IPv4 and at least a /28")
        gw_ip, lan_ip = net[1], net[10]
        ns = self._add_netns(name)
        self._veth(gateway.netns, "lan0", ns, "eth0")
        netns.ip("addr", "add", f"{gw_ip}/{net.prefixlen}", "dev", "lan0", netns=gateway.netns)
        netns.ip("link", "set", "lan0", "up", netns=gateway.netns)
        netns.ip("addr", "add", f"{lan_ip}/{net.prefixlen}", "dev", "eth0", netns=ns)
        netns.ip("link", "set", "eth0", "up", netns=ns)
        netns.ip("route", "add", "default", "via", str(gw_ip), netns=ns)
        if prefix6 is not None:
            net6 = ipaddress.IPv6Network(prefix6)
            for dev, at, host_ns in (("lan0", 1, gateway.netns), ("eth0", 10, ns)):
                netns.ip(
                    "-6",
                    "addr",
                    "add",
                    f"{net6[at]}/{net6.prefixlen}",
                    "dev",
                    dev,
                    "nodad",
                    netns=host_ns,
                )
            netns.ip("-6", "route", "add", "default", "via", str(net6[1]), netns=ns)
        gateway.interfaces["lan0"] = str(gw_ip)
        host = self._make_host(name, ns, str(lan_ip), str(lan_ip))
        self.hosts[name] = host
        return host

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise LabError(f"no host named {name!r} in lab {self.id}") from None

    # -- impairments --------------------------------------------------------

    def impair(self, name: str, impairment: Netem) -> None:
        """Impair the host's underlay link (both directions) until cleared.

        The link's bridge port is spliced out of the bridge through a relay
        process: ``u<N>`` ⇄ relay ⇄ ``i<N>`` ⇄ ``j<N>`` (on br0).
        """
        uplink = self._uplinks.get(name)
        if uplink is None:
            raise LabError(f"{name!r} has no underlay link")
        self.clear_impairment(name)
        args = impairment.args()
        if not args:
            return
        port = uplink.bridge_port
        inner, outer = "i" + port[1:], "j" + port[1:]
        ns = self.underlay
        netns.ip("link", "set", port, "nomaster", netns=ns)
        netns.ip("link", "add", inner, "type", "veth", "peer", "name", outer, netns=ns)
        netns.ip("link", "set", outer, "master", "br0", netns=ns)
        for dev in (inner, outer):
            netns.ip("link", "set", dev, "up", netns=ns)
        relay = subprocess.Popen(
            [*_in_netns(ns), sys.executable, "-m", "skylan.lab.impair", port, inner, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        self._track(relay)
        self._relays[name] = relay
        assert relay.stdout is not None
        ready, _, _ = select.select([relay.stdout], [], [], 10)
        if not ready or relay.stdout.readline().strip() != b"ready":
            raise LabError(f"impairment relay for {name!r} did not start")

    def clear_impairment(self, name: str) -> None:
        uplink = self._uplinks.get(name)
        relay = self._relays.pop(name, None)
        if uplink is None or relay is None:
            return
        relay.terminate()
        try:
            relay.wait(timeout=5)
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.wait()
        port = uplink.bridge_port
        netns.ip("link", "del", "i" + port[1:], netns=self.underlay, check=False)
        netns.ip("link", "set", port, "master", "br0", netns=self.underlay)

    def drop(self, name: str, pct: float) -> None:
        """Lose ``pct`` % of the packets each way on the host's underlay link,
        as a lossy internet path does: one wire-sized datagram at a time.

        Unlike :meth:`impair`'s relay this stays in the kernel (nftables
        ``numgen random`` on the link's bridge port), so every kind of traffic
        passes, UDP-tunnel GSO included. Segmentation offloads are turned off
        on every host's side of the underlay while any loss is set, so the
        kernel cuts GSO packets into datagrams *before* they reach the bridge
        (through veths they would otherwise cross whole, and a lost 64 KB GSO
        packet is not what a real path loses), and receive offload (GRO) is on
        at the hosts, as on a real NIC, to coalesce them again after the loss
        (the bridge ports, where the loss is, keep GRO off so that the hooks see
        single datagrams). ``pct`` 0 removes the loss.
        """
        uplink = self._uplinks.get(name)
        if uplink is None:
            raise LabError(f"{name!r} has no underlay link")
        port = uplink.bridge_port
        table = f"lab_loss_{port}"
        script = f"table netdev {table} {{}}\ndelete table netdev {table}\n"
        if pct > 0:
            rule = f"numgen random mod 100000 < {round(pct * 1000)} counter drop"
            script += (
                f"table netdev {table} {{\n"
                f'  chain in {{ type filter hook ingress device "{port}" priority 0; {rule}; }}\n'
                f'  chain out {{ type filter hook egress device "{port}" priority 0; {rule}; }}\n'
                "}\n"
            )
            self._lossy.add(name)
        else:
            self._lossy.discard(name)
        self._nft(self.underlay, script)
        lossy = bool(self._lossy)
        for link in self._uplinks.values():
            netns.run(
                [*_in_netns(link.netns), "ethtool", "-K", link.ifname]
                + [arg for feature in _SEGMENTATION for arg in (feature, "off" if lossy else "on")]
                + [
                    arg
                    for feature in _RECEIVE_OFFLOAD
                    for arg in (feature, "on" if lossy else "off")
                ]
            )

    # -- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Kill the lab's processes and delete its namespaces; idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        for proc in self._procs:
            signal_group(proc.pid, signal.SIGTERM)
        kill_pids([p.pid for p in self._procs])
        for proc in self._procs:
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        clean_lab(self.id)
        if self._reaper is not None:
            stop_process(self._reaper)

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ----------------------------------------------------------

    def _check_name(self, name: str) -> None:
        if not name or not name.replace("-", "").isalnum() or len(name) > 20:
            raise LabError(f"bad host name {name!r}: use letters, digits and '-'")
        if name in self.hosts:
            raise LabError(f"host {name!r} already exists")

    def _add_netns(self, role: str) -> str:
        name = naming.netns_name(self.id, role)
        self._state.netns.append(name)
        self._state.save()
        netns.add_netns(name)
        return name

    def _veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        # Both ends are created directly inside their namespaces: no veth ever
        # appears in the host's own namespace, even for a moment.
        netns.ip(
            "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", ns_b, netns=ns_a
        )

    def _uplink(self, name: str, ns: str, ifname: str, address: str) -> None:
        self._ports += 1
        port = f"u{self._ports}"
        self._veth(ns, ifname, self.underlay, port)
        netns.ip("link", "set", port, "master", "br0", netns=self.underlay)
        netns.ip("link", "set", port, "up", netns=self.underlay)
        netns.ip("addr", "add", f"{address}/{UNDERLAY_PREFIXLEN}", "dev", ifname, netns=ns)
        netns.ip("link", "set", ifname, "up", netns=ns)
        self._uplinks[name] = _Uplink(ns, ifname, port)

    def _make_host(self, name: str, ns: str, underlay_ip: str, public_ip: str) -> Host:
        return Host(
            name=name, netns=ns, underlay_ip=underlay_ip, public_ip=public_ip, _on_spawn=self._track
        )

    def _track(self, proc: subprocess.Popen[bytes]) -> None:
        self._procs.append(proc)
        start = process_start_time(proc.pid)
        if start is not None:
            self._state.processes.append(TrackedProcess(proc.pid, start))
            self._state.save()

    @staticmethod
    def _sysctl(ns: str, key: str, value: str) -> None:
        netns.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}"])

    @staticmethod
    def _nft(ns: str, ruleset: str) -> None:
        proc = subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "-f", "-"],
            input=ruleset,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise LabError(f"nft in {ns}: {proc.stderr.strip()}")


_SEGMENTATION = (
    "tso",
    "tx-udp-segmentation",
    "tx-udp_tnl-segmentation",
    "tx-udp_tnl-csum-segmentation",
)


# what it takes for a veth to coalesce UDP datagrams for a socket with UDP_GRO,
# as a NIC's GRO does
_RECEIVE_OFFLOAD = ("gro", "rx-udp-gro-forwarding")


def _in_netns(ns: str) -> list[str]:
    return ["ip", "netns", "exec", ns]

"""The encrypted data plane of one node: TAP devices, the UDP socket, the
tunnel engine and one switch per network, driven by an asyncio loop.

This is the thin I/O adapter around the sans-I/O layers: it reads frames
from TAPs and datagrams from the socket, hands them to the switch and the
tunnel engine with the loop's monotonic ``now``, writes out what they decide,
and keeps the engine's timer armed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from skylan.dataplane.ackthinning import ends_in_tcp, thin_acks
from skylan.dataplane.discovery import AddressDiscovery, ReflectorTarget
from skylan.dataplane.hostlinks import HostLinkError, HostLinks, VxlanLink
from skylan.dataplane.lanepairs import paired_lanes, send_lane
from skylan.dataplane.lanesupervisor import WorkerLanes, merged_status
from skylan.dataplane.native import SLOW_DATAGRAM, SLOW_TAP_FRAME, CoreLink, SlowEntry
from skylan.dataplane.relaylinks import RelayLink, RelayLinks
from skylan.dataplane.relaystream import RelayStream
from skylan.dataplane.tap import MAX_READ, VNET_HDR_LEN, ZERO_VNET_HDR, TapDevice
from skylan.dataplane.udp import UdpSocket
from skylan.dataplane.udpcoalesce import HEADERS, Frame, Write, coalesce, coalesce_rows
from skylan.model.agentstatus import LaneStatus, PathName, TapStatus, TunnelStatus, VxlanStatus
from skylan.model.counters import DropCounters
from skylan.model.lanelimit import MAX_LANES
from skylan.model.netmap import NetMap, NetworkMap, PeerInfo, PortInfo
from skylan.model.publickey import decode_public, encode_public
from skylan.model.reflexive import ANSWER_TYPE, ReflexiveError
from skylan.switch import Member, Switch
from skylan.switch.frames import ETHERTYPE_ARP, mac_bytes
from skylan.tunnel import relaywire, wire
from skylan.tunnel.config import TunnelConfig
from skylan.tunnel.engine import TunnelEngine
from skylan.tunnel.events import (
    Address,
    EndpointChanged,
    FrameRowsReceived,
    FramesReceived,
    HandshakeCompleted,
    PeerDead,
    SuperFrameReceived,
)
from skylan.tunnel.framerows import ROW_HEAD, FrameRows
from skylan.tunnel.keys import StaticKeypair
from skylan.tunnel.pathstate import PathKind
from skylan.tunnel.relaywire import RelayWireError

REFLEXIVE_ANSWER = bytes([ANSWER_TYPE])
RELAY_ANSWER = bytes([relaywire.ANSWER])
OUR_ANSWERS = (REFLEXIVE_ANSWER, RELAY_ANSWER)  # datagrams for the lane, not the engine

log = logging.getLogger("skylan.dataplane")

TAP_PREFIX = "sky"
READ_BATCH = 64
GSO_NONE = 0  # virtio_net_hdr.gso_type of a frame the kernel did not coalesce
SMALL_FRAME = 1600  # frames up to this size are batched per peer
ETH_ADDRS = 12  # destination and source MAC
ARP_TYPE = ETHERTYPE_ARP.to_bytes(2, "big")
BATCH_BYTES = 16 * 1024  # a batch is sealed once it holds this much
TIMER_RECHECK = 0.05  # s: how stale the loop's wake-up may get after data passes
CORE_TICK = 0.25  # s: how often what the compiled core carried reaches the engine's timers
SLOW_BATCH = 256  # slow-path entries handled per loop callback


@dataclass
class Port:
    """One network this node is in: its TAP, its switch and its traffic."""

    network_id: str
    name: str
    vni: int
    tap: TapDevice
    switch: Switch
    counters: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("tx_bytes", "rx_bytes", "tx_packets", "rx_packets", "rx_coalesced", "tx_acks_thinned"),
            0,
        )
    )


def parse_endpoint(text: str) -> tuple[str, int] | None:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or host.startswith("["):
        return None  # IPv6 underlays are not used by this data plane yet
    return host, int(port)


class Dataplane:
    """One lane of the node's encrypted data plane (lane 0, the only one by
    default, also owns the interfaces' configuration and the kernel VXLANs).

    With ``lanes`` > 1 every TAP has one queue per lane; lane 0 runs in the
    agent and starts the others as worker processes (:mod:`.lanesupervisor`), each
    with its own UDP port (``listen_port + lane``), identity and engine.
    """

    def __init__(
        self,
        key: StaticKeypair,
        listen_port: int,
        config: TunnelConfig | None = None,
        *,
        lane: int = 0,
        lanes: int = 1,
        ack_thinning: bool = True,
        native: bool = False,
        host: HostLinks | None = None,
        reflector: ReflectorTarget | None = None,
    ) -> None:
        """``host`` configures the TAPs, VXLANs and storm rules: lane 0
        needs it, worker lanes configure nothing. With ``reflector`` the lane
        learns its reflexive address (and tells ``on_candidates``)."""
        if not 0 <= lane < lanes <= MAX_LANES:
            raise ValueError(f"lane {lane} of {lanes}: at most {MAX_LANES} lanes")
        if lane == 0 and host is None:
            raise ValueError("lane 0 configures the host's links: pass host=")
        if listen_port + lanes - 1 > 65535:
            last = listen_port + lanes - 1
            raise ValueError(f"{lanes} lanes need UDP ports {listen_port}..{last}")
        self.node_key = key
        self.host = host
        self.key = key.lane(lane)
        self.lane = lane
        self.lanes = lanes
        self.ack_thinning = ack_thinning
        self.engine = TunnelEngine(
            self.key,
            config=config or TunnelConfig(persistent_keepalive=25),
            wall_clock_offset=time.time() - time.monotonic(),
        )
        self.udp = UdpSocket(listen_port + lane)
        self.listen_port = listen_port
        self.ports: dict[str, Port] = {}  # network id -> port (encrypted networks)
        self.vxlans: dict[str, VxlanLink] = {}  # network id -> kernel VXLAN (unencrypted)
        self.by_vni: dict[int, Port] = {}
        self.node_of_key: dict[bytes, str] = {}  # every lane key we pair with -> node
        self.key_of_node: dict[str, bytes] = {}  # node -> the lane key we send to
        self.names: dict[bytes, str] = {}
        self.drops = DropCounters()
        self.workers: WorkerLanes | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._recheck: asyncio.TimerHandle | None = None  # see _arm_timer
        self._timer_checked = float("-inf")  # loop time the engine was last asked
        self.errors: list[str] = []
        self.bad_peers: dict[str, str] = {}  # name -> why the last netmap's entry was skipped
        self._storm_limits: dict[str, int] = {}
        self._tap_buf = bytearray(wire.CONTAINER_PREFIX_LEN + MAX_READ)
        self._tap_view = memoryview(self._tap_buf)
        # the compiled core, which then owns the per-packet loop (see .native)
        self.link: CoreLink | None = None
        if native:
            self.link = CoreLink(
                self.udp.fileno(),
                chunk_size=self.engine.config.chunk_size,
                reassembly_timeout=self.engine.config.reassembly_timeout,
            )
        self._tick: asyncio.TimerHandle | None = None
        self.discovery = AddressDiscovery(reflector) if reflector is not None else None
        self._discover: asyncio.TimerHandle | None = None
        self.on_candidates: Callable[[], None] | None = None  # our candidates changed
        self.relays = RelayLinks(self.key)
        self.relays.via = self._via_stream
        self.relay_streams: dict[str, RelayStream] = {}  # relays reached over TLS, by id
        self._candidates: dict[bytes, list[tuple[Address, PathKind]]] = {}  # as the netmap says
        self._hellos: asyncio.TimerHandle | None = None

    @property
    def lane_keys(self) -> list[str]:
        """What the agent reports: the public keys of lanes 1..N-1."""
        return [encode_public(self.node_key.lane(i).public) for i in range(1, self.lanes)]

    # -- lifetime -------------------------------------------------------------

    @property
    def kind(self) -> str:
        """Which data plane carries the packets: ``native`` or ``python``."""
        return "native" if self.link is not None else "python"

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.discovery is not None:
            self._discover = self._loop.call_at(self._loop.time(), self._ask_reflector)
        if self.link is None:
            self._loop.add_reader(self.udp.fileno(), self._on_udp)
            return
        self._loop.add_reader(self.link.eventfd, self._on_slow)
        self.link.start()
        self._tick = self._loop.call_later(CORE_TICK, self._on_tick)

    async def start_workers(self) -> None:
        """Lane 0 of several: start the other lanes' worker processes."""
        if self.lane == 0 and self.lanes > 1 and self.workers is None:
            self.workers = WorkerLanes(
                self.node_key,
                self.listen_port,
                self.lanes,
                ack_thinning=self.ack_thinning,
                native=self.link is not None,
                reflector=self.discovery.target if self.discovery else None,
            )
            await self.workers.start()

    async def aclose(self) -> None:
        if self.workers is not None:
            await self.workers.close()
            self.workers = None
        self.close()

    def close(self) -> None:
        for stream in self.relay_streams.values():
            stream.close()
        for handle in (self._timer, self._recheck, self._tick, self._discover, self._hellos):
            if handle is not None:
                handle.cancel()
        if self.link is not None:
            self.link.stop()  # before any fd it reads is closed
        for vx in self.vxlans.values():
            vx.delete()  # kernel interfaces outlive us unless removed
        if self._storm_limits and self.host is not None:
            try:
                self.host.apply_storm({})
            except (OSError, HostLinkError) as exc:
                log.warning("removing the storm-control table failed: %s", exc)
        self.vxlans.clear()
        if self._loop is not None and self.link is not None:
            self._loop.remove_reader(self.link.eventfd)
        elif self._loop is not None:
            self._loop.remove_reader(self.udp.fileno())
            for port in self.ports.values():
                self._loop.remove_reader(port.tap.fd)
        for port in self.ports.values():
            port.tap.close()
        self.ports.clear()
        self.udp.close()

    @property
    def now(self) -> float:
        return self._loop.time() if self._loop is not None else time.monotonic()

    # -- desired state --------------------------------------------------------

    async def apply(self, netmap: NetMap, names: dict[str, str] | None = None) -> None:
        """Reconcile TAPs, switches and peers with ``netmap`` (idempotent).

        Lane 0 names the TAPs and configures them; a worker lane is told
        the names (``names``: network id -> TAP) and adds its queue to each.
        """
        now = self.now
        own_id = netmap.node.node_id
        self.bad_peers = {}
        joined = {n.id: n for n in netmap.networks if netmap.own_port(n) is not None}
        wanted = {i: n for i, n in joined.items() if n.encrypted}
        if names is not None:  # a worker lane: only the TAPs lane 0 has
            wanted = {i: n for i, n in wanted.items() if i in names}
        for net_id in list(self.ports):
            if net_id not in wanted or (names and self.ports[net_id].name != names[net_id]):
                self._remove_port(net_id)
        if self.lane == 0:
            await self._apply_vxlans(netmap, {i: n for i, n in joined.items() if not n.encrypted})
        peers: dict[bytes, tuple[str, str, list[tuple[Address, PathKind]]]] = {}
        send_keys: dict[str, bytes] = {}
        for net in wanted.values():
            port = self.ports.get(net.id) or self._add_port(net, names)
            await self._configure(port, net, netmap)
            members = []
            for peer in net.peers or []:
                if peer.node_id == own_id:
                    continue
                # a member whose entry is unusable (a key no handshake can
                # succeed with, a bad MAC) is skipped and counted: one bad peer
                # must not cost the others their tunnels or their broadcasts
                try:
                    keys = [decode_public(k) for k in (peer.public_key, *peer.lane_keys)]
                    member = Member(
                        peer.node_id, mac_bytes(peer.port.mac), _ipv4_bytes(peer.port.ipv4)
                    )
                except ValueError as exc:
                    self._bad_peer(peer.name, exc)
                    continue
                for p in paired_lanes(self.lane, self.lanes, len(keys)):
                    peers[keys[p]] = (peer.node_id, peer.name, lane_candidates(peer, p))
                send_keys[peer.node_id] = keys[send_lane(self.lane, len(keys))]
                members.append(member)
            port.switch.set_members(members, now)
            if port.switch.storm_pps != net.storm_pps:
                port.switch.set_storm_limit(net.storm_pps, now)
        relayed = {
            a for _, _, cands in peers.values() for a, kind in cands if kind is PathKind.RELAY
        }
        if self.relays.set_relays(netmap.relays, relayed) and self.on_candidates is not None:
            self.on_candidates()
        for relay_id in [i for i in self.relay_streams if i not in self.relays.links]:
            self.relay_streams.pop(relay_id).close()
        self._say_hellos()  # before the handshakes through them: the relay must know us there
        self._candidates = {public: found for public, (_, _, found) in peers.items()}
        for public in list(self.node_of_key):
            if public not in peers:
                self.engine.remove_peer(public)
                del self.node_of_key[public]
                self.names.pop(public, None)
        for public, (node_id, name, candidates) in peers.items():
            known = public in self.node_of_key
            try:
                self.engine.add_peer(public)
                # (once a peer has been heard from, its authenticated address wins)
                self.engine.set_candidates(public, self._reachable(candidates), now)
            except ValueError as exc:  # e.g. a netmap naming our own key for another node
                self._bad_peer(name, exc)
                if send_keys.get(node_id) == public:
                    del send_keys[node_id]
                continue
            self.node_of_key[public] = node_id
            self.names[public] = name
            if not known:
                self.engine.connect(public, now)
        self.key_of_node = send_keys
        if self.link is not None:
            self._push_tables(peers, send_keys, now)
        self._flush()
        self._arm_timer(force=True)  # handshakes just started need their retries
        if self.workers is not None:
            await self.workers.apply(netmap, {p.network_id: p.name for p in self.ports.values()})

    def _bad_peer(self, name: str, exc: ValueError) -> None:
        if self.bad_peers.get(name) != str(exc):
            log.warning("peer %s skipped: %s", name, exc)
        self.bad_peers[name] = str(exc)

    def _free_name(self) -> str:
        used = {p.name for p in self.ports.values()} | {v.name for v in self.vxlans.values()}
        return next(f"{TAP_PREFIX}{i}" for i in range(256) if f"{TAP_PREFIX}{i}" not in used)

    async def _apply_vxlans(self, netmap: NetMap, wanted: dict[str, NetworkMap]) -> None:
        """Unencrypted networks: kernel VXLAN interfaces and their FDBs."""
        assert self.host is not None  # (lane 0's)
        for net_id in list(self.vxlans):
            if net_id not in wanted or self.vxlans[net_id].vni != wanted[net_id].vni:
                await asyncio.to_thread(self.vxlans.pop(net_id).delete)
        for net in wanted.values():
            vx = self.vxlans.get(net.id)
            if vx is None:
                vx = self.vxlans[net.id] = self.host.vxlan(net.id, self._free_name(), net.vni)
                await asyncio.to_thread(vx.create)
            await self._configure_link(vx.name, net, netmap)
            remotes = {}
            for peer in net.peers or []:
                address = _underlay_ipv4(peer.endpoints, peer.observed_ip)
                if peer.node_id != netmap.node.node_id and address is not None:
                    remotes[peer.port.mac] = address
            await asyncio.to_thread(vx.program, remotes)
        limits = {self.vxlans[n.id].name: n.storm_pps for n in wanted.values()}
        if limits != self._storm_limits:
            try:
                await asyncio.to_thread(self.host.apply_storm, limits)
                self._storm_limits = limits
            except (OSError, HostLinkError) as exc:
                message = f"storm control for VXLAN networks: {exc}"
                log.warning("%s", message)
                if message not in self.errors:
                    self.errors.append(message)

    def _add_port(self, net: NetworkMap, names: dict[str, str] | None) -> Port:
        name = names[net.id] if names is not None else self._free_name()
        tap = TapDevice.open(name, multi_queue=self.lanes > 1)
        if tap.fallback:
            self.errors.append(f"{name}: {tap.fallback}")
        own_mac = b"\x00" * 6
        port = Port(
            net.id,
            name,
            net.vni,
            tap,
            Switch(local_mac=own_mac, storm_pps=net.storm_pps, now=self.now),
        )
        self.ports[net.id] = port
        self.by_vni[net.vni] = port
        if self.link is not None:
            self.link.add_port(net.vni, tap.fd)
        elif self._loop is not None:
            self._loop.add_reader(tap.fd, self._on_tap, port)
        return port

    async def _configure(self, port: Port, net: NetworkMap, netmap: NetMap) -> None:
        if self.lane == 0:
            own = await self._configure_link(port.name, net, netmap)
        else:  # the device is lane 0's to configure; this lane has a queue of it
            own_port = netmap.own_port(net)
            assert own_port is not None
            own = own_port
        port.switch.local_mac = mac_bytes(own.mac)
        if port.vni != net.vni:
            self.by_vni.pop(port.vni, None)
            if self.link is not None:
                self.link.remove_port(port.vni)
                self.link.add_port(net.vni, port.tap.fd)
            port.vni = net.vni
            self.by_vni[net.vni] = port

    async def _configure_link(self, name: str, net: NetworkMap, netmap: NetMap) -> PortInfo:
        """Our port's MAC, the network's MTU and our address on ``name``."""
        assert self.host is not None  # (lane 0's)
        own = netmap.own_port(net)
        assert own is not None
        addresses = [f"{own.ipv4}/{own.prefixlen}"]
        if own.ipv6 is not None and own.prefixlen6 is not None:
            addresses.append(f"{own.ipv6}/{own.prefixlen6}")
        # pyroute2's synchronous API runs its own event loop: keep it off ours
        await asyncio.to_thread(
            self.host.configure, name, mac=own.mac, mtu=net.mtu, addresses=addresses
        )
        return own

    def _remove_port(self, net_id: str) -> None:
        port = self.ports.pop(net_id)
        self.by_vni.pop(port.vni, None)
        if self.link is not None:
            self.link.remove_port(port.vni)  # the core lets go of the fd first
        elif self._loop is not None:
            self._loop.remove_reader(port.tap.fd)
        port.tap.close()  # a non-persistent TAP disappears with its last fd

    # -- the fast path --------------------------------------------------------

    def _on_tap(self, port: Port) -> None:
        """Frames the kernel queued on the TAP, read until it is empty (bounded).

        TSO super-frames go out one by one. Small frames read in the same
        pass are batched per peer, so a burst of small packets costs one seal
        and one ``sendmsg`` per peer instead of one per packet; nothing waits
        for a batch to fill, and a peer's batch is sent before any larger frame
        for it, so frames stay in order.
        """
        now = self.now
        batches: dict[str, list[wire.VnetItem]] = {}
        batched = 0
        last_macs, last_peers = b"", list[str]()
        view, buf = self._tap_view, self._tap_buf
        head = wire.CONTAINER_PREFIX_LEN
        at = head + VNET_HDR_LEN  # where each frame starts in the buffer
        # read right behind room for the container prefix: a super-frame is
        # sealed from this buffer as it is, never copied
        read, into = port.tap.read_into, view[head:]
        tx_bytes = tx_packets = 0  # into the port's counters once, after the pass
        for _ in range(READ_BATCH):
            n = read(into)
            if n is None:
                break
            end = head + n
            tx_bytes += end - at
            tx_packets += 1
            # the same unicast conversation as the last frame (compared in
            # place: this runs for every small frame)
            if last_macs and buf.startswith(last_macs, at, end):
                peers = last_peers
            else:
                frame = view[at:end]
                decision = port.switch.from_local(frame, now)
                if decision.reply is not None:
                    port.tap.write(ZERO_VNET_HDR, decision.reply)
                peers = decision.peers
                # a known unicast destination: the next frame between the same
                # two MACs in this pass goes the same way (nothing else changes
                # the switch during a pass); floods, ARP and drops are decided
                # frame by frame, for the storm limit and address learning
                known = len(peers) == 1 and not decision.flooded  # so not a runt either
                if known and frame[12:14] != ARP_TYPE:
                    last_macs, last_peers = bytes(frame[:ETH_ADDRS]), peers
                else:
                    last_macs = b""
            if not peers:
                continue
            if buf[head + 1] == GSO_NONE and end - at <= SMALL_FRAME:
                # bytearray slices: one copy each, cheaper than bytes(view[...])
                item = (buf[head:at], buf[at:end])
                for node in peers:
                    batches.setdefault(node, []).append(item)
                batched += end - at
                if batched >= BATCH_BYTES:
                    for node, items in batches.items():
                        self._send(port, node, items, now)
                    batches.clear()
                    batched = 0
                continue
            wire.put_superframe_prefix(view, port.vni)
            for node in peers:
                if node in batches:
                    self._send(port, node, batches.pop(node), now)
                self._send_container(node, view[: head + n], now)
        for node, items in batches.items():
            self._send(port, node, items, now)
        port.counters["tx_bytes"] += tx_bytes
        port.counters["tx_packets"] += tx_packets
        self._arm_timer()

    def _send_container(self, node: str, container: memoryview, now: float) -> None:
        if (public := self._key_for(node, 1)) is not None:
            self.engine.send_container(public, container, now)
            self._flush()  # sealed into reused buffers: out before the next seal

    def _send(self, port: Port, node: str, items: list[wire.VnetItem], now: float) -> None:
        # a batch that ends in a TCP segment may hold ACKs to thin; looking at
        # the last frame only keeps bursts of anything else (UDP, say) free of
        # any per-frame cost
        if self.ack_thinning and len(items) > 1 and ends_in_tcp(items):
            before = len(items)
            items = thin_acks(items)
            port.counters["tx_acks_thinned"] += before - len(items)
        if (public := self._key_for(node, len(items))) is not None:
            self.engine.send_vnet_frames(public, port.vni, items, now)
            self._flush()

    def _key_for(self, node: str, frames: int) -> bytes | None:
        """The peer's public key; without one, its frames are dropped and counted."""
        public = self.key_of_node.get(node)
        if public is None:
            self.drops.add("no_peer_key", frames)
        return public

    def _on_udp(self) -> None:
        now = self.now
        for batch, segment, addr in self.udp.receive_batches():
            if batch[:1] in OUR_ANSWERS and len(batch) == segment:
                self._datagram(batch, addr, now)
                continue
            self.engine.receive_segments(batch, segment, addr, now)
            self._deliver_events()
        self._flush()
        self._arm_timer()

    def _deliver_events(self) -> None:
        now = self.now
        while (event := self.engine.next_event()) is not None:
            if isinstance(event, SuperFrameReceived):
                self._to_tap(event.peer, event.network_id, [(event.vnet_hdr, event.frame)], now)
            elif isinstance(event, FrameRowsReceived):
                self._rows_to_tap(event.peer, event.network_id, event.rows, now)
            elif isinstance(event, FramesReceived):
                hdrs = event.vnet_hdrs or (ZERO_VNET_HDR,) * len(event.frames)
                frames = list(zip(hdrs, event.frames, strict=False))  # the engine pairs them
                self._to_tap(event.peer, event.network_id, frames, now)
            elif isinstance(event, HandshakeCompleted):
                log.info("tunnel to %s up via %s", self.names.get(event.peer), event.endpoint)
            elif isinstance(event, PeerDead):
                log.warning("peer %s unreachable", self.names.get(event.peer))
            elif isinstance(event, EndpointChanged):
                log.info("peer %s now at %s", self.names.get(event.peer), event.new)

    def _to_tap(self, public: bytes, vni: int, frames: list[Frame], now: float) -> None:
        """Frames from a peer, each checked by the network's switch, into the
        TAP; runs of small same-flow UDP datagrams go in as one GSO frame."""
        port = self._port_for(public, vni, len(frames))
        if port is not None:
            self._each_to_tap(port, self.node_of_key[public], frames, now)

    def _each_to_tap(self, port: Port, node: str, frames: Sequence[Frame], now: float) -> None:
        accepted = [f for f in frames if port.switch.from_peer(node, f[1], now)]
        self._write(port, _merged(port, accepted))

    def _rows_to_tap(self, public: bytes, vni: int, rows: FrameRows, now: float) -> None:
        """A batch of equal-length frames from a peer. When they are one
        conversation (the same two MACs) the switch decides once for all, and
        when they are one UDP flow they are merged on the whole batch at once;
        anything else goes frame by frame, with the same outcome."""
        port = self._port_for(public, vni, len(rows))
        if port is None:
            return
        node = self.node_of_key[public]
        macs = rows.array[:, ROW_HEAD : ROW_HEAD + ETH_ADDRS]
        if not (macs == macs[0]).all():
            self._each_to_tap(port, node, rows.items(), now)
            return
        accepted = port.switch.from_peer_alike(node, rows.frame(0), len(rows), now)
        writes = coalesce_rows(rows) if accepted == len(rows) and port.tap.udp_gso else None
        if writes is None:  # some dropped, not one UDP flow, or no UDP GSO on this TAP
            writes = _merged(port, rows.items()[:accepted])
        self._write(port, writes)

    def _port_for(self, public: bytes, vni: int, frames: int) -> Port | None:
        port = self.by_vni.get(vni)
        if port is None or public not in self.node_of_key:
            self.drops.add("unknown_network", frames)
            return None
        return port

    def _write(self, port: Port, writes: list[Write]) -> None:
        counters = port.counters
        for vnet, frame, datagrams in writes:
            if port.tap.write(vnet, frame):
                # the bytes of the frames as they were, not of the merged one
                counters["rx_bytes"] += len(frame) + (datagrams - 1) * HEADERS
                counters["rx_packets"] += datagrams
                if datagrams > 1:
                    counters["rx_coalesced"] += datagrams
            else:
                self.drops.add("tap_full", datagrams)

    # -- our reflexive address ------------------------------------------------

    def _ask_reflector(self) -> None:
        assert self.discovery is not None and self._loop is not None
        question = self.discovery.question(self.now)
        self.udp.send([question], 0, 1, self.discovery.target.address)
        self._discover = self._loop.call_at(self.discovery.due, self._ask_reflector)

    def _via_stream(self, link: RelayLink, port: int) -> Address:
        return self.relay_streams[link.info.id].local(port)

    def _reachable(
        self, candidates: list[tuple[Address, PathKind]]
    ) -> list[tuple[Address, PathKind]]:
        """Relay candidates as this lane reaches them (over TLS, say), the
        nearest relay first: initiations go out in this order, so it is the
        likeliest to carry the first answer."""
        direct = [(a, kind) for a, kind in candidates if kind is not PathKind.RELAY]
        relayed = sorted(
            (a for a, kind in candidates if kind is PathKind.RELAY),
            key=lambda a: rtt if (rtt := self.relays.rtt_of(a[0])) is not None else 1e9,
        )
        return direct + [(self.relays.translate(a), PathKind.RELAY) for a in relayed]

    def _to_tls(self, link: RelayLink) -> None:
        """No hello gets through to this relay over UDP: its TCP fallback."""
        assert link.info.tls_port is not None
        log.info(
            "lane %d: relay %s by TLS on port %d", self.lane, link.info.name, link.info.tls_port
        )
        stream = self.relay_streams[link.info.id] = RelayStream(
            link.host, link.info.tls_port, self.udp.port, self.drops
        )
        stream.start()
        link.tls = True
        for target in link.targets.values():
            target.due, target.unanswered = float("-inf"), 0
        now = self.now
        for public, found in self._candidates.items():
            if public in self.node_of_key:
                self.engine.set_candidates(public, self._reachable(found), now)
        self._flush()
        self._arm_timer(force=True)

    def _say_hellos(self) -> None:
        if self._loop is None:
            return
        for link in self.relays.wants_tls():
            self._to_tls(link)
        for address, hello in self.relays.due_hellos(self.now):
            self.udp.send([hello], 0, 1, address)
        if self._hellos is not None:
            self._hellos.cancel()
            self._hellos = None
        due = self.relays.next_due()
        if due is not None:
            self._hellos = self._loop.call_at(due, self._say_hellos)

    def _datagram(self, data: bytes | memoryview, addr: tuple[str, int], now: float) -> None:
        """One datagram that is not data: the reflector's and relays' answers
        are ours, everything else the engine's."""
        first = data[:1]
        if first == RELAY_ANSWER:
            try:
                changed = self.relays.on_answer(data, addr, now)
            except RelayWireError as exc:
                self.drops.add(f"relay_{exc.reason}")
                return
            if changed:
                log.info("lane %d: relay candidates %s", self.lane, self.relays.candidates())
                if self.on_candidates is not None:
                    self.on_candidates()
            return
        if first != REFLEXIVE_ANSWER:
            self.engine.receive_datagram(data, addr, now)
            return
        if self.discovery is None:
            self.drops.add("reflexive_unasked")
            return
        try:
            changed = self.discovery.on_answer(data, addr, now)
        except ReflexiveError as exc:
            self.drops.add(f"reflexive_{exc.reason}")
            return
        if self._discover is not None and self._loop is not None:
            self._discover.cancel()
            self._discover = self._loop.call_at(self.discovery.due, self._ask_reflector)
        if changed:
            log.info("lane %d: reflexive address %s", self.lane, self.discovery.address)
            if self.on_candidates is not None:
                self.on_candidates()

    def _flush(self) -> None:
        for tx in self.engine.datagrams_to_send():
            self.udp.send(tx.buffers, tx.segment_size, tx.count, tx.addr)

    def _arm_timer(self, *, force: bool = False) -> None:
        """Keep the loop's wake-up at the engine's next deadline.

        Asking the engine is cheap (it looks again only at the peers a pass
        touched), but the answer moves with every packet sent (the keepalive
        deadline follows the last send), which re-armed an asyncio timer per
        pass. So after a data pass the engine is asked at most every
        ``TIMER_RECHECK``, and a check is
        scheduled for the end of that interval: a deadline that a pass moved
        earlier is then seen at most that much later. The engine's deadlines
        are all half a second or more from the event that sets them (first
        handshake retry, reassembly timeout, keepalives), so none fires
        noticeably late; after the timer itself and after a netmap change the
        engine is asked at once (``force``).
        """
        if self._loop is None:
            return
        now = self._loop.time()
        if not force and now - self._timer_checked < TIMER_RECHECK:
            if self._recheck is None:
                self._recheck = self._loop.call_at(
                    self._timer_checked + TIMER_RECHECK, self._recheck_timer
                )
            return
        self._timer_checked = now
        due = self.engine.get_timer()
        if self._timer is not None:
            if due is not None and abs(self._timer.when() - due) < 1e-3:
                return
            self._timer.cancel()
            self._timer = None
        if due is not None:
            self._timer = self._loop.call_at(max(due, self._loop.time()), self._on_timer)

    def _recheck_timer(self) -> None:
        self._recheck = None
        self._arm_timer(force=True)

    def _on_timer(self) -> None:
        self._timer = None
        if self.link is not None:
            self.link.absorb(self.engine)  # the timers must see the latest traffic
        self.engine.handle_timer(self.now)
        self._deliver_events()
        self._flush()
        if self.link is not None:
            self.link.sync_sessions(self.engine, self.now)
        self._arm_timer(force=True)

    # -- with the compiled core ------------------------------------------------

    def _push_tables(
        self,
        peers: dict[bytes, tuple[str, str, list[tuple[Address, PathKind]]]],
        send_keys: dict[str, bytes],
        now: float,
    ) -> None:
        """What the core forwards by: peers, their nodes and endpoints, every
        member's MAC, and the sessions the engine holds."""
        assert self.link is not None
        status = self.engine.status
        known = {p: (node, status(p, now).endpoint) for p, (node, _, _) in peers.items()}
        self.link.set_peers(known, send_keys)
        for port in self.ports.values():
            members = [(m.mac, m.peer) for m in port.switch.members.values()]
            self.link.set_network(port.vni, port.switch.local_mac, members)
        self.link.sync_sessions(self.engine, now)

    def _on_slow(self) -> None:
        """What the core handed up: handshakes and data it holds no session
        for go to the engine, frames to the switch, as the Python path does."""
        assert self.link is not None and self._loop is not None
        try:
            os.read(self.link.eventfd, 8)
        except BlockingIOError:
            pass
        entries = self.link.take(SLOW_BATCH)
        now = self.now
        for entry in entries:
            if entry.kind == SLOW_DATAGRAM:
                assert entry.addr is not None
                self._datagram(entry.data, entry.addr, now)
            elif entry.kind == SLOW_TAP_FRAME:
                self._slow_tap_frame(entry, now)
            else:
                public = self.link.public_of(entry.slot)
                if public is not None:
                    vnet, frame = entry.data[:VNET_HDR_LEN], entry.data[VNET_HDR_LEN:]
                    self._to_tap(public, entry.vni, [(vnet, frame)], now)
        self._deliver_events()
        self._flush()
        self.link.sync_sessions(self.engine, now)
        self._arm_timer()
        if len(entries) == SLOW_BATCH:  # more waiting: after the loop's other work
            self._loop.call_soon(self._on_slow)

    def _slow_tap_frame(self, entry: SlowEntry, now: float) -> None:
        """A frame from our TAP the core left to the switch: a flood, ARP, an
        unknown destination, or a peer without an established session."""
        port = self.by_vni.get(entry.vni)
        if port is None:
            return
        vnet, frame = entry.data[:VNET_HDR_LEN], entry.data[VNET_HDR_LEN:]
        decision = port.switch.from_local(frame, now)
        if decision.reply is not None:
            port.tap.write(ZERO_VNET_HDR, decision.reply)
        for node in decision.peers:
            self._send(port, node, [(vnet, frame)], now)

    def _on_tick(self) -> None:
        """Bring what the core carried into the engine's timers, and the
        engine's session changes into the core."""
        assert self.link is not None and self._loop is not None
        now = self.now
        self.link.absorb(self.engine)
        self._deliver_events()  # (an endpoint the core saw move)
        self.link.sync_sessions(self.engine, now)
        self._arm_timer(force=True)
        self._tick = self._loop.call_later(CORE_TICK, self._on_tick)

    # -- status ---------------------------------------------------------------

    def _port_counters(self, port: Port) -> dict[str, int]:
        """A port's traffic: what Python moved plus what the core did."""
        counters = dict(port.counters)
        if self.link is not None:
            tx_bytes, tx_packets, rx_bytes, rx_packets = self.link.port_counters(port.vni)
            counters["tx_bytes"] += tx_bytes
            counters["tx_packets"] += tx_packets
            counters["rx_bytes"] += rx_bytes
            counters["rx_packets"] += rx_packets
        return counters

    def _tap_status(self, port: Port, now: float) -> TapStatus:
        counters = self._port_counters(port)
        return TapStatus(
            network_id=port.network_id,
            offloads=port.tap.offloads,
            udp_gso=port.tap.udp_gso,
            ack_thinning=self.ack_thinning,
            announced=port.switch.announced(now),
            tx_bytes=counters["tx_bytes"],
            rx_bytes=counters["rx_bytes"],
            tx_packets=counters["tx_packets"],
            rx_packets=counters["rx_packets"],
            rx_coalesced=counters["rx_coalesced"],
            tx_acks_thinned=counters["tx_acks_thinned"],
        )

    def status(self) -> LaneStatus:
        """What the agent reports and ``skylan status`` shows: this lane's
        view, merged with the worker lanes' latest reports on lane 0."""
        own = self._lane_status()
        if self.workers is None:
            return own
        return merged_status(own, self.workers.statuses(), self.workers.retired)

    def _lane_status(self) -> LaneStatus:
        now = self.now
        lane_keys: dict[str, list[bytes]] = {}
        for public, node in self.node_of_key.items():
            lane_keys.setdefault(node, []).append(public)
        peers = {}
        for node, keys in lane_keys.items():
            every = {k: self.engine.status(k, now) for k in keys}
            st = every[self.key_of_node.get(node, keys[0])]  # the tunnel we send on
            core = [0, 0, 0, 0]  # what the compiled core carried: tx/rx bytes/packets
            fec, repaired = st.fec, sum(x.repaired for x in every.values())
            if self.link is not None:
                for k in keys:
                    core = [a + b for a, b in zip(core, self.link.peer_counters(k), strict=True)]
                    core_fec, core_repaired = self.link.peer_parity(k)
                    fec, repaired = fec or core_fec, repaired + core_repaired
            peers[node] = TunnelStatus(
                established=st.established,
                endpoint=f"{st.endpoint[0]}:{st.endpoint[1]}" if st.endpoint else None,
                handshake_age_s=round(st.last_handshake_age, 1)
                if st.last_handshake_age is not None
                else None,
                rtt_ms=round(st.rtt * 1000, 2) if st.rtt is not None else None,
                tx_bytes=sum(x.tx_bytes for x in every.values()) + core[0],
                rx_bytes=sum(x.rx_bytes for x in every.values()) + core[2],
                tx_packets=sum(x.tx_packets for x in every.values()) + core[1],
                rx_packets=sum(x.rx_packets for x in every.values()) + core[3],
                dead=st.dead,
                fec=fec,
                repaired=repaired,
                tunnels=len(keys),
                path=None if st.path_kind is None else PATH_NAMES[st.path_kind],
                relay=self.relays.name_of(st.endpoint) if st.path_kind is PathKind.RELAY else None,
                path_rtt_ms=round(st.path_rtt * 1000, 2) if st.path_rtt is not None else None,
            )
        drops = dict(self.engine.drops.by_reason) | dict(self.drops.by_reason)
        for port in self.ports.values():
            for reason, n in port.switch.drops.by_reason.items():
                drops[f"{port.name}:{reason}"] = n
        if self.link is not None:
            for reason, n in self.link.drops().items():
                drops[reason] = drops.get(reason, 0) + n
        core_stats = self.link.stats() if self.link is not None else None
        return LaneStatus(
            lane=self.lane,
            dataplane=self.kind,
            pid=os.getpid(),
            listen_port=self.udp.port,
            reflexive=_shown(self.discovery.address) if self.discovery else None,
            relays=self.relays.candidates(),
            relay_rtt_ms=self.relays.rtts(),
            interfaces={p.name: self._tap_status(p, now) for p in self.ports.values()},
            vxlan={
                v.name: VxlanStatus(
                    network_id=v.network_id, vni=v.vni, remotes=len(set(v.remotes.values()))
                )
                for v in self.vxlans.values()
            },
            gso=self.udp.gso and (core_stats is None or bool(core_stats["gso"])),
            gro=self.udp.gro,
            core=core_stats,
            send_errors=self.udp.send_errors
            + (int(core_stats["send_errors"]) if core_stats is not None else 0),
            fallbacks=list(self.errors),
            bad_peers=dict(self.bad_peers),
            peers=peers,
            drops=drops,
        )


def _merged(port: Port, frames: Sequence[Frame]) -> list[Write]:
    """The writes for frames accepted for ``port``'s TAP: runs of same-flow
    UDP datagrams merged where the TAP takes UDP GSO frames."""
    if len(frames) > 1 and port.tap.udp_gso:
        return coalesce(frames)
    return [(vnet, frame, 1) for vnet, frame in frames]


def _shown(address: Address | None) -> str | None:
    return None if address is None else f"{address[0]}:{address[1]}"


_KINDS = {"reflexive": PathKind.REFLEXIVE, "relay": PathKind.RELAY}
PATH_NAMES: dict[PathKind, PathName] = {
    PathKind.LOCAL: "local",
    PathKind.REFLEXIVE: "reflexive",
    PathKind.RELAY: "relay",
}


def lane_candidates(peer: PeerInfo, lane: int) -> list[tuple[Address, PathKind]]:
    """Where the peer's lane ``lane`` may be reached: its interfaces'
    addresses at that lane's port, then what it reported for that lane."""
    out: list[tuple[Address, PathKind]] = []
    for text in peer.endpoints:
        parsed = parse_endpoint(text)
        if parsed is not None and parsed[1] + lane <= 65535:
            out.append(((parsed[0], parsed[1] + lane), PathKind.LOCAL))
    for candidate in peer.candidates:
        parsed = parse_endpoint(candidate.address)
        if candidate.lane == lane and parsed is not None:
            out.append((parsed, _KINDS[candidate.kind]))
    return out


def _underlay_ipv4(endpoints: list[str], observed: str | None) -> str | None:
    for text in endpoints:
        parsed = parse_endpoint(text)
        if parsed is not None:
            return parsed[0]
    return observed


def _ipv4_bytes(text: str) -> bytes | None:
    try:
        return ipaddress.IPv4Address(text).packed
    except ValueError:
        return None

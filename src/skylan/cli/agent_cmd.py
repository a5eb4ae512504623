"""``skylan agent``: join a controller and run the node daemon; ``skylan status``."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import signal
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from skylan.agent.dnsmode import DnsMode
from skylan.agent.statehome import DEFAULT_STATE_DIR
from skylan.cli.errors import fail
from skylan.cli.output import JsonFlag, console
from skylan.model.lanelimit import MAX_LANES

if TYPE_CHECKING:  # loaded by the commands that use them: every CLI call would pay
    from skylan.agent.state import StateDir
    from skylan.model.agentstatus import TapStatus, TunnelStatus

SHUTDOWN_LIMIT = 15.0  # s from SIGTERM to a forced exit (systemd's own limit is 90 s)

app = typer.Typer(help="The node agent.", no_args_is_help=True)

StateOpt = Annotated[
    Path,
    typer.Option(
        "--state-dir", envvar="SKYLAN_STATE_DIR", help="Where the agent keeps its key and state."
    ),
]


WorkersOpt = Annotated[
    int,
    typer.Option(
        "--workers",
        envvar="SKYLAN_AGENT_WORKERS",
        min=1,
        max=MAX_LANES,
        help="Data-plane worker processes (one TAP queue and UDP port each, from the "
        "listen port up); more than one spreads flows over cores.",
    ),
]

AckThinningOpt = Annotated[
    bool,
    typer.Option(
        "--ack-thinning/--no-ack-thinning",
        envvar="SKYLAN_AGENT_ACK_THINNING",
        help="Leave out pure TCP ACKs that a later ACK in the same batch supersedes "
        "(as sch_cake's ack-filter); saves CPU on bulk transfers.",
    ),
]


class DataplaneKind(StrEnum):
    auto = "auto"
    native = "native"
    python = "python"


DataplaneOpt = Annotated[
    DataplaneKind,
    typer.Option(
        "--dataplane",
        envvar="SKYLAN_AGENT_DATAPLANE",
        help="Which data plane carries packets: native (the compiled core), python (the "
        "reference implementation), or auto (native where it was built).",
    ),
]


DnsOpt = Annotated[
    DnsMode,
    typer.Option(
        "--dns",
        envvar="SKYLAN_AGENT_DNS",
        help="Members' names (NODE.NETWORK.skylan.internal): resolved (systemd-resolved "
        "per-link DNS), resolv-conf (first in /etc/resolv.conf, forwarding other names), "
        "auto (resolved where it runs), or off.",
    ),
]


HeartbeatOpt = Annotated[
    float,
    typer.Option(
        "--heartbeat-interval",
        envvar="SKYLAN_AGENT_HEARTBEAT",
        min=1.0,
        max=300.0,
        help="Seconds between heartbeats (and the longest wait for a netmap); the "
        "controller counts a node online for 45 s after one.",
    ),
]


def _native(kind: DataplaneKind) -> bool:
    from skylan.dataplane.native import available

    if kind is DataplaneKind.native and not available():
        fail(
            "--dataplane native: the compiled core is not built here "
            "(reinstall with a C compiler and libssl-dev)"
        )
    return kind is DataplaneKind.native or (kind is DataplaneKind.auto and available())


def _run_daemon(
    state: StateDir,
    workers: int,
    ack_thinning: bool,
    heartbeat: float,
    kind: DataplaneKind,
    *,
    dns: DnsMode,
) -> None:
    from skylan.agent.daemon import Agent

    native = _native(kind)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def main() -> None:
        agent = Agent(
            state,
            workers=workers,
            ack_thinning=ack_thinning,
            heartbeat_interval=heartbeat,
            native=native,
            dns=dns,
        )
        stop = asyncio.Event()

        def stopping() -> None:
            if not stop.is_set():
                # a shutdown stuck on something (a netlink call in a thread, say)
                # must not keep systemd waiting: after this long, every thread's
                # stack goes to the log and the process exits
                faulthandler.dump_traceback_later(SHUTDOWN_LIMIT, exit=True)
            stop.set()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping)
        console.print(
            f"agent {agent.enrollment.name} running; controller {agent.enrollment.controller_url}"
        )
        await agent.run(stop)

    asyncio.run(main())


def _path(tun: TunnelStatus) -> str:
    """direct or relayed (through which relay), as a user reads it."""
    if tun.path is None:
        return "-"
    if tun.path == "relay":
        return f"relayed via {tun.relay}" if tun.relay else "relayed"
    return "direct"  # (at its own address or its NAT's outside: --json says which)


def _bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


@app.command()
def join(
    url: Annotated[
        str,
        typer.Argument(
            help="The controller, e.g. https://ctl:8443; replicas without a load balancer: "
            "https://a:8443,https://b:8443 (the agent moves to the next when one fails)."
        ),
    ],
    token: Annotated[str, typer.Argument(help="The join token (sky1.…)")],
    state_dir: StateOpt = DEFAULT_STATE_DIR,
    hostname: Annotated[str | None, typer.Option(help="Node name; default: hostname.")] = None,
    listen_port: Annotated[
        int, typer.Option(min=1, max=65535, help="UDP port for tunnels.")
    ] = 51820,
    run: Annotated[bool, typer.Option("--run/--no-run", help="Start the daemon after.")] = True,
    workers: WorkersOpt = 1,
    ack_thinning: AckThinningOpt = True,
    heartbeat_interval: HeartbeatOpt = 15.0,
    dataplane: DataplaneOpt = DataplaneKind.auto,
    dns: DnsOpt = DnsMode.auto,
) -> None:
    """Enroll this machine with a join token, then run the agent."""
    from skylan.agent.join import join as do_join
    from skylan.agent.state import StateDir
    from skylan.model.jointoken import JoinToken

    JoinToken.parse(token)  # a clear error before any network traffic
    _check_ports(listen_port, workers)
    _native(dataplane)
    state = StateDir(state_dir)
    enrollment = asyncio.run(do_join(url, token, state, hostname=hostname, listen_port=listen_port))
    console.print(f"enrolled as [bold]{enrollment.name}[/] ({enrollment.node_id})")
    if run:
        _run_daemon(state, workers, ack_thinning, heartbeat_interval, dataplane, dns=dns)


@app.command("run")
def run_cmd(
    state_dir: StateOpt = DEFAULT_STATE_DIR,
    workers: WorkersOpt = 1,
    ack_thinning: AckThinningOpt = True,
    listen_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            envvar="SKYLAN_AGENT_LISTEN_PORT",
            help="Move the tunnels to this UDP port (saved for the next runs; peers "
            "learn it from the controller and from the first packets).",
        ),
    ] = None,
    heartbeat_interval: HeartbeatOpt = 15.0,
    dataplane: DataplaneOpt = DataplaneKind.auto,
    dns: DnsOpt = DnsMode.auto,
) -> None:
    """Run the agent from its state directory (what the systemd unit does)."""
    from skylan.agent.state import StateDir

    state = StateDir(state_dir)
    enrollment = state.enrollment()  # fail fast with a clear message when not enrolled
    port = enrollment.listen_port if listen_port is None else listen_port
    _check_ports(port, workers)
    if port != enrollment.listen_port:
        console.print(f"tunnel port: udp/{enrollment.listen_port} -> udp/{port}")
        enrollment.listen_port = port
        state.save_enrollment(enrollment)
    _run_daemon(state, workers, ack_thinning, heartbeat_interval, dataplane, dns=dns)


def _check_ports(listen_port: int, workers: int) -> None:
    if listen_port + workers - 1 > 65535:
        fail(f"{workers} workers need UDP ports {listen_port}..{listen_port + workers - 1}")


def _offloads(interface: TapStatus) -> str:
    names = interface.offloads + (["udp-coalesce"] if interface.udp_gso else [])
    names += ["ack-thinning"] if interface.ack_thinning else []
    return "+".join(names) or "none"


def status(state_dir: StateOpt = DEFAULT_STATE_DIR, as_json: JsonFlag = False) -> None:
    """Show this node's networks and peers, as the running agent sees them."""
    from skylan.agent.state import StateDir
    from skylan.model.agentstatus import AgentStatus, TunnelStatus

    path = StateDir(state_dir).status_path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no agent status; is `skylan agent run` running?")
    raw = path.read_text()
    try:
        data = AgentStatus.model_validate_json(raw)
    except ValidationError as exc:
        fail(
            f"{path}: not a status this version of skylan understands "
            f"({exc.error_count()} problem(s)); restart the agent to rewrite it"
        )
        return
    if as_json:
        typer.echo(data.model_dump_json(indent=2))
        return
    old = time.time() - data.written_at
    contact = data.last_contact
    seen = f"{time.time() - contact:.0f}s ago" if contact else "never"
    console.print(
        f"[bold]{data.node}[/] ({data.node_status}) — controller "
        f"{data.controller}, last contact {seen}, netmap v{data.netmap_version}"
    )
    if data.last_error:
        console.print(f"[yellow]controller trouble:[/] {data.last_error}")
    if old > 60:
        console.print(f"[yellow]status is {old:.0f}s old: the agent may not be running[/]")
    for net in data.networks:
        table = Table(
            "peer",
            "overlay ip",
            "path",
            "endpoint",
            "handshake",
            "rtt",
            "tx",
            "rx",
            title=f"{net.name} {net.cidr4} — this node {net.ipv4} "
            f"({'encrypted' if net.encrypted else 'unencrypted'}"
            f"{', cloaked' if net.cloaked else ''})",
        )
        for peer in net.peers:
            tun = peer.tunnel or TunnelStatus()
            age = tun.handshake_age_s
            rtt = tun.rtt_ms
            table.add_row(
                peer.name,
                peer.ipv4,
                _path(tun),
                tun.endpoint or ", ".join(peer.endpoints),
                "dead" if tun.dead else (f"{age:.0f}s ago" if age is not None else "-"),
                f"{rtt:.2f} ms" if rtt is not None else "-",
                _bytes(tun.tx_bytes if peer.tunnel else None),
                _bytes(tun.rx_bytes if peer.tunnel else None),
            )
        console.print(table)
    dp = data.dataplane
    if dp:
        offload = ", ".join(f"{name}: {_offloads(i)}" for name, i in dp.interfaces.items())
        console.print(
            f"data plane ({dp.dataplane}): udp/{dp.listen_port}, GSO {'on' if dp.gso else 'off'}, "
            f"GRO {'on' if dp.gro else 'off'}; offloads {offload or '-'}"
        )
        if dp.relay_rtt_ms:
            rtts = ", ".join(f"{name} {ms:.2f} ms" for name, ms in sorted(dp.relay_rtt_ms.items()))
            console.print(f"relays: {rtts}")
        for lane in (dp.lanes or [])[1:]:
            state = "running" if lane.running else "[red]not running[/]"
            console.print(
                f"lane {lane.lane}: udp/{lane.listen_port}, pid {lane.pid}, {state}, "
                f"{lane.established} peer(s) up, tx {_bytes(lane.tx_bytes)}, "
                f"rx {_bytes(lane.rx_bytes)}"
                + (f", restarted {lane.restarts}x" if lane.restarts else "")
            )
        for note in dp.fallbacks:
            console.print(f"[yellow]fallback:[/] {note}")
        for name, why in sorted(dp.bad_peers.items()):
            console.print(f"[red]peer {name} skipped:[/] {why}")
        if dp.send_errors:
            console.print(f"underlay send errors: {dp.send_errors}")
        if dp.drops:
            console.print("drops: " + ", ".join(f"{k}={v}" for k, v in sorted(dp.drops.items())))
    host = data.host
    if host.gateway_for:
        masq = set(host.masquerade)
        console.print(
            "gateway for: "
            + ", ".join(f"{p}{' (masquerade)' if p in masq else ''}" for p in host.gateway_for)
        )
    for route in host.routes:
        console.print(f"route {route.prefix} via {route.via} dev {route.dev} metric {route.metric}")
    if host.cloaked:
        console.print(
            f"cloaked on {', '.join(host.cloak_interfaces)}; "
            f"{len(host.cloak_openings)} exception rule(s)"
        )
    dns = data.dns
    if dns is not None and dns.mode != "off" and (dns.zones or dns.error):
        where = ", ".join(dns.listening) or "nowhere"
        console.print(f"dns ({dns.mode}): {', '.join(dns.zones) or '-'} on {where}")
        if dns.error:
            console.print(f"[red]dns error:[/] {dns.error}")
    for ifname, allowances in sorted(host.guarded.items()):
        console.print(
            f"security group on {ifname}: default deny, {allowances} rule(s) let traffic in"
        )

"""``skylan lab``: build a topology to play with, list and clean leftovers."""

from __future__ import annotations

import signal
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from skylan.lab import Lab, naming, netns
from skylan.lab.cleanup import all_lab_ids, clean, owner_alive
from skylan.lab.nat import NatType

app = typer.Typer(help="Network-namespace test labs.", no_args_is_help=True)
_out = Console(highlight=False)


@app.command("list")
def list_labs() -> None:
    """Show labs on this machine and whether their owner is still running."""
    table = Table("lab", "owner", "namespaces")
    names = netns.list_netns()
    for lab_id in sorted(all_lab_ids()):
        mine = [n for n in names if naming.lab_id_of(n) == lab_id]
        table.add_row(lab_id, "alive" if owner_alive(lab_id) else "gone", " ".join(mine))
    _out.print(table)


@app.command("clean")
def clean_cmd(
    all_labs: Annotated[
        bool, typer.Option("--all", help="Also remove labs whose owner is still running.")
    ] = False,
) -> None:
    """Remove leftover labs (namespaces and processes named skl-*)."""
    removed = clean(include_live=all_labs)
    if not removed:
        _out.print("nothing to clean")
    for lab_id, spaces in removed.items():
        _out.print(f"removed lab {lab_id}: {len(spaces)} namespaces")


@app.command("up")
def up(
    hosts: Annotated[int, typer.Option(min=1, max=50, help="Hosts on the underlay.")] = 3,
    nat: Annotated[int, typer.Option(min=0, max=20, help="Extra hosts behind NAT.")] = 0,
    nat_type: Annotated[
        NatType,
        typer.Option(
            help="eim: a home router's (endpoint-independent mapping); symmetric: a new "
            "random port per destination (cloud NAT gateways); tcp443: outbound TCP 443 "
            "only, no UDP (a corporate firewall)."
        ),
    ] = NatType.EIM,
    same_nat: Annotated[
        bool, typer.Option(help="Put all the NAT hosts behind one NAT (each has its own).")
    ] = False,
    office_lan: Annotated[
        bool, typer.Option(help="Put an office LAN (192.168.10.0/24) behind the last host.")
    ] = False,
) -> None:
    """Build a lab and keep it until Ctrl-C; print how to enter each host."""
    with Lab() as lab:
        names = [chr(ord("a") + i) if i < 26 else f"h{i}" for i in range(hosts)]
        for name in names:
            lab.add_host(name)
        for i in range(nat):
            shared = same_nat and i > 0
            lab.add_host(f"nat{i + 1}", nat=nat_type, behind="nat1" if shared else None)
        if office_lan:
            lab.add_office_lan(names[-1])
        table = Table("host", "namespace", "address", "behind", f"lab {lab.id}")
        for host in lab.hosts.values():
            kind = lab.nat_type(host.name)
            behind = f"{kind} NAT {host.public_ip}" if kind is not None else ""
            table.add_row(
                host.name,
                host.netns,
                host.underlay_ip,
                behind,
                f"ip netns exec {host.netns} bash",
            )
        _out.print(table)
        _out.print("Ctrl-C tears the lab down.")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            _out.print("tearing down")

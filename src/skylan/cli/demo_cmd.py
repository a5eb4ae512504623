"""``skylan demo``: show the product working on this machine.

Until the controller and agent exist it builds a lab and shows its hosts
reaching each other across the underlay and out through NAT.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from skylan.lab import Lab

_out = Console(highlight=False)


def demo() -> None:
    """Build a lab (three hosts, one behind NAT), ping across it, tear it down."""
    with Lab() as lab:
        _out.print(f"[bold]lab {lab.id}[/]: building hosts a, b and c (c behind NAT)")
        a, b = lab.add_host("a"), lab.add_host("b")
        c = lab.add_host("c", nat=True)
        table = Table("from", "to", "address", "result")
        for src, dst in ((a, b), (b, a), (c, a), (c, b)):
            ok = src.ping(dst.underlay_ip, count=2)
            table.add_row(
                src.name,
                dst.name,
                dst.underlay_ip,
                "[green]reachable[/]" if ok else "[red]unreachable[/]",
            )
        # Inbound to a NAT'd host is refused even with a route to its network.
        a.run(["ip", "route", "add", "198.19.0.0/16", "via", c.public_ip], check=True)
        ok = a.ping(c.underlay_ip, count=1)
        table.add_row(
            "a",
            "c (behind NAT)",
            c.underlay_ip,
            "[red]reachable (NAT broken!)[/]" if ok else "[green]blocked by NAT[/]",
        )
        _out.print(table)
    _out.print("lab removed")

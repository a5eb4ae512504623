"""What a security group costs a node as its network grows: the agent works out
its host configuration every 2 s (``HostConfig.desired``, then a comparison with
what it applied) and, when that changed, replaces its nftables table whole.

For N members (half tagged ``web``) in a network with the default policy
``deny`` and two rules (tcp/5432 from ``tag:web``, icmp from any), it times, on
this node's view of the network:

- ``new netmap``: working out the host configuration from a netmap just
  received (the guard, the cloak's peer set);
- ``each period``: working it out again from the same netmap, as the agent
  does every 2 s (tunnels and interfaces may have changed);
- ``compare``: comparing it with an equal one (what happens every 2 s when
  nothing changed);
- ``apply``: rendering the table and loading it with ``nft -f`` (what happens
  when a member joins, leaves or is retagged), inside a lab namespace;
- the number of set elements in the guard chain.

The network is cloaked, as a large production network would be. The baseline
for ``apply``, measured in the same run, is the same network with the policy
``allow`` (no guard, the cloak only); ``desired`` is also shown as its share of
one core at one run per period. What a netmap gives that tunnels and interfaces
cannot change is worked out once per netmap (``hostconfig._NetworkPart``).

    .venv/bin/python benchmarks/guard_scale.py [--members 100 1000 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.netmaps import netmap, peer

from skylan.agent.daemon import STATUS_INTERVAL as PERIOD
from skylan.agent.hostconfig import Desired, HostConfig
from skylan.hostnet import nftables
from skylan.lab import Host, Lab
from skylan.model.netmap import NetMap
from skylan.model.securitygroups import Match, SecurityRuleInfo


def members_netmap(count: int, policy: str) -> NetMap:
    """Node m0's netmap: ``count`` members in a /16, every other one tagged web."""
    net = ipaddress.IPv4Network("172.16.0.0/16")
    peers = [
        peer(
            f"m{i}",
            "k" * 43 + "=",
            str(net[i + 1]),
            f"198.18.{i // 250}.{i % 250 + 1}",
            mac=f"02:00:00:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}",
            ipv6=f"fd00:1::{i + 1:x}",
            tags=["web"] if i % 2 else [],
        )
        for i in range(count)
    ]
    rules = [
        SecurityRuleInfo(
            id="r-pg",
            protocol="tcp",
            port_from=5432,
            port_to=5432,
            source=Match(kind="tag", value="web"),
            target=Match(kind="any"),
        ),
        SecurityRuleInfo(
            id="r-ping",
            protocol="icmp",
            source=Match(kind="any"),
            target=Match(kind="any"),
        ),
    ]
    return netmap(
        "m0",
        peers,
        cidr4=str(net),
        cidr6="fd00:1::/64",
        policy=policy,
        cloaked=True,
        security_rules=rules if policy == "deny" else [],
    )


def timed(runs: int, work: Callable[[], object]) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        out.append(time.perf_counter() - started)
    return out


def load(host: Host, rules: nftables.Ruleset) -> None:
    script = f"add table inet {nftables.TABLE}\ndelete table inet {nftables.TABLE}\n"
    res = host.run(["nft", "-f", "-"], input=script + nftables.render(rules), timeout=120)
    if not res.ok:
        raise RuntimeError(f"nft: {res.stderr[-500:]}")


def measure(host: Host, count: int, policy: str, runs: int) -> dict[str, float]:
    config = HostConfig(listen_port=51820, controller_url="https://198.18.0.1:8443")
    nm = members_netmap(count, policy)
    ifnames = {"net": "sky0"}

    def desired() -> Desired:
        return config.desired(nm, ifnames, set(), [])

    arrivals = [nm.model_copy(deep=True) for _ in range(runs + 1)]

    def anew() -> Desired:  # a netmap just arrived: nothing of it worked out yet
        return config.desired(arrivals.pop(), ifnames, set(), [])

    assert anew() == desired()
    new_ms = statistics.median(timed(runs, anew)) * 1000
    first, second = desired(), desired()
    assert first == second and first is not second
    guards = first.rules.guards
    elements = sum(len(a.members) for g in guards for a in g.allowances)
    return {
        "new_ms": new_ms,
        "desired_ms": statistics.median(timed(runs, desired)) * 1000,
        "compare_ms": statistics.median(timed(runs, lambda: first == second)) * 1000,
        "apply_ms": statistics.median(timed(runs, lambda: load(host, first.rules))) * 1000,
        "elements": elements,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{'members':>8} {'policy':>7} {'new netmap':>11} {'each period':>18} {'compare':>9}"
        f" {'apply':>17} {'elements':>9}"
    )
    with Lab() as lab:
        host = lab.add_host("n")
        for count in args.members:
            base = measure(host, count, "allow", args.runs)
            for policy, m in (("allow", base), ("deny", measure(host, count, "deny", args.runs))):
                share = m["desired_ms"] / (PERIOD * 1000) * 100
                print(
                    f"{count:>8} {policy:>7} {m['new_ms']:>8.1f} ms {m['desired_ms']:>7.1f} ms"
                    f" {share:>5.2f}% {m['compare_ms']:>6.2f} ms {m['apply_ms']:>7.1f} ms"
                    f" x{m['apply_ms'] / base['apply_ms']:<5.1f} {m['elements']:>9.0f}"
                )
    print(
        f"(medians of {args.runs}. new netmap: the host configuration worked out from a netmap"
        f" just received; each period: again from the same netmap, every {PERIOD:.0f} s, and"
        " its share of one core; compare: with what was applied; apply: render and nft -f, and"
        " x the same network without a guard)"
    )


if __name__ == "__main__":
    main()
